import * as fs from "node:fs";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { generatedFiles, REPO_ROOT } from "../constructs/generate";
import { testConfig } from "./helpers";

/** Every file below a folder, relative to the repository root. */
function walk(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    return entry.isDirectory() ? walk(full) : [path.relative(REPO_ROOT, full)];
  });
}

describe("committed generated files", () => {
  const committed = generatedFiles(testConfig()).filter((f) => !f.configDependent);

  it.each(committed.map((f) => [f.path, f.content]))("%s matches its generator (run `make synth` and commit)", (file, content) => {
    expect(fs.readFileSync(path.join(REPO_ROOT, file), "utf8")).toBe(content);
  });

  it("do not depend on the configuration", () => {
    const other = generatedFiles(testConfig({ worker_count: 5, timezone: "UTC", cluster_name: "lab" })).filter((f) => !f.configDependent);
    expect(other).toEqual(committed);
  });

  it("leave nothing behind that the generator no longer writes", () => {
    const known = new Set(committed.map((f) => f.path));
    const tracked = walk(path.join(REPO_ROOT, "ansible")).filter((f) => !f.startsWith(path.join("ansible", "inventory")));
    expect(tracked.filter((f) => !known.has(f))).toEqual([]);
  });
});
