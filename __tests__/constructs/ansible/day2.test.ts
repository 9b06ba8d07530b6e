import * as fs from "node:fs";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { groupVarsValues } from "../../../constructs/ansible/group-vars";
import { dashboardTokenPlays } from "../../../constructs/ansible/apps";
import { backupPlays, removeNodesPlays, RESET_PATHS, resetPlays, restorePlays } from "../../../constructs/ansible/day2";
import { isBlock, Item, Play, Task } from "../../../constructs/ansible/model";
import { testConfig } from "../../helpers";

/** Every task of a play, blocks flattened (rescue included), in order. */
const tasksOf = (play: Play): Task[] => (play.tasks ?? []).flatMap(function flat(item: Item): Task[] {
  return isBlock(item) ? [...item.block, ...(item.rescue ?? [])].flatMap(flat) : [item];
});
const names = (plays: readonly Play[]) => plays.flatMap((p) => tasksOf(p).map((t) => t.name));
const argvOf = (task: Task) => ((task.args as { argv?: string[] }).argv ?? []).join(" ");

describe("restore.yml", () => {
  it("checks the snapshot and the confirmation on this machine before touching a server, and stops at the first failure", () => {
    const [check, ...rest] = restorePlays;
    expect(check.hosts).toBe("localhost");
    expect(tasksOf(check).map((t) => t.module)).toEqual(["ansible.builtin.assert", "etcd_snapshot_check", "ansible.builtin.pause", "ansible.builtin.assert"]);
    for (const play of restorePlays.slice(0, -1)) expect(play.any_errors_fatal, play.name).toBe(true);
    expect(rest.map((p) => p.hosts)).toEqual(["master[0]", "master", "master[0]", "master[1:]", "master[0]"]);
  });

  it("follows K3s's recovery flow: stop every server, cluster-reset the first from the snapshot, start it, re-join the others with empty etcd", () => {
    const order = names(restorePlays);
    const at = (name: string) => {
      const i = order.indexOf(name);
      expect(i, name).toBeGreaterThanOrEqual(0);
      return i;
    };
    expect(at("Copy the snapshot (unless the same file is there)")).toBeLessThan(at("Stop k3s"));
    const reset = tasksOf(restorePlays[3]).find((t) => argvOf(t).includes("--cluster-reset"))!;
    expect(argvOf(reset)).toMatch(/server --config \/etc\/rancher\/k3s\/config\.yaml --cluster-reset --cluster-reset-restore-path=\/var\/lib\/rancher\/k3s\/server\/db\/snapshots\//);
    expect(at("Stop k3s")).toBeLessThan(order.indexOf(reset.name));
    expect(tasksOf(restorePlays[4]).map((t) => t.name)).toEqual(["Move the old etcd data aside", "Start k3s", "Wait until the API server answers /readyz"]);
    expect(restorePlays[4].serial).toBe(1);
  });
});

describe("remove-nodes.yml", () => {
  it("drains, then deletes the node objects, and only then stops the services; the VMs go in make apply after it", () => {
    const order = names(removeNodesPlays);
    const drain = order.indexOf("Drain (evict every pod but DaemonSets')");
    expect(drain).toBeGreaterThan(order.indexOf("Check the confirmation"));
    expect(order.indexOf("Delete the node objects")).toBeGreaterThan(drain);
    expect(order.indexOf("Stop and disable the K3s services")).toBeGreaterThan(order.indexOf("Delete the node objects"));
    const makefile = fs.readFileSync(path.resolve(__dirname, "../../../Makefile"), "utf8");
    const apply = makefile.slice(makefile.indexOf("\napply:"), makefile.indexOf("\ndestroy:"));
    expect(apply.indexOf("remove-nodes")).toBeGreaterThan(0);
    expect(apply.indexOf("remove-nodes")).toBeLessThan(apply.indexOf("apply -input=false"));
  });

  it("compares the inventory with the nodes of terraform.tfvars, which synth writes into group_vars", () => {
    expect(groupVarsValues(testConfig({ worker_count: 3 })).cluster_nodes).toEqual(["k3s-master-1", "k3s-worker-1", "k3s-worker-2", "k3s-worker-3"]);
    const compare = tasksOf(removeNodesPlays[0])[0];
    expect(compare.args).toEqual({ remove_nodes: "{{ groups['k3s_cluster'] | default([]) | difference(cluster_nodes) }}" });
  });
});

describe("reset.yml and backup.yml", () => {
  it("reset asks first, on this machine", () => {
    expect(resetPlays[0].hosts).toBe("localhost");
    expect(RESET_PATHS, "the staged K3s binaries go too").toContain("/var/lib/k3s-proxmox");
    expect(tasksOf(resetPlays[0]).map((t) => t.module)).toEqual(["ansible.builtin.pause", "ansible.builtin.assert"]);
    expect(resetPlays[1].hosts).toBe("k3s_cluster");
    // systemd lists a unit another one only names (k3s-firewall.service is ordered before both) as not-found.
    const stop = tasksOf(resetPlays[1]).find((t) => t.name === "Stop and disable the K3s services")!;
    expect(stop.when).toBe("ansible_facts.services.get(item ~ '.service', {}).get('status', 'not-found') != 'not-found'");
  });

  it("backup saves a timestamped snapshot and fetches it with its checksum verified, mode 0600", () => {
    const tasks = tasksOf(backupPlays[0]);
    expect(argvOf(tasks[1])).toMatch(/ etcd-snapshot save --name \{\{ backup_name \}\}$/);
    expect(tasks.find((t) => t.module === "ansible.builtin.fetch")!.args).toMatchObject({ validate_checksum: true, flat: true });
    expect(tasks.find((t) => t.module === "ansible.builtin.file")!.args).toMatchObject({ mode: "0600" });
  });
});

describe("dashboard-token.yml", () => {
  it("asks the API for a 1-hour token of the dashboard's login account, keeps it out of the task log, and prints it once", () => {
    const [create, explain, print] = tasksOf(dashboardTokenPlays[0]);
    expect(argvOf(create)).toMatch(/ kubectl --namespace monitoring create token \{\{ dashboard_token_account \}\} --duration=1h$/);
    // make dashboard-admin-token passes dashboard_admin=true; otherwise group_vars' account (headlamp-viewer under hardened).
    expect(dashboardTokenPlays[0].vars).toEqual({
      dashboard_admin: false,
      dashboard_token_account: "{{ 'headlamp-admin' if dashboard_admin | bool else dashboard_login_account | default('headlamp-admin') }}",
    });
    expect(create.no_log).toBe(true);
    expect(explain.when).toBe("dashboard_token.rc != 0");
    expect(print.args).toEqual({ msg: "{{ dashboard_token.stdout }}" });
  });
});
