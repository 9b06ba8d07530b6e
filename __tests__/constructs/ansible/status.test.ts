/**
 * make status's playbook, the generated ansible/status.yml itself, run by the real Ansible against servers that
 * are down: two "servers" on this machine (local connection) with no K3s, one unreachable over SSH, and an API
 * address where nothing listens. The healthy and degraded answers are checked on real clusters by the e2e's ha
 * scenario. Skipped, saying so, when the venv has not been made (make setup).
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { ansibleFiles } from "../../../constructs/ansible";
import { ansibleTestEnv, tempDir, testConfig, VENV_BIN } from "../../helpers";

const PLAYBOOK_BIN = path.join(VENV_BIN, "ansible-playbook");
const haveAnsible = fs.existsSync(PLAYBOOK_BIN);
if (!haveAnsible) console.warn(`status.test.ts: skipped, no ${PLAYBOOK_BIN} (run make setup or scripts/setup-python.sh)`);

type TaskResult = { msg?: unknown; failed?: boolean; unreachable?: boolean; item?: { name: string }; results?: TaskResult[] };
const scratch = tempDir("k3spve-status-");
let rc: number | null;
let results: Record<string, TaskResult[]>;

beforeAll(() => {
  if (!haveAnsible) return;
  const dir = scratch();
  const status = ansibleFiles(testConfig()).find((f) => f.path === "ansible/status.yml")!;
  fs.writeFileSync(path.join(dir, "status.yml"), status.content);
  fs.writeFileSync(
    path.join(dir, "hosts.ini"),
    [
      "[master]",
      "k3s-master-1 ansible_host=127.0.0.1 ansible_connection=local",
      "k3s-master-2 ansible_host=127.0.0.1 ansible_connection=local",
      // Port 9 (discard) on loopback: refused at once, so SSH reports the host unreachable.
      "k3s-master-3 ansible_host=127.0.0.1 ansible_port=9 ansible_connection=ssh",
      "",
      "[all:vars]",
      "k3s_master_api_address=127.0.0.9",
      "k3s_vip_address=''",
      "",
    ].join("\n"),
  );
  const run = spawnSync(PLAYBOOK_BIN, ["-i", path.join(dir, "hosts.ini"), path.join(dir, "status.yml"), "-e", "ansible_become=false"], {
    encoding: "utf8",
    cwd: dir,
    env: { ...ansibleTestEnv(dir), ANSIBLE_HOST_KEY_CHECKING: "false" },
    timeout: 120_000,
  });
  rc = run.status;
  results = {};
  try {
    for (const play of JSON.parse(run.stdout).plays as { tasks: { task: { name: string }; hosts: Record<string, TaskResult> }[] }[]) {
      for (const task of play.tasks) for (const result of Object.values(task.hosts)) (results[task.task.name] ??= []).push(result);
    }
  } catch {
    throw new Error(`ansible-playbook gave no JSON (rc ${rc}):\n${run.stdout}\n${run.stderr}`);
  }
}, 180_000);

describe.skipIf(!haveAnsible)("status.yml with the control plane down", () => {
  it("describes each server: k3s not running, API not ready, etcd not healthy; or unreachable", () => {
    const lines = results["Show each server"][0].results!.map((r) => r.msg);
    expect(lines).toHaveLength(3);
    expect(lines[0]).toMatch(/^k3s-master-1 \(127\.0\.0\.1\): k3s (inactive|state unknown), API not ready, etcd not healthy$/);
    expect(lines[1]).toMatch(/^k3s-master-2 \(127\.0\.0\.1\): k3s (inactive|state unknown), API not ready, etcd not healthy$/);
    expect(lines[2]).toBe("k3s-master-3 (127.0.0.1): unreachable over SSH");
  });

  it("fails, naming the quorum etcd needs and the servers to start", () => {
    expect(rc).not.toBe(0);
    const [verdict] = results["Say that the API is unavailable"];
    expect(verdict.failed).toBe(true);
    expect(verdict.msg).toMatch(/^The Kubernetes API is unavailable at https:\/\/127\.0\.0\.9:6443 \(Request failed: .*Connection refused.*\): 0 of 3 servers ready and 0 of 3 etcd members healthy; etcd needs 2 for quorum\./);
    expect(verdict.msg).toContain("Start the servers that are down (k3s-master-1, k3s-master-2, k3s-master-3): the cluster comes back by itself once 2 servers run.");
    expect(results["Say whether the API is available"][0]).toMatchObject({ skipped: true });
  });
});
