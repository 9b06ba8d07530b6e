/**
 * The k3s_version_check module (constructs/ansible/library/) that make upgrade and make provision ask before
 * touching a node: its verdicts run by the pinned venv's Python, case by case, and the module run for real by
 * Ansible against a stand-in `k3s` binary on this machine.
 */
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { ansibleTestEnv, REPO, tempDir, VENV_BIN } from "../../helpers";

const LIBRARY = path.join(REPO, "constructs/ansible/library");
const MODULE = path.join(LIBRARY, "k3s_version_check.py");
const PYTHON = path.join(VENV_BIN, "python");
const havePython = fs.existsSync(PYTHON);
if (!havePython) console.warn(`k3s-version-check.test.ts: skipped, no ${PYTHON} (run make setup)`);

interface Verdict {
  installed: string;
  upgrade: boolean;
  refusal: string;
  installed_kubernetes: string;
  target_kubernetes: string;
}

/** The module's plan() for each [installed, target] pair, in one Python run. */
function plans(pairs: readonly (readonly [string, string])[]): Verdict[] {
  const driver = [
    "import importlib.util, json, sys",
    "spec = importlib.util.spec_from_file_location('m', sys.argv[1])",
    "m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)",
    "print(json.dumps([m.plan(i, t, 'k3s-worker-1') for i, t in json.loads(sys.argv[2])]))",
  ].join("\n");
  return JSON.parse(execFileSync(PYTHON, ["-c", driver, MODULE, JSON.stringify(pairs)], { encoding: "utf8" })) as Verdict[];
}
const plan = (installed: string, target: string) => plans([[installed, target]])[0];

describe.skipIf(!havePython)("k3s_version_check: the step from the installed version to the target", () => {
  it("allows the next patch, also with another K3s build suffix", () => {
    expect(plan("v1.34.0+k3s-857412ae", "v1.34.1+k3s-857412ae-dirty")).toEqual({
      installed: "v1.34.0+k3s-857412ae",
      upgrade: true,
      refusal: "",
      installed_kubernetes: "1.34.0",
      target_kubernetes: "1.34.1",
    });
    expect(plan("v1.33.5+k3s1", "v1.33.9+k3s2")).toMatchObject({ upgrade: true, refusal: "" });
  });

  it("allows the next minor version, from any patch to any patch", () => {
    expect(plan("v1.35.2+k3s1", "v1.36.5+k3s1")).toMatchObject({ upgrade: true, refusal: "" });
    expect(plan("v1.35.9+k3s3", "v1.36.0+k3s1")).toMatchObject({ upgrade: true, refusal: "" });
  });

  it("allows the same Kubernetes version with another K3s build, either way (no Kubernetes change)", () => {
    expect(plan("v1.34.0+k3s1", "v1.34.0+k3s2")).toMatchObject({ upgrade: true, refusal: "" });
    expect(plan("v1.34.0+k3s2", "v1.34.0+k3s1")).toMatchObject({ upgrade: true, refusal: "" });
    expect(plan("v1.34.0-rc1+k3s1", "v1.34.0+k3s1")).toMatchObject({ upgrade: true, refusal: "" });
  });

  it("has nothing to do at the same version", () => {
    expect(plan("v1.34.0+k3s-857412ae", "v1.34.0+k3s-857412ae")).toMatchObject({ upgrade: false, refusal: "" });
  });

  it("refuses a downgrade, naming the node and both versions, and says what to do instead", () => {
    const { refusal } = plan("v1.34.1+k3s1", "v1.34.0+k3s1");
    expect(refusal).toMatch(/^k3s-worker-1 runs K3s v1\.34\.1\+k3s1 \(Kubernetes 1\.34\.1\); v1\.34\.0\+k3s1 \(Kubernetes 1\.34\.0\) would be a downgrade/);
    expect(refusal).toContain("set it back to v1.34.1+k3s1 in terraform.tfvars");
    expect(refusal).toContain("make restore SNAPSHOT=");
    for (const [installed, target] of [["v1.35.0+k3s1", "v1.34.9+k3s1"], ["v1.34.0+k3s1", "v0.34.0+k3s1"], ["v2.0.0+k3s1", "v1.99.0+k3s1"]]) {
      expect(plan(installed, target).refusal, `${installed} -> ${target}`).toMatch(/would be a downgrade/);
    }
  });

  it("refuses a skipped minor version and names the minor to go through", () => {
    const { refusal, upgrade } = plan("v1.34.0+k3s-857412ae", "v1.36.5+k3s1");
    expect(upgrade).toBe(true);
    expect(refusal).toMatch(/^k3s-worker-1 runs K3s v1\.34\.0\+k3s-857412ae \(Kubernetes 1\.34\.0\); v1\.36\.5\+k3s1 \(Kubernetes 1\.36\.5\) skips a minor version/);
    expect(refusal).toContain("Upgrade to the newest patch of 1.35 first (k3s_version = v1.35.<newest patch>+k3s<n>");
    expect(plan("v1.30.4+k3s1", "v1.33.0+k3s1").refusal).toContain("newest patch of 1.31 first");
    expect(plan("v1.34.0+k3s1", "v2.0.0+k3s1").refusal).toMatch(/changes the major version/);
  });

  it("refuses a node without K3s, an unreadable installed version and a target that is no version", () => {
    expect(plan("", "v1.34.0+k3s1")).toMatchObject({ upgrade: false, refusal: expect.stringMatching(/^k3s-worker-1 has no K3s installed: .*Run make provision first/) });
    expect(plan("dev", "v1.34.0+k3s1").refusal).toMatch(/^k3s-worker-1 runs K3s 'dev', which is no version/);
    expect(plan("v1.34.0+k3s1", "latest").refusal).toMatch(/^k3s_version = 'latest' is no K3s version/);
  });

  it("reads the version from k3s --version", () => {
    const driver = [
      "import importlib.util, json, sys",
      "spec = importlib.util.spec_from_file_location('m', sys.argv[1])",
      "m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)",
      "print(json.dumps([m.installed_version(o) for o in json.loads(sys.argv[2])]))",
    ].join("\n");
    const outputs = ["k3s version v1.34.0+k3s-857412ae (857412ae)\ngo version go1.24.6\n", "k3s version v1.31.1+k3s1 (452dbbc1)", "", "Usage: k3s"];
    expect(JSON.parse(execFileSync(PYTHON, ["-c", driver, MODULE, JSON.stringify(outputs)], { encoding: "utf8" }))).toEqual([
      "v1.34.0+k3s-857412ae",
      "v1.31.1+k3s1",
      "",
      "",
    ]);
  });
});

const ANSIBLE_PLAYBOOK = path.join(VENV_BIN, "ansible-playbook");
const scratch = tempDir("k3spve-version-");

/**
 * The module run by Ansible on this machine, once per case in one playbook; each case's `version` is what a
 * stand-in k3s binary prints (null: no binary).
 */
function runModule(cases: readonly { version: string | null; target: string }[]): Record<string, unknown>[] {
  const dir = scratch();
  const tasks = cases.map(({ version, target }, i) => {
    const binary = path.join(dir, `k3s-${i}`);
    if (version !== null) fs.writeFileSync(binary, `#!/bin/sh\necho "k3s version ${version} (857412ae)"\necho "go version go1.24.6"\n`, { mode: 0o755 });
    return { name: `case ${i}`, k3s_version_check: { binary, version: target, node: "k3s-master-1" } };
  });
  const playbook = path.join(dir, "check.yml");
  fs.writeFileSync(playbook, JSON.stringify([{ name: "Check", hosts: "localhost", gather_facts: false, tasks }]));
  const out = execFileSync(ANSIBLE_PLAYBOOK, ["-i", "localhost,", "-c", "local", "-M", LIBRARY, playbook], {
    encoding: "utf8",
    cwd: dir,
    env: ansibleTestEnv(dir),
  });
  return (JSON.parse(out).plays[0].tasks as { hosts: { localhost: Record<string, unknown> } }[]).map((t) => t.hosts.localhost);
}

describe.skipIf(!fs.existsSync(ANSIBLE_PLAYBOOK))("k3s_version_check run by Ansible", () => {
  it("reads the binary's version, reports the step or a refusal without failing (the playbook decides), and changes nothing", () => {
    const [next, same, skip, missing] = runModule([
      { version: "v1.34.0+k3s-857412ae", target: "v1.34.1+k3s-857412ae-dirty" },
      { version: "v1.34.1+k3s-857412ae-dirty", target: "v1.34.1+k3s-857412ae-dirty" },
      { version: "v1.34.0+k3s1", target: "v1.36.5+k3s1" },
      { version: null, target: "v1.34.0+k3s1" },
    ]);
    expect(next).toMatchObject({ changed: false, installed: "v1.34.0+k3s-857412ae", upgrade: true, refusal: "" });
    expect(same).toMatchObject({ changed: false, upgrade: false, refusal: "" });
    expect(skip).toMatchObject({ changed: false, upgrade: true, refusal: expect.stringContaining("skips a minor version") });
    expect(missing).toMatchObject({ installed: "", upgrade: false, refusal: expect.stringContaining("has no K3s installed") });
    for (const result of [next, same, skip, missing]) expect(result.failed ?? false).toBe(false);
  });
});
