/**
 * `ansible/upgrade.yml` (make upgrade): K3s on every node brought to k3s_binary_version (k3s_version in
 * terraform.tfvars), one node at a time, without taking the workloads down.
 *
 * 1. Check, before touching anything: every node's installed version (the k3s_version_check module refuses a
 *    downgrade, a skipped minor version, another major version and a node without K3s, saying what to do instead),
 *    its node object in Kubernetes, and the batch size. Then the new binary is staged and verified on every node
 *    that needs it (k3s_binary's tasks/stage.yml), so a bad mirror or air-gap file fails here, before any drain.
 * 2. The servers, one at a time; 3. the agents, k3s_upgrade_batch at a time (default 1). For each node not yet
 *    done: mark it (annotation), cordon, drain (the eviction API, so PodDisruptionBudgets are honoured), run its
 *    role (installs the staged binary and restarts K3s through the role's handler), wait until Kubernetes reports
 *    it Ready at the new version, uncordon, unmark, and say how long it took. After a server, also wait until the
 *    controller manager and the scheduler it led have a leader again (else evicted pods are not replaced and
 *    Service endpoints not updated while the next node drains).
 *
 * A node is done when its binary and its kubelet are at the target and it carries no mark: a second run changes
 * nothing. The first node that fails stops the run (max_fail_percentage 0: no later batch starts); it stays
 * cordoned and marked, the message says which node, what was seen and that a re-run continues with it. A node the
 * operator had cordoned before the upgrade is upgraded and left cordoned.
 */
import { folded, Item, Play, Task } from "./model";
import { K3S } from "./roles/k3s_binary";

export const UPGRADE_SOURCE = "constructs/ansible/upgrade.ts";

/** Set on a node while the upgrade has it cordoned; a node carrying it is not done. */
export const UPGRADE_MARK = "k3s-proxmox/upgrade-cordoned";

/** The drain of remove-nodes.yml without --force: a pod no controller would recreate stops the upgrade instead of being deleted. */
export const DRAIN_FLAGS = ["--ignore-daemonsets", "--delete-emptydir-data", "--timeout={{ k3s_upgrade_drain_timeout | default(300, true) }}s"];

/** Every node of the inventory, with the facts the check play set. */
const NODES = "groups['k3s_cluster'] | map('extract', hostvars)";
/** One node alone has nowhere to move its pods to: it is upgraded in place, without cordon and drain. */
const DRAINING = "groups['k3s_cluster'] | length > 1";
const NOT_OPERATORS = "not upgrade_keep_cordoned | bool";

const kubectl = (...args: string[]) => ({ argv: [K3S, "kubectl", ...args] });

/**
 * The controllers whose leader must run again before the next node is drained: a server restarted while it led
 * them leaves, until a new leader takes its lease (some 15 s), nobody to replace evicted pods or update endpoints.
 */
export const LEADER_LEASES = ["kube-controller-manager", "kube-scheduler"];
const LEADERS = kubectl(
  "get", "lease", "--namespace", "kube-system", ...LEADER_LEASES, "--output",
  'jsonpath={range .items[*]}{.metadata.name}={.spec.holderIdentity}{"\\n"}{end}',
);
/** Lines `<lease>=<holder>` this server held before its restart (holders are `<hostname>_<uuid>`). */
const LED_HERE = "upgrade_leaders_before.stdout_lines | select('search', '=' ~ (ansible_facts.nodename | default(inventory_hostname)) ~ '_')";

/** The node's kubelet version and Ready condition, as `version=<v> ready=<True|False|Unknown>`. */
const READY_QUERY = kubectl(
  "get", "node", "{{ upgrade_node_name }}", "--output",
  'jsonpath=version={.status.nodeInfo.kubeletVersion} ready={.status.conditions[?(@.type=="Ready")].status}',
);

/** The server kubectl runs on for an agent; for a server, the server itself (its API is local, and up until its restart). */
const FIRST_SERVER = "{{ groups['master'] | first }}";

const checkPlay: Play = {
  name: "Check the upgrade: every node's version and the new binary staged (verified) on each, before any drain",
  hosts: "k3s_cluster",
  gather_facts: false,
  become: true,
  any_errors_fatal: true,
  tasks: [
    {
      name: "Check the batch size",
      module: "ansible.builtin.assert",
      args: {
        that: ["(k3s_upgrade_batch | default(1, true) | string) is match('^[1-9][0-9]*%?$')"],
        fail_msg: "k3s_upgrade_batch = '{{ k3s_upgrade_batch | default(1, true) }}': give the number of agents upgraded at a time (or a percentage, e.g. 25%).",
        quiet: true,
      },
      run_once: true,
    },
    {
      // network: the node roles find the interface that carries the node IP; platform: the CPU, for the release's binary.
      name: "Gather the facts the roles use",
      module: "ansible.builtin.setup",
      args: { gather_subset: ["!all", "!min", "network", "platform"] },
    },
    {
      name: "Read the installed K3s version and judge the step to {{ k3s_binary_version }}",
      module: "k3s_version_check",
      args: { binary: K3S, version: "{{ k3s_binary_version }}", node: "{{ inventory_hostname }}" },
      register: "upgrade_version",
    },
    {
      name: "Refuse a downgrade, a skipped minor version, or a node without K3s",
      module: "ansible.builtin.assert",
      args: { that: ["upgrade_version.refusal | length == 0"], fail_msg: "{{ upgrade_version.refusal }} Nothing was changed.", quiet: true },
    },
    {
      name: "Read the nodes from Kubernetes",
      module: "ansible.builtin.command",
      args: kubectl("get", "nodes", "--output", "json"),
      delegate_to: FIRST_SERVER,
      run_once: true,
      register: "upgrade_nodes",
      changed_when: false,
    },
    {
      name: "Find this node's state",
      module: "ansible.builtin.set_fact",
      args: {
        upgrade_node_name: "{{ upgrade_name }}",
        upgrade_node: "{{ (upgrade_nodes.stdout | from_json)['items'] | selectattr('metadata.name', 'equalto', upgrade_name) | list | first | default({}) }}",
      },
      // The Kubernetes node name: the role's node_name variable where the inventory sets it, else the inventory name.
      vars: { upgrade_name: "{{ (k3s_master_node_name if inventory_hostname in groups['master'] else k3s_worker_node_name) | default(inventory_hostname) }}" },
    },
    {
      name: "Check that the cluster knows this node",
      module: "ansible.builtin.assert",
      args: {
        that: ["upgrade_node | length > 0"],
        fail_msg: folded(`
          {{ inventory_hostname }} runs K3s {{ upgrade_version.installed }}, but the cluster has no node {{ upgrade_node_name }}
          (it has: {{ (upgrade_nodes.stdout | from_json)['items'] | map(attribute='metadata.name') | join(', ') }}).
          Run make provision to join it, or take it out of terraform.tfvars (make apply). Nothing was changed.`),
        quiet: true,
      },
    },
    {
      name: "Decide what the upgrade does on this node",
      module: "ansible.builtin.set_fact",
      args: {
        // What the node runs: its kubelet's version (the binary may be newer if a run stopped before the restart).
        upgrade_from: "{{ upgrade_node.status.nodeInfo.kubeletVersion | default('', true) or upgrade_version.installed }}",
        upgrade_marked: `{{ '${UPGRADE_MARK}' in (upgrade_node.metadata.annotations | default({})) }}`,
        // Cordoned before this upgrade, by the operator: upgraded, and left cordoned.
        upgrade_keep_cordoned: `{{ (upgrade_node.spec.unschedulable | default(false)) and '${UPGRADE_MARK}' not in (upgrade_node.metadata.annotations | default({})) }}`,
        upgrade_needed: folded(`
          {{ upgrade_version.upgrade or upgrade_node.status.nodeInfo.kubeletVersion | default('') != k3s_binary_version
             or '${UPGRADE_MARK}' in (upgrade_node.metadata.annotations | default({})) }}`),
      },
    },
    {
      name: "Stage the new binary on the nodes that need it (verified; nothing installed, nothing restarted)",
      module: "ansible.builtin.include_role",
      args: { name: "k3s_binary", tasks_from: "stage" },
      when: "upgrade_version.upgrade",
    },
    {
      name: "Say what happens",
      module: "ansible.builtin.debug",
      args: {
        msg: [
          "Target: K3s {{ k3s_binary_version }}.",
          "Servers, one at a time: {{ groups['master'] | map('extract', hostvars) | selectattr('upgrade_needed') | map(attribute='inventory_hostname') | join(', ') or 'none' }}.",
          "Agents, {{ k3s_upgrade_batch | default(1, true) }} at a time: {{ groups['workers'] | default([]) | map('extract', hostvars) | selectattr('upgrade_needed') | map(attribute='inventory_hostname') | join(', ') or 'none' }}.",
          `Already at {{ k3s_binary_version }}: {{ ${NODES} | rejectattr('upgrade_needed') | map(attribute='inventory_hostname') | join(', ') or 'none' }}.`,
        ],
      },
      run_once: true,
    },
  ],
};

/** The steps for one node, as one block whose rescue says what happened and how to go on. */
function nodeUpgrade(role: "k3s_master" | "k3s_worker", kubectlHost: string | undefined): Item {
  const on = (task: Task): Task => (kubectlHost ? { ...task, delegate_to: kubectlHost } : task);
  const node = "{{ upgrade_node_name }}";
  return {
    name: "Upgrade {{ inventory_hostname }}",
    when: "upgrade_needed | bool",
    block: [
      { name: "Note the time", module: "ansible.builtin.set_fact", args: { upgrade_started: "{{ now().timestamp() | int }}" } },
      on({
        // Marked first: if the run stops between the two, the next run still knows the cordon is the upgrade's.
        name: "Mark the node as cordoned by the upgrade",
        module: "ansible.builtin.command",
        args: kubectl("annotate", "--overwrite", "node", node, `${UPGRADE_MARK}={{ k3s_binary_version }}`),
        register: "upgrade_mark",
        changed_when: "not upgrade_marked | bool",
        when: [DRAINING, NOT_OPERATORS],
      }),
      on({
        name: "Cordon",
        module: "ansible.builtin.command",
        args: kubectl("cordon", node),
        register: "upgrade_cordon",
        changed_when: "'already cordoned' not in upgrade_cordon.stdout",
        when: DRAINING,
      }),
      on({
        name: "Drain (evictions honour PodDisruptionBudgets; DaemonSets stay)",
        module: "ansible.builtin.command",
        args: kubectl("drain", node, ...DRAIN_FLAGS),
        register: "upgrade_drain",
        changed_when: true,
        when: DRAINING,
      }),
      {
        name: "Show what the drain did",
        module: "ansible.builtin.debug",
        args: { msg: "{{ upgrade_drain.stdout_lines + upgrade_drain.stderr_lines }}" },
        when: DRAINING,
      },
      ...(role === "k3s_master"
        ? [
            {
              name: "Note which controllers this server leads",
              module: "ansible.builtin.command",
              args: LEADERS,
              register: "upgrade_leaders_before",
              changed_when: false,
            } satisfies Task,
          ]
        : []),
      {
        name: `Install the staged binary, restart K3s and wait for it (role ${role})`,
        module: "ansible.builtin.include_role",
        args: { name: role },
      },
      on({
        name: "Wait until the node is Ready at {{ k3s_binary_version }}",
        module: "ansible.builtin.command",
        args: READY_QUERY,
        register: "upgrade_ready",
        until: "upgrade_ready.rc == 0 and upgrade_ready.stdout == 'version=' ~ k3s_binary_version ~ ' ready=True'",
        retries: "{{ k3s_upgrade_ready_retries | default(300, true) }}",
        delay: 1,
        changed_when: false,
      }),
      ...(role === "k3s_master"
        ? [
            {
              name: "Wait until the controllers it led have a leader again",
              module: "ansible.builtin.command",
              args: LEADERS,
              register: "upgrade_leaders",
              until: [
                "upgrade_leaders.rc == 0",
                "upgrade_leaders.stdout_lines | select('match', '^[^=]+=$') | list | length == 0",
                `${LED_HERE} | intersect(upgrade_leaders.stdout_lines) | length == 0`,
              ],
              retries: "{{ k3s_upgrade_ready_retries | default(300, true) }}",
              delay: 1,
              changed_when: false,
            } satisfies Task,
          ]
        : []),
      on({
        name: "Uncordon",
        module: "ansible.builtin.command",
        args: kubectl("uncordon", node),
        register: "upgrade_uncordon",
        changed_when: "'already uncordoned' not in upgrade_uncordon.stdout",
        when: [DRAINING, NOT_OPERATORS],
      }),
      on({
        name: "Remove the mark",
        module: "ansible.builtin.command",
        args: kubectl("annotate", "node", node, `${UPGRADE_MARK}-`),
        register: "upgrade_unmark",
        changed_when: true,
        when: [DRAINING, NOT_OPERATORS],
      }),
      {
        name: "Say how it went",
        module: "ansible.builtin.debug",
        args: {
          msg: folded(`
            upgraded {{ upgrade_node_name }} from {{ upgrade_from }} to {{ k3s_binary_version }}
            in {{ now().timestamp() | int - upgrade_started | int }} s{{ ' (left cordoned, as it was before)' if upgrade_keep_cordoned | bool else '' }}.`),
        },
      },
      { name: "Count it done", module: "ansible.builtin.set_fact", args: { upgrade_done: true } },
    ],
    rescue: [
      on({
        name: "Ask Kubernetes how the node is now",
        module: "ansible.builtin.command",
        args: READY_QUERY,
        register: "upgrade_seen",
        changed_when: false,
        failed_when: false,
      }),
      {
        name: "Explain where the upgrade stopped",
        module: "ansible.builtin.fail",
        args: {
          msg: folded(`
            The upgrade stopped at {{ upgrade_node_name }} ({{ upgrade_from }} -> {{ k3s_binary_version }}) in the step
            "{{ ansible_failed_task.name | default('?') }}": {{ upgrade_why }}. Kubernetes now reports {{ upgrade_node_name }} at
            {{ upgrade_seen.stdout if upgrade_seen.rc | default(1) == 0 else '(no answer: ' ~ (upgrade_seen.stderr | default('') | trim) ~ ')' }}.
            {{ upgrade_node_name ~ ' is left cordoned' if ${DRAINING} else upgrade_node_name ~ ' is the only node' }};
            not upgraded yet, at their old version: {{ upgrade_left | join(', ') or 'none' }}.
            Find the cause (journalctl -u {{ 'k3s' if inventory_hostname in groups['master'] else 'k3s-agent' }} on {{ inventory_hostname }};
            a drain waits for PodDisruptionBudgets and fails on pods no controller manages), fix it and run make upgrade again:
            it continues with {{ upgrade_node_name }} and skips the nodes already at {{ k3s_binary_version }}.
            To give {{ upgrade_node_name }} back to the workloads meanwhile: kubectl uncordon {{ upgrade_node_name }}.`),
        },
        vars: {
          upgrade_why: folded(`
            {{ [ansible_failed_result.msg | default(''), (ansible_failed_result.stderr | default('') | trim).splitlines()[-3:] | join(' / ')]
               | map('trim') | select | join(' ') | regex_replace('[.]$', '') }}`),
          upgrade_left: folded(`
            {{ ${NODES} | selectattr('upgrade_needed') | rejectattr('upgrade_done', 'defined')
               | map(attribute='inventory_hostname') | reject('equalto', inventory_hostname) | list }}`),
        },
      },
    ],
  };
}

export const upgradePlays: readonly Play[] = [
  checkPlay,
  {
    name: "Upgrade the K3s servers, one at a time",
    hosts: "master",
    gather_facts: false,
    become: true,
    serial: 1,
    max_fail_percentage: 0,
    tasks: [nodeUpgrade("k3s_master", undefined)],
  },
  {
    name: "Upgrade the K3s agents, k3s_upgrade_batch at a time",
    hosts: "workers",
    gather_facts: false,
    become: true,
    serial: "{{ k3s_upgrade_batch | default(1, true) }}",
    max_fail_percentage: 0,
    tasks: [nodeUpgrade("k3s_worker", FIRST_SERVER)],
  },
];
