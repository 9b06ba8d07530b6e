/** `make synth` as an operator runs it: a bad configuration stops it with every problem printed once. */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { REPO, tempDir } from "./helpers";

const scratch = tempDir("k3spve-synth-");

describe("make synth", () => {
  it("prints each configuration problem once and exits 2, before the CDK CLI runs", () => {
    const tfvars = path.join(scratch(), "bad.tfvars");
    fs.writeFileSync(tfvars, 'proxmox_endpoint = "https://pve:8006/"\ntemplate_vm_id = 9000\nmastr_count = 1\nworker_count = -1\n');
    const result = spawnSync("make", ["--no-print-directory", "synth", `TFVARS=${tfvars}`, `OUT=${path.join(scratch(), "out")}`], { cwd: REPO, encoding: "utf8" });
    const output = result.stdout + result.stderr;
    expect(result.status, output).toBe(2);
    for (const problem of ["mastr_count: unknown key. Did you mean master_count?", "worker_count = -1: must be a whole number from 0 to 100"]) {
      expect(output.split(problem).length - 1, `${problem} in:\n${output}`).toBe(1);
    }
    expect(output).not.toContain("cdktn encountered an error");
    expect(fs.existsSync(path.join(scratch(), "out"))).toBe(false);
  });
});
