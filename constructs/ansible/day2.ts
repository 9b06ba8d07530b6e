/**
 * Day-2 playbooks: `backup.yml` (make backup), `restore.yml` (make restore), `remove-nodes.yml` (make
 * remove-nodes, which make apply runs before Terraform) and `reset.yml` (make reset).
 *
 * Whatever destroys something asks first: `confirm=yes` (make's CONFIRM=yes) or "yes" typed at the prompt;
 * without a terminal there is no prompt, so only CONFIRM=yes goes ahead.
 */
import { folded, Item, Play, Task } from "./model";
import { readyzWait } from "./roles/k3s-service";
import { K3S, K3S_STAGE_DIR } from "./roles/k3s_binary";
import { K3S_CONFIG } from "./roles/k3s_master";
import { KEEPALIVED_CONFIG, VIP_CHECK_SCRIPT } from "./roles/k3s_vip";

export const DAY2_SOURCE = "constructs/ansible/day2.ts";

/** Where K3s keeps etcd snapshots on a server. */
export const SNAPSHOT_DIR = "/var/lib/rancher/k3s/server/db/snapshots";
const SERVER_DB = "/var/lib/rancher/k3s/server/db";

/** Ask before `what` happens, unless confirm=yes was given; fail, changing nothing, without a yes. */
function confirmation(what: string, rerun: string): Item[] {
  return [
    {
      name: "Ask for confirmation",
      module: "ansible.builtin.pause",
      args: { prompt: folded(`${what} Type yes to go on`) },
      register: "day2_answer",
      when: "confirm | default('') != 'yes'",
    },
    {
      name: "Check the confirmation",
      module: "ansible.builtin.assert",
      args: {
        that: ["confirm | default('') == 'yes' or (day2_answer.user_input | default('') | trim) == 'yes'"],
        fail_msg: folded(`Not confirmed, nothing was changed. ${what} To go on, answer yes at the prompt or run ${rerun} CONFIRM=yes.`),
        quiet: true,
      },
    },
  ];
}

/** Bounded wait (5 minutes) until the local API server answers /readyz. */
const waitForApi = readyzWait("Wait until the API server answers /readyz", K3S, "day2_readyz", 60, 5);

/** Bounded wait until every node is Ready, asked on this server. */
const waitForNodes: Task = {
  name: "Wait until every node is Ready",
  module: "ansible.builtin.command",
  args: { argv: [K3S, "kubectl", "get", "nodes", "--no-headers", "-o", "custom-columns=NAME:.metadata.name,READY:.status.conditions[?(@.type=='Ready')].status"] },
  register: "day2_nodes",
  until: "day2_nodes.rc == 0 and day2_nodes.stdout_lines | length > 0 and day2_nodes.stdout_lines | reject('search', ' True$') | list | length == 0",
  retries: 300,
  delay: 1,
  changed_when: false,
};

/** Stops and disables the server and the agent service (each playbook adds its own condition). */
const stopK3sServices: Task = {
  name: "Stop and disable the K3s services",
  module: "ansible.builtin.systemd_service",
  args: { name: "{{ item }}", state: "stopped", enabled: false },
  loop: ["k3s", "k3s-agent"],
};

const startK3s: Task = {
  name: "Start k3s",
  module: "ansible.builtin.systemd_service",
  // no_block: the start waits for K3s's readiness signal without a timeout; the /readyz wait bounds it.
  args: { name: "k3s", state: "started", no_block: true },
};

export const backupPlays: readonly Play[] = [
  {
    name: "Save an etcd snapshot on the first server and copy it to this machine",
    hosts: "master[0]",
    gather_facts: false,
    become: true,
    vars: { backup_dir: "{{ playbook_dir | dirname }}/backups" },
    tasks: [
      {
        name: "Name the snapshot after the time (UTC)",
        module: "ansible.builtin.set_fact",
        args: { backup_name: "k3spve-{{ now(utc=true, fmt='%Y%m%d-%H%M%S') }}" },
      },
      {
        // K3s names the file <name>-<node>-<unix time>; with etcd-s3 configured it uploads it as well.
        name: "Save the snapshot (k3s etcd-snapshot save)",
        module: "ansible.builtin.command",
        args: { argv: [K3S, "etcd-snapshot", "save", "--name", "{{ backup_name }}"] },
        changed_when: true,
      },
      {
        name: "Find the snapshot file",
        module: "ansible.builtin.find",
        args: { paths: SNAPSHOT_DIR, patterns: "{{ backup_name }}-*" },
        register: "backup_found",
      },
      {
        name: "Check that there is exactly one",
        module: "ansible.builtin.assert",
        args: {
          that: ["backup_found.matched == 1"],
          fail_msg: `Expected one snapshot named {{ backup_name }}-* in ${SNAPSHOT_DIR}, found {{ backup_found.matched }}.`,
          quiet: true,
        },
      },
      {
        name: "Copy it to this machine",
        module: "ansible.builtin.fetch",
        args: { src: "{{ backup_found.files[0].path }}", dest: "{{ backup_dir }}/", flat: true, validate_checksum: true },
        register: "backup_fetched",
      },
      {
        name: "Make the copy readable by its owner only (it holds every Secret of the cluster)",
        module: "ansible.builtin.file",
        args: { path: "{{ backup_fetched.dest }}", mode: "0600" },
        delegate_to: "localhost",
        become: false,
      },
      {
        name: "Say where it is",
        module: "ansible.builtin.debug",
        args: {
          msg: [
            "Snapshot {{ backup_fetched.dest | basename }} ({{ backup_found.files[0].size }} bytes) saved in {{ backup_fetched.dest }}",
            "Restore it with: make restore SNAPSHOT={{ backup_fetched.dest }}",
          ],
        },
      },
    ],
  },
];

export const restorePlays: readonly Play[] = [
  {
    name: "Check the snapshot and ask before restoring it",
    hosts: "localhost",
    gather_facts: false,
    any_errors_fatal: true,
    tasks: [
      {
        name: "Check that a snapshot was named",
        module: "ansible.builtin.assert",
        args: {
          that: ["restore_snapshot | default('') | length > 0"],
          fail_msg: "Name the snapshot to restore: make restore SNAPSHOT=backups/<file> (make backup writes them there).",
          quiet: true,
        },
      },
      {
        name: "Check that it is an intact etcd snapshot",
        module: "etcd_snapshot_check",
        args: { path: "{{ restore_snapshot }}" },
      },
      ...confirmation(
        "Restoring {{ restore_snapshot | basename }} stops K3s on every server and replaces the cluster's whole state " +
          "with the snapshot's: objects created since then are lost.",
        "make restore SNAPSHOT={{ restore_snapshot }}",
      ),
    ],
  },
  {
    name: "Copy the snapshot to the first server",
    hosts: "master[0]",
    gather_facts: false,
    become: true,
    any_errors_fatal: true,
    tasks: [
      {
        name: "Copy the snapshot (unless the same file is there)",
        module: "ansible.builtin.copy",
        args: { src: "{{ restore_snapshot }}", dest: `${SNAPSHOT_DIR}/{{ restore_snapshot | basename }}`, owner: "root", group: "root", mode: "0600" },
      },
    ],
  },
  {
    name: "Stop K3s on every server",
    hosts: "master",
    gather_facts: false,
    become: true,
    any_errors_fatal: true,
    tasks: [{ name: "Stop k3s", module: "ansible.builtin.systemd_service", args: { name: "k3s", state: "stopped" } }],
  },
  {
    name: "Reset the first server's etcd from the snapshot, then start it",
    hosts: "master[0]",
    gather_facts: false,
    become: true,
    any_errors_fatal: true,
    tasks: [
      {
        name: "Restore",
        block: [
          {
            // Reads the server configuration; moves the old etcd data aside, restores, and exits.
            name: "Reset etcd to the snapshot (k3s server --cluster-reset --cluster-reset-restore-path)",
            module: "ansible.builtin.command",
            args: { argv: [K3S, "server", "--config", K3S_CONFIG, "--cluster-reset", `--cluster-reset-restore-path=${SNAPSHOT_DIR}/{{ restore_snapshot | basename }}`] },
            register: "restore_reset",
            changed_when: true,
          },
        ],
        rescue: [
          {
            name: "Start k3s again on its old data",
            module: "ansible.builtin.systemd_service",
            args: { name: "k3s", state: "started", no_block: true },
          },
          {
            name: "Explain the failure",
            module: "ansible.builtin.fail",
            args: {
              msg: folded(`
                k3s server --cluster-reset failed: {{ (ansible_failed_result.stderr | default('') | trim).splitlines()[-5:] | join(' / ') }}.
                K3s was started again; see 'journalctl -u k3s' on {{ inventory_hostname }}.`),
            },
          },
        ],
      },
      startK3s,
      waitForApi,
    ],
  },
  {
    name: "Re-join the other servers with empty etcd data, one at a time",
    hosts: "master[1:]",
    gather_facts: false,
    become: true,
    serial: 1,
    any_errors_fatal: true,
    tasks: [
      {
        name: "Move the old etcd data aside",
        module: "ansible.builtin.command",
        args: { argv: ["mv", SERVER_DB, `${SERVER_DB}.before-restore-{{ now(utc=true, fmt='%Y%m%d%H%M%S') }}`], removes: SERVER_DB },
      },
      startK3s,
      waitForApi,
    ],
  },
  {
    name: "Wait for the restored cluster",
    hosts: "master[0]",
    gather_facts: false,
    become: true,
    tasks: [waitForNodes, { name: "Show the nodes", module: "ansible.builtin.debug", args: { msg: "{{ day2_nodes.stdout_lines }}" } }],
  },
];

/** Nodes of the inventory that terraform.tfvars no longer lists (cluster_nodes, from make synth). */
const REMOVED = "hostvars['localhost']['remove_nodes'] | default([])";

export const removeNodesPlays: readonly Play[] = [
  {
    name: "Find the nodes terraform.tfvars no longer lists",
    hosts: "localhost",
    gather_facts: false,
    any_errors_fatal: true,
    tasks: [
      {
        name: "Compare the inventory with the configuration",
        module: "ansible.builtin.set_fact",
        args: { remove_nodes: "{{ groups['k3s_cluster'] | default([]) | difference(cluster_nodes) }}" },
      },
      {
        name: "Keep the first server",
        module: "ansible.builtin.assert",
        args: {
          that: ["groups['master'] | default([]) | first not in remove_nodes"],
          fail_msg: "The first server {{ groups['master'] | first }} holds the cluster's initial etcd member: it cannot be removed this way.",
          quiet: true,
        },
      },
      {
        name: "Say what happens",
        module: "ansible.builtin.debug",
        args: { msg: "{{ 'Nothing to remove.' if remove_nodes | length == 0 else 'To drain and delete: ' ~ remove_nodes | join(', ') }}" },
      },
      {
        name: "Confirm",
        block: confirmation(
          "{{ remove_nodes | join(', ') }} will be drained and deleted from Kubernetes; their VMs are destroyed by the apply that follows.",
          "make apply",
        ),
        when: "remove_nodes | length > 0",
      },
    ],
  },
  {
    name: "Drain and delete them from Kubernetes, before their VMs go",
    hosts: "master[0]",
    gather_facts: false,
    become: true,
    any_errors_fatal: true,
    tasks: [
      {
        name: "Drain (evict every pod but DaemonSets')",
        module: "ansible.builtin.command",
        args: { argv: [K3S, "kubectl", "drain", "{{ item }}", "--ignore-daemonsets", "--delete-emptydir-data", "--force", "--timeout=300s"] },
        loop: `{{ ${REMOVED} }}`,
        register: "remove_drain",
        changed_when: "remove_drain.rc == 0",
        failed_when: "remove_drain.rc != 0 and 'NotFound' not in remove_drain.stderr",
      },
      {
        name: "Show what the drain did",
        module: "ansible.builtin.debug",
        args: { msg: "{{ remove_drain.results | map(attribute='stdout_lines') | flatten }}" },
        when: `${REMOVED} | length > 0`,
      },
      {
        name: "Delete the node objects",
        module: "ansible.builtin.command",
        args: { argv: [K3S, "kubectl", "delete", "node", "{{ item }}", "--ignore-not-found"] },
        loop: `{{ ${REMOVED} }}`,
        register: "remove_delete",
        changed_when: "'deleted' in remove_delete.stdout",
      },
    ],
  },
  {
    name: "Stop K3s on them",
    hosts: "k3s_cluster",
    gather_facts: false,
    become: true,
    tasks: [
      // Best effort: the node's VM is about to go, and may be off already.
      { ...stopK3sServices, when: `inventory_hostname in ${REMOVED}`, failed_when: false, ignore_unreachable: true },
    ],
  },
];

/** What `make reset` takes away from each node, besides services and processes. */
export const RESET_PATHS = [
  "/etc/rancher/k3s",
  "/var/lib/rancher/k3s",
  "/var/lib/kubelet",
  "/var/lib/cni",
  "/run/k3s",
  "/run/flannel",
  "/etc/systemd/system/k3s.service",
  "/etc/systemd/system/k3s-agent.service",
  K3S_STAGE_DIR,
  // The API's virtual IP (role k3s_vip); the keepalived package stays.
  KEEPALIVED_CONFIG,
  VIP_CHECK_SCRIPT,
];
/** Network interfaces K3s (Flannel, the CNI bridge, kube-proxy) creates. */
export const RESET_INTERFACES = ["cni0", "flannel.1", "flannel-v6.1", "flannel-wg", "kube-ipvs0"];

export const resetPlays: readonly Play[] = [
  {
    name: "Ask before uninstalling K3s",
    hosts: "localhost",
    gather_facts: false,
    any_errors_fatal: true,
    tasks: confirmation(
      "make reset uninstalls K3s from every node: services, binary, configuration, all cluster data and workloads.",
      "make reset",
    ),
  },
  {
    name: "Uninstall K3s",
    hosts: "k3s_cluster",
    gather_facts: false,
    become: true,
    tasks: [
      { name: "Read the services", module: "ansible.builtin.service_facts", args: {} },
      // A unit another one only names (k3s-firewall.service is ordered before both) is listed as not-found.
      { ...stopK3sServices, when: `ansible_facts.services.get(item ~ '.service', {}).get('status', 'not-found') != 'not-found'` },
      {
        name: "Stop and disable keepalived (the API's virtual IP goes with K3s)",
        module: "ansible.builtin.systemd_service",
        args: { name: "keepalived", state: "stopped", enabled: false },
        when: "ansible_facts.services.get('keepalived.service', {}).get('status', 'not-found') != 'not-found'",
      },
      {
        // The kubelet's systemd cgroup driver puts every pod below kubepods.slice: stopping it ends them all.
        name: "Stop every pod's processes",
        module: "ansible.builtin.systemd_service",
        args: { name: "kubepods.slice", state: "stopped" },
        failed_when: false,
      },
      {
        name: "Stop what is left of containerd (the shims)",
        module: "ansible.builtin.command",
        args: { argv: ["pkill", "-KILL", "-f", "containerd-shim"] },
        register: "reset_shims",
        changed_when: "reset_shims.rc == 0",
        failed_when: "reset_shims.rc > 1",
      },
      {
        name: "Unmount what K3s mounted (deepest first)",
        module: "ansible.builtin.shell",
        args: {
          cmd: folded(`
            set -o pipefail;
            awk '$2 ~ "^(/run/k3s|/var/lib/kubelet|/var/lib/rancher/k3s|/run/netns/cni-)" { print $2 }' /proc/self/mounts
            | sort -r | while read -r m; do umount -l "$m" && echo "$m"; done`),
          executable: "/bin/bash",
        },
        register: "reset_umount",
        changed_when: "reset_umount.stdout | length > 0",
      },
      { name: "Read the network interfaces", module: "ansible.builtin.setup", args: { gather_subset: ["!all", "!min", "network"] } },
      {
        name: "Delete the interfaces K3s made",
        module: "ansible.builtin.command",
        args: { argv: ["ip", "link", "delete", "{{ item }}"] },
        loop: `{{ [${RESET_INTERFACES.map((i) => `'${i}'`).join(", ")}] | intersect(ansible_facts.interfaces) }}`,
        changed_when: true,
      },
      {
        name: "Delete K3s's firewall rules (KUBE-*, CNI-*, FLANNEL-*)",
        module: "ansible.builtin.shell",
        args: {
          cmd: folded(`
            set -o pipefail;
            for t in iptables ip6tables; do
            command -v "$t-save" >/dev/null || continue;
            before=$("$t-save" | grep -c -iE 'KUBE-|CNI-|FLANNEL' || true);
            [ "$before" -eq 0 ] || { "$t-save" | grep -v -iE 'KUBE-|CNI-|FLANNEL' | "$t-restore"; echo "$t: $before"; };
            done`),
          executable: "/bin/bash",
        },
        register: "reset_rules",
        changed_when: "reset_rules.stdout | length > 0",
      },
      {
        name: "Delete K3s's files and data",
        module: "ansible.builtin.file",
        args: { path: "{{ item }}", state: "absent" },
        loop: RESET_PATHS,
      },
      {
        name: "Delete the binary and its links",
        module: "ansible.builtin.file",
        args: { path: "{{ item }}", state: "absent" },
        vars: { reset_binary: K3S },
        loop: "{{ [reset_binary] + (k3s_binary_links | default(['kubectl', 'crictl', 'ctr']) | map('regex_replace', '^', (reset_binary | dirname) ~ '/') | list) }}",
      },
      { name: "Reload systemd", module: "ansible.builtin.systemd_service", args: { daemon_reload: true }, changed_when: false },
    ],
  },
];
