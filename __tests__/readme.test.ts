import * as fs from "node:fs";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { CONFIG_SCHEMA } from "../constructs/config";
import { renderReference, updateReadme } from "../constructs/config/reference";
import { TERRAFORM_ROLE_PRIVILEGES } from "../constructs/proxmox-role";
import { loadSchema } from "../lab/pve-sim/schema";

const readme = fs.readFileSync(path.resolve(__dirname, "..", "README.md"), "utf8");

describe("README", () => {
  it("has the configuration reference as the schema renders it (run `make docs` after changing schema.ts)", () => {
    expect(updateReadme(readme)).toBe(readme);
  });

  it("documents every key of the configuration", () => {
    for (const key of Object.keys(CONFIG_SCHEMA)) expect(renderReference()).toContain(`| \`${key}\` |`);
  });

  it("lists every make target in its table", () => {
    const makefile = fs.readFileSync(path.resolve(__dirname, "..", "Makefile"), "utf8");
    const targets = [...makefile.matchAll(/^([a-z0-9-]+):.*## /gm)].map((m) => m[1]).filter((t) => t !== "help");
    expect(targets.length).toBeGreaterThan(10);
    for (const target of targets) expect(readme, target).toMatch(new RegExp(`^\\| \`make ${target}[ \`]`, "m"));
  });

  it("names the test command that .ci/run runs", () => {
    const ci = fs.readFileSync(path.resolve(__dirname, "..", ".ci", "run"), "utf8");
    for (const command of ci.match(/^make [a-z -]+$/gm) ?? []) expect(readme).toContain(command);
    expect(ci).toMatch(/^make /m);
  });
});

describe("README's pveum role lines", () => {
  it.each(Object.entries(TERRAFORM_ROLE_PRIVILEGES))("list exactly the privileges Proxmox VE %s needs (constructs/proxmox-role.ts)", (release, privileges) => {
    const line = new RegExp(`# Proxmox VE ${release}\\n\\s*pveum role add K3sTerraform -privs "([^"]+)"`).exec(readme);
    expect(line, `no "# Proxmox VE ${release}" pveum line`).not.toBeNull();
    expect(line![1].split(" ").sort()).toEqual([...privileges].sort());
  });

  it("name only privileges the version has (pveum refuses others)", () => {
    expect(TERRAFORM_ROLE_PRIVILEGES["8"].filter((p) => !loadSchema("8.4").privileges.includes(p))).toEqual([]);
    expect(TERRAFORM_ROLE_PRIVILEGES["9"].filter((p) => !loadSchema("9.1").privileges.includes(p))).toEqual([]);
  });
});
