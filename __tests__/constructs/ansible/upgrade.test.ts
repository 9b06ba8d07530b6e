/**
 * upgrade.yml (make upgrade): the order of its plays and steps, the refusals before anything changes, the drain
 * limits, the bounded waits, and — run for real by the venv's Ansible on this machine — the decisions it takes
 * from a node list (which nodes are done, which to upgrade, which the operator had cordoned) and the wait for
 * the controllers' leaders after a server's restart.
 */
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { Folded, isBlock, Item, Play, Task } from "../../../constructs/ansible/model";
import { itemObject } from "../../../constructs/ansible/render";
import { DRAIN_FLAGS, UPGRADE_MARK, upgradePlays } from "../../../constructs/ansible/upgrade";
import { removeNodesPlays } from "../../../constructs/ansible/day2";
import { ansibleTestEnv, tempDir, VENV_BIN } from "../../helpers";

const tasksOf = (items: readonly Item[] | undefined): Task[] => (items ?? []).flatMap((item) => (isBlock(item) ? tasksOf(item.block) : [item]));
const byName = (play: Play, name: string) => {
  const task = tasksOf(play.tasks).find((t) => t.name === name);
  if (!task) throw new Error(`no task "${name}" in "${play.name}"`);
  return task;
};
const argv = (task: Task) => ((task.args as { argv?: string[] }).argv ?? []).join(" ");
const [check, servers, agents] = upgradePlays;
const step = (play: Play) => {
  const [block] = play.tasks ?? [];
  if (!block || !isBlock(block)) throw new Error(`${play.name}: one block per node`);
  return block;
};

describe("upgrade.yml: the plays", () => {
  it("checks every node first, then upgrades the servers one at a time, then the agents in batches (default 1)", () => {
    expect(upgradePlays.map((p) => [p.hosts, p.serial, p.max_fail_percentage])).toEqual([
      ["k3s_cluster", undefined, undefined],
      ["master", 1, 0],
      ["workers", "{{ k3s_upgrade_batch | default(1, true) }}", 0],
    ]);
    expect(check.any_errors_fatal).toBe(true);
    for (const play of upgradePlays) expect(play.become, play.name).toBe(true);
  });

  it("refuses a downgrade, a skipped minor or a node without K3s before it changes anything, then stages the new binary everywhere", () => {
    const tasks = tasksOf(check.tasks);
    const names = tasks.map((t) => t.name);
    const version = byName(check, "Read the installed K3s version and judge the step to {{ k3s_binary_version }}");
    expect(version.module).toBe("k3s_version_check");
    expect(version.args).toMatchObject({ version: "{{ k3s_binary_version }}", node: "{{ inventory_hostname }}" });
    const refuse = byName(check, "Refuse a downgrade, a skipped minor version, or a node without K3s");
    expect(refuse.args).toMatchObject({ that: ["upgrade_version.refusal | length == 0"], fail_msg: "{{ upgrade_version.refusal }} Nothing was changed." });
    const stage = byName(check, "Stage the new binary on the nodes that need it (verified; nothing installed, nothing restarted)");
    expect(stage).toMatchObject({ module: "ansible.builtin.include_role", args: { name: "k3s_binary", tasks_from: "stage" }, when: "upgrade_version.upgrade" });
    expect(names.indexOf(refuse.name)).toBeLessThan(names.indexOf(stage.name));
    expect(names.indexOf(byName(check, "Check that the cluster knows this node").name)).toBeLessThan(names.indexOf(stage.name));
    // Everything before the staging only reads.
    for (const task of tasks.slice(0, names.indexOf(stage.name))) {
      expect(["ansible.builtin.assert", "ansible.builtin.setup", "ansible.builtin.set_fact", "k3s_version_check", "ansible.builtin.command"], task.name).toContain(task.module);
      if (task.module === "ansible.builtin.command") expect(task.changed_when, task.name).toBe(false);
    }
    const nodes = byName(check, "Read the nodes from Kubernetes");
    expect(nodes).toMatchObject({ run_once: true, delegate_to: "{{ groups['master'] | first }}" });
    expect(byName(check, "Check the batch size").run_once).toBe(true);
  });

  it("takes each node that is not done through mark, cordon, drain, its role, Ready at the new version, uncordon, unmark", () => {
    for (const [play, role] of [[servers, "k3s_master"], [agents, "k3s_worker"]] as const) {
      const block = step(play);
      expect(block.when, play.name).toBe("upgrade_needed | bool");
      const order = tasksOf(block.block).map((t) => t.name).filter((n) => !/^(Note|Show|Count|Say)/.test(n) && !/controllers/.test(n));
      expect(order, play.name).toEqual([
        "Mark the node as cordoned by the upgrade",
        "Cordon",
        "Drain (evictions honour PodDisruptionBudgets; DaemonSets stay)",
        `Install the staged binary, restart K3s and wait for it (role ${role})`,
        "Wait until the node is Ready at {{ k3s_binary_version }}",
        "Uncordon",
        "Remove the mark",
      ]);
      const include = byName(play, `Install the staged binary, restart K3s and wait for it (role ${role})`);
      expect(include).toMatchObject({ module: "ansible.builtin.include_role", args: { name: role } });
      expect(include.delegate_to).toBeUndefined();
    }
  });

  it("runs kubectl on the server itself for a server (its API is local and up until its restart), on the first server for an agent", () => {
    for (const [play, where] of [[servers, undefined], [agents, "{{ groups['master'] | first }}"]] as const) {
      const kubectl = tasksOf(step(play).block).filter((t) => argv(t).includes(" kubectl "));
      expect(kubectl.length, play.name).toBeGreaterThanOrEqual(6);
      for (const task of kubectl) expect(task.delegate_to, `${play.name}: ${task.name}`).toBe(where);
    }
  });

  it("drains like remove-nodes (eviction API, same timeout), but never deletes a pod no controller would bring back", () => {
    const drain = byName(servers, "Drain (evictions honour PodDisruptionBudgets; DaemonSets stay)");
    expect(argv(drain)).toBe(`{{ k3s_binary_install_path | default('/usr/local/bin/k3s') }} kubectl drain {{ upgrade_node_name }} ${DRAIN_FLAGS.join(" ")}`);
    expect(DRAIN_FLAGS).toEqual(["--ignore-daemonsets", "--delete-emptydir-data", "--timeout={{ k3s_upgrade_drain_timeout | default(300, true) }}s"]);
    expect(argv(drain)).not.toMatch(/--force|--disable-eviction/);
    const removal = tasksOf(removeNodesPlays[1].tasks).find((t) => argv(t).includes(" drain "))!;
    for (const flag of ["--ignore-daemonsets", "--delete-emptydir-data", "--timeout=300s"]) expect(argv(removal)).toContain(flag);
    // A one-node cluster has nowhere to move pods: no mark, cordon or drain there.
    for (const name of ["Mark the node as cordoned by the upgrade", "Cordon", "Drain (evictions honour PodDisruptionBudgets; DaemonSets stay)", "Uncordon"]) {
      expect([byName(agents, name).when].flat(), name).toContain("groups['k3s_cluster'] | length > 1");
    }
  });

  it("marks before cordoning and unmarks after uncordoning, and leaves a node the operator had cordoned cordoned", () => {
    const mark = byName(servers, "Mark the node as cordoned by the upgrade");
    expect(argv(mark)).toMatch(new RegExp(`annotate --overwrite node \\{\\{ upgrade_node_name \\}\\} ${UPGRADE_MARK}=\\{\\{ k3s_binary_version \\}\\}$`));
    expect(argv(byName(servers, "Remove the mark"))).toMatch(new RegExp(` annotate node \\{\\{ upgrade_node_name \\}\\} ${UPGRADE_MARK}-$`));
    for (const name of ["Mark the node as cordoned by the upgrade", "Uncordon", "Remove the mark"]) {
      expect([byName(servers, name).when].flat(), name).toContain("not upgrade_keep_cordoned | bool");
    }
    expect(byName(servers, "Cordon").changed_when).toBe("'already cordoned' not in upgrade_cordon.stdout");
    expect(byName(servers, "Uncordon").changed_when).toBe("'already uncordoned' not in upgrade_uncordon.stdout");
  });

  it("waits, bounded, until Kubernetes reports the node Ready at the target version; after a server, until its controllers lead again", () => {
    const ready = byName(agents, "Wait until the node is Ready at {{ k3s_binary_version }}");
    expect(argv(ready)).toContain('jsonpath=version={.status.nodeInfo.kubeletVersion} ready={.status.conditions[?(@.type=="Ready")].status}');
    expect(ready.until).toBe("upgrade_ready.rc == 0 and upgrade_ready.stdout == 'version=' ~ k3s_binary_version ~ ' ready=True'");
    expect(ready).toMatchObject({ retries: "{{ k3s_upgrade_ready_retries | default(300, true) }}", delay: 1, changed_when: false });
    const names = tasksOf(step(servers).block).map((t) => t.name);
    expect(names.indexOf("Note which controllers this server leads")).toBeLessThan(names.indexOf("Install the staged binary, restart K3s and wait for it (role k3s_master)"));
    expect(names.indexOf("Wait until the controllers it led have a leader again")).toBeGreaterThan(names.indexOf(ready.name));
    expect(names.indexOf("Wait until the controllers it led have a leader again")).toBeLessThan(names.indexOf("Uncordon"));
    expect(tasksOf(step(agents).block).map((t) => t.name)).not.toContain("Wait until the controllers it led have a leader again");
  });

  it("says per node how long it took, and on a failure which node, what was seen, and that a re-run continues there", () => {
    const say = byName(servers, "Say how it went");
    expect(String((say.args as { msg: { text: string } }).msg.text)).toMatch(
      /^upgraded \{\{ upgrade_node_name \}\} from \{\{ upgrade_from \}\} to \{\{ k3s_binary_version \}\} in \{\{ now\(\)\.timestamp\(\) \| int - upgrade_started \| int \}\} s/,
    );
    for (const play of [servers, agents]) {
      const [seen, explain] = (step(play).rescue ?? []) as Task[];
      // What Kubernetes says about the node now, asked where the other kubectl calls run, never failing itself.
      expect(argv(seen)).toBe(argv(byName(play, "Wait until the node is Ready at {{ k3s_binary_version }}")));
      expect(seen).toMatchObject({ register: "upgrade_seen", failed_when: false, changed_when: false });
      expect(seen.delegate_to).toBe(play === agents ? "{{ groups['master'] | first }}" : undefined);
      expect(explain).toMatchObject({ module: "ansible.builtin.fail" });
      const msg = String((explain.args as { msg: { text: string } }).msg.text);
      for (const part of [
        "The upgrade stopped at {{ upgrade_node_name }} ({{ upgrade_from }} -> {{ k3s_binary_version }})",
        "{{ ansible_failed_task.name",
        "Kubernetes now reports {{ upgrade_node_name }} at {{ upgrade_seen.stdout",
        "' is left cordoned'",
        "not upgraded yet, at their old version: {{ upgrade_left | join(', ') or 'none' }}",
        "run make upgrade again: it continues with {{ upgrade_node_name }}",
        "kubectl uncordon {{ upgrade_node_name }}",
      ]) {
        expect(msg, `${play.name}: ${part}`).toContain(part);
      }
    }
  });
});

const PLAYBOOK_BIN = path.join(VENV_BIN, "ansible-playbook");
const haveAnsible = fs.existsSync(PLAYBOOK_BIN);
const scratch = tempDir("k3spve-upgrade-");
const TARGET = "v1.34.1+k3s1";
const OLD = "v1.34.0+k3s1";

/** A node object as `kubectl get nodes -o json` lists it. */
const node = (name: string, kubelet: string, extra: { unschedulable?: boolean; marked?: boolean } = {}) => ({
  metadata: { name, annotations: { "k3s.io/hostname": name, ...(extra.marked ? { [UPGRADE_MARK]: TARGET } : {}) } },
  spec: extra.unschedulable ? { unschedulable: true } : {},
  status: { nodeInfo: { kubeletVersion: kubelet } },
});

/** host: [installed binary, node object]. */
const CLUSTER: Record<string, [string, ReturnType<typeof node>]> = {
  "k3s-master-1": [TARGET, node("k3s-master-1", TARGET)], // done
  "k3s-worker-1": [OLD, node("k3s-worker-1", OLD)], // to upgrade
  "k3s-worker-2": [TARGET, node("k3s-worker-2", OLD)], // binary in place, K3s not restarted yet
  "k3s-worker-3": [TARGET, node("k3s-worker-3", TARGET, { unschedulable: true, marked: true })], // a run stopped here: cordoned by it
  "k3s-worker-4": [OLD, node("k3s-worker-4", OLD, { unschedulable: true })], // cordoned by the operator
  "k3s-worker-5": [TARGET, node("custom-name", TARGET)], // named otherwise in Kubernetes (k3s_worker_node_name)
};

type HostResult = { ansible_facts?: Record<string, unknown>; msg?: unknown };
let results: Record<string, HostResult[]>;

beforeAll(() => {
  if (!haveAnsible) return;
  const dir = scratch();
  const inventory = [
    "[master]",
    "k3s-master-1",
    "[workers]",
    ...Object.keys(CLUSTER).filter((h) => h.includes("worker")).map((h) => (h === "k3s-worker-5" ? `${h} k3s_worker_node_name=custom-name` : h)),
    "[k3s_cluster:children]",
    "master",
    "workers",
    "[k3s_cluster:vars]",
    "ansible_connection=local",
  ].join("\n");
  fs.writeFileSync(path.join(dir, "hosts.ini"), `${inventory}\n`);
  const nodes = JSON.stringify({ items: Object.values(CLUSTER).map(([, n]) => n) });
  const decide = ["Find this node's state", "Decide what the upgrade does on this node", "Say what happens"].map((n) => itemObject(byName(check, n)));
  // The failure message of an agent's step, as its rescue would print it after a timed-out Ready wait.
  const explain = (step(agents).rescue ?? [])[1] as Task;
  decide.push({
    name: "Evaluate the failure message",
    "ansible.builtin.debug": { msg: (explain.args as { msg: unknown }).msg },
    when: "inventory_hostname == 'k3s-worker-2'",
    vars: {
      ...explain.vars,
      upgrade_node_name: "k3s-worker-2",
      ansible_failed_task: { name: `Wait until the node is Ready at ${TARGET}` },
      ansible_failed_result: { msg: "Task failed.", stderr: "one\ntwo\nthree\nfour\n", attempts: 60 },
      upgrade_seen: { rc: 0, stdout: `version=${OLD} ready=False` },
    },
  });
  const leaders = byName(servers, "Wait until the controllers it led have a leader again");
  /** The leader wait's condition on one before/after pair of `kubectl get lease` outputs. */
  const leaderCase = (before: string[], after: string[]) => ({
    name: "Evaluate the leader wait",
    "ansible.builtin.debug": { msg: `{{ ${(leaders.until as string[]).map((c) => `(${c})`).join(" and ")} }}` },
    vars: { upgrade_leaders_before: { stdout_lines: before }, upgrade_leaders: { rc: 0, stdout_lines: after } },
  });
  const CM = "kube-controller-manager";
  const SCHED = "kube-scheduler";
  const playbook = [
    {
      name: "Decide",
      hosts: "k3s_cluster",
      gather_facts: false,
      vars: {
        k3s_binary_version: TARGET,
        upgrade_nodes: { stdout: nodes },
        upgrade_version: `{{ {'installed': installed[inventory_hostname], 'upgrade': installed[inventory_hostname] != '${TARGET}'} }}`,
        installed: Object.fromEntries(Object.entries(CLUSTER).map(([h, [v]]) => [h, v])),
      },
      tasks: decide,
    },
    {
      name: "Leaders",
      hosts: "k3s-master-1",
      gather_facts: false,
      tasks: [
        // It led both: wait until both have another holder (a new process of the same server is another holder).
        leaderCase([`${CM}=k3s-master-1_aaa`, `${SCHED}=k3s-master-1_bbb`], [`${CM}=k3s-master-1_aaa`, `${SCHED}=k3s-master-1_bbb`]),
        leaderCase([`${CM}=k3s-master-1_aaa`, `${SCHED}=k3s-master-1_bbb`], [`${CM}=k3s-master-1_ccc`, `${SCHED}=k3s-master-1_bbb`]),
        leaderCase([`${CM}=k3s-master-1_aaa`, `${SCHED}=k3s-master-1_bbb`], [`${CM}=k3s-master-2_ddd`, `${SCHED}=k3s-master-1_eee`]),
        // Released, not yet taken.
        leaderCase([`${CM}=k3s-master-1_aaa`, `${SCHED}=k3s-master-2_bbb`], [`${CM}=`, `${SCHED}=k3s-master-2_bbb`]),
        // Led elsewhere: nothing to wait for.
        leaderCase([`${CM}=k3s-master-2_aaa`, `${SCHED}=k3s-master-3_bbb`], [`${CM}=k3s-master-2_aaa`, `${SCHED}=k3s-master-3_bbb`]),
        // A server whose name another one's starts with (k3s-master-1 and k3s-master-10).
        leaderCase([`${CM}=k3s-master-10_aaa`], [`${CM}=k3s-master-10_aaa`]),
      ],
    },
  ];
  // Folded expressions as the YAML reads them back: their text.
  fs.writeFileSync(path.join(dir, "decide.yml"), JSON.stringify(playbook, (_key, value: unknown) => (value instanceof Folded ? value.text : value)));
  let out: string;
  try {
    out = execFileSync(PLAYBOOK_BIN, ["-i", path.join(dir, "hosts.ini"), path.join(dir, "decide.yml")], {
      encoding: "utf8",
      cwd: dir,
      env: ansibleTestEnv(dir),
      timeout: 120_000,
    });
  } catch (error) {
    const e = error as { stdout?: string; stderr?: string };
    throw new Error(`ansible-playbook failed:\n${e.stdout ?? ""}\n${e.stderr ?? ""}`);
  }
  results = {};
  for (const play of JSON.parse(out).plays as { play: { name: string }; tasks: { hosts: Record<string, HostResult> }[] }[]) {
    for (const task of play.tasks) for (const [host, result] of Object.entries(task.hosts)) (results[`${play.play.name}/${host}`] ??= []).push(result);
  }
}, 180_000);

describe.skipIf(!haveAnsible)("upgrade.yml's decisions, evaluated by Ansible", () => {
  const facts = (host: string) => Object.assign({}, ...results[`Decide/${host}`].map((r) => r.ansible_facts ?? {})) as Record<string, unknown>;

  it("a node is done when its binary and kubelet are at the target and the upgrade has no mark on it", () => {
    expect(facts("k3s-master-1")).toMatchObject({ upgrade_node_name: "k3s-master-1", upgrade_needed: false, upgrade_keep_cordoned: false });
    expect(facts("k3s-worker-1")).toMatchObject({ upgrade_from: OLD, upgrade_needed: true, upgrade_keep_cordoned: false });
    // The message says what the node ran (its kubelet), not the binary a stopped run already put in place.
    expect(facts("k3s-worker-2")).toMatchObject({ upgrade_from: OLD, upgrade_needed: true });
    expect(facts("k3s-worker-5")).toMatchObject({ upgrade_node_name: "custom-name", upgrade_needed: false });
  });

  it("continues with the node a stopped run left cordoned, and leaves one the operator cordoned cordoned", () => {
    expect(facts("k3s-worker-3")).toMatchObject({ upgrade_marked: true, upgrade_needed: true, upgrade_keep_cordoned: false });
    expect(facts("k3s-worker-4")).toMatchObject({ upgrade_marked: false, upgrade_needed: true, upgrade_keep_cordoned: true });
  });

  it("says which servers and agents it will upgrade and which are already at the target", () => {
    const say = results["Decide/k3s-master-1"].find((r) => Array.isArray(r.msg))!;
    expect(say.msg).toEqual([
      `Target: K3s ${TARGET}.`,
      "Servers, one at a time: none.",
      "Agents, 1 at a time: k3s-worker-1, k3s-worker-2, k3s-worker-3, k3s-worker-4.",
      `Already at ${TARGET}: k3s-master-1, k3s-worker-5.`,
    ]);
  });

  it("names, on a failure, the node, the step, what Kubernetes sees, and the nodes still at the old version", () => {
    const result = results["Decide/k3s-worker-2"].find((r) => typeof r.msg === "string" && r.msg.startsWith("The upgrade stopped"))!;
    expect(result.msg).toBe(
      `The upgrade stopped at k3s-worker-2 (${OLD} -> ${TARGET}) in the step "Wait until the node is Ready at ${TARGET}": Task failed. ` +
        `two / three / four. Kubernetes now reports k3s-worker-2 at version=${OLD} ready=False. k3s-worker-2 is left cordoned; ` +
        "not upgraded yet, at their old version: k3s-worker-1, k3s-worker-3, k3s-worker-4. Find the cause (journalctl -u k3s-agent on " +
        "k3s-worker-2; a drain waits for PodDisruptionBudgets and fails on pods no controller manages), fix it and run make upgrade again: " +
        `it continues with k3s-worker-2 and skips the nodes already at ${TARGET}. To give k3s-worker-2 back to the workloads meanwhile: ` +
        "kubectl uncordon k3s-worker-2.",
    );
  });

  it("after a server's restart, waits until every controller it led has another holder", () => {
    expect(results["Leaders/k3s-master-1"].map((r) => r.msg)).toEqual([false, false, true, false, true, true]);
  });
});
