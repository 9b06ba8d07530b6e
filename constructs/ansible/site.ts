/**
 * `ansible/site.yml`: checks first (an inventory with a master, every node reachable, a supported OS, no running
 * K3s at another version than the pinned one: that is make upgrade's job), then the OS roles and the K3s binary's
 * stage on every node, the first server and the API's virtual IP on it, further servers one at a time (joining
 * through the VIP), and the agents. Each phase ends with a progress line (`servers: 1/1 ready (18 s)`), the run with
 * a summary of the nodes.
 */
import { folded, Play, Task } from "./model";
import { K3S } from "./roles/k3s_binary";

export const SITE_SOURCE = "constructs/ansible/site.ts";

/** OS families the roles support (apt or dnf, systemd). */
export const SUPPORTED_OS_FAMILIES = ["Debian", "RedHat"] as const;

/** The node has a K3s binary at a version other than the pinned one. */
const OTHER_VERSION = "site_k3s.installed | length > 0 and site_k3s.installed != k3s_binary_version";

/** Seconds since the run started (the first play notes the time on localhost). */
const ELAPSED_SECONDS = "((now().timestamp() - hostvars['localhost'].site_started | float) | round | int)";
const ELAPSED = `{{ ${ELAPSED_SECONDS} }} s`;

/** One progress line per phase: `<phase>: <done>/<all> <what> (<elapsed>)`, printed once for the play's hosts. */
function progress(phase: string, done: string, total: string, what: string): Task {
  return {
    name: `Progress: ${phase}`,
    module: "ansible.builtin.debug",
    args: { msg: `${phase}: {{ ${done} }}/{{ ${total} }} ${what} (${ELAPSED})` },
    run_once: true,
  };
}

export const sitePlays: readonly Play[] = [
  {
    name: "Check the inventory",
    hosts: "localhost",
    gather_facts: false,
    tasks: [
      {
        name: "Check that the inventory names a master",
        module: "ansible.builtin.assert",
        args: {
          that: ["groups['master'] | default([]) | length > 0"],
          fail_msg: folded(`
            The inventory has no host in the group 'master' (inventory sources: {{ ansible_inventory_sources | default([]) | join(', ') }}).
            Run 'make apply' (it writes ansible/inventory/hosts.ini), or pass another inventory with -i.`),
          quiet: true,
        },
      },
      { name: "Note the time", module: "ansible.builtin.set_fact", args: { site_started: "{{ now().timestamp() }}" } },
    ],
  },
  {
    name: "Check that every node is reachable and runs a supported OS",
    hosts: "k3s_cluster",
    gather_facts: false,
    // any_errors_fatal on the explanations, not on the first contact: there it would end the run at an
    // unreachable host (even an ignored one) before its explanation.
    tasks: [
      {
        // What the roles read: the OS (min), the interfaces and their addresses (network). Not the hardware
        // subset: it stats every mount and is the slowest part of a full gathering.
        name: "Connect to the node and gather its facts",
        module: "ansible.builtin.setup",
        args: { gather_subset: ["!all", "network"] },
        ignore_unreachable: true,
        register: "site_facts",
        // A failure is explained below, and stops the run there.
        failed_when: false,
      },
      {
        name: "Explain an unreachable node",
        module: "ansible.builtin.fail",
        args: {
          msg: folded(`
            Cannot reach {{ inventory_hostname }} at {{ ansible_host | default(inventory_hostname) }} over SSH as
            {{ ansible_user | default('the current user') }} with key {{ ansible_ssh_private_key_file | default('(ssh default)') }}:
            {{ site_facts.msg | default('') | trim }}. Check that the VM runs (make apply), that the address is right,
            and that the key's public half was given to cloud-init (ssh_public_key_file).`),
        },
        when: "site_facts.unreachable | default(false)",
        any_errors_fatal: true,
      },
      {
        name: "Explain facts that could not be gathered",
        module: "ansible.builtin.fail",
        args: {
          msg: folded(`
            Could not read the facts of {{ inventory_hostname }} ({{ ansible_host | default(inventory_hostname) }}):
            {{ site_facts.msg | default('') | trim }}. The roles need Python 3 on the node (the cloud images have it)
            and a user that may sudo without a password.`),
        },
        when: "site_facts.ansible_facts is not defined",
        any_errors_fatal: true,
      },
      {
        name: "Check the operating system",
        module: "ansible.builtin.assert",
        args: {
          that: [
            `ansible_facts.os_family in ${JSON.stringify(SUPPORTED_OS_FAMILIES).replace(/"/g, "'")}`,
            "ansible_facts.service_mgr == 'systemd'",
          ],
          fail_msg: folded(`
            {{ inventory_hostname }} runs {{ ansible_facts.distribution }} {{ ansible_facts.distribution_version }}
            (family {{ ansible_facts.os_family }}, init {{ ansible_facts.service_mgr }}); the roles support the
            Debian family (Debian, Ubuntu) and the RHEL family (Rocky, Alma, RHEL, Fedora) with systemd.
            Clone the VMs from a template of one of these.`),
          quiet: true,
        },
        any_errors_fatal: true,
      },
      {
        name: "Read the installed K3s version",
        module: "k3s_version_check",
        args: { binary: K3S, version: "{{ k3s_binary_version }}", node: "{{ inventory_hostname }}" },
        become: true,
        register: "site_k3s",
        any_errors_fatal: true,
      },
      {
        name: "Read the services",
        module: "ansible.builtin.service_facts",
        args: {},
        when: OTHER_VERSION,
      },
      {
        // New nodes (no K3s yet) get the pinned version; a running node at another version is make upgrade's.
        name: "Refuse to change the version of a running K3s",
        module: "ansible.builtin.assert",
        args: {
          that: [
            `not (${OTHER_VERSION}) or not (ansible_facts.services.get('k3s.service', {}).get('state') == 'running'
              or ansible_facts.services.get('k3s-agent.service', {}).get('state') == 'running')`.replace(/\s+/g, " "),
          ],
          fail_msg: folded(`
            {{ inventory_hostname }} runs K3s {{ site_k3s.installed }}, but terraform.tfvars pins {{ k3s_binary_version }}:
            make provision does not change the version of a running cluster. Run make upgrade, which checks the step, then
            drains, upgrades and uncordons one node at a time (or set k3s_version back to {{ site_k3s.installed }}).
            Nothing was changed.`),
          quiet: true,
        },
        any_errors_fatal: true,
      },
      progress("checks", "ansible_play_hosts | length", "ansible_play_hosts_all | length", "nodes reachable, on a supported OS, K3s at {{ k3s_binary_version }} or none"),
    ],
  },
  {
    name: "Prepare the operating system, and stage the K3s binary",
    hosts: "k3s_cluster",
    gather_facts: false,
    become: true,
    roles: ["base", "k3s_prereqs", "k3s_firewall"],
    // One package transaction per node: base installs k3s_prereqs' and k3s_firewall's packages with its own.
    vars: {
      base_role_packages:
        "{{ k3s_prereqs_packages[ansible_facts.os_family] | default([]) + (k3s_firewall_packages if k3s_firewall_enabled | default(false) else []) }}",
      k3s_prereqs_install_packages: false,
      k3s_firewall_install_packages: false,
    },
    // Every node downloads and verifies its binary here, all at once: the agents' joins later only install it.
    tasks: [
      {
        name: "Stage the verified K3s binary (and images)",
        module: "ansible.builtin.include_role",
        args: { name: "k3s_binary", tasks_from: "stage" },
      },
      progress("nodes", "ansible_play_hosts | length", "ansible_play_hosts_all | length", "prepared (packages, kernel settings, K3s {{ k3s_binary_version }} staged)"),
    ],
  },
  {
    name: "Start the first K3s server (it initializes the embedded etcd)",
    hosts: "master[0]",
    gather_facts: false,
    become: true,
    // The VIP right after the first server: the others join through it.
    roles: ["k3s_master", "k3s_vip"],
    tasks: [
      progress("servers", "1", "groups['master'] | length", "ready"),
      {
        name: "Note where the kubeconfig went (for the summary)",
        module: "ansible.builtin.set_fact",
        args: { site_kubeconfig: "{{ k3s_master_kubeconfig_path if k3s_master_fetch_kubeconfig | bool else '' }}" },
      },
    ],
  },
  {
    name: "Join the other K3s servers, one at a time (etcd adds one member at a time)",
    hosts: "master[1:]",
    gather_facts: false,
    become: true,
    serial: 1,
    roles: ["k3s_master", "k3s_vip"],
    tasks: [progress("servers", "groups['master'].index(inventory_hostname) + 1", "groups['master'] | length", "ready")],
  },
  {
    name: "Join the K3s agents",
    hosts: "workers",
    gather_facts: false,
    become: true,
    roles: ["k3s_worker"],
    tasks: [progress("agents", "ansible_play_hosts | length", "ansible_play_hosts_all | length", "joined")],
  },
  {
    name: "Summary",
    hosts: "master[0]",
    gather_facts: false,
    become: true,
    tasks: [
      {
        name: "List the nodes",
        module: "ansible.builtin.command",
        args: {
          argv: [K3S, "kubectl", "get", "nodes", "--no-headers", "-o",
            "custom-columns=NAME:.metadata.name,READY:.status.conditions[?(@.type=='Ready')].status,VERSION:.status.nodeInfo.kubeletVersion"],
        },
        register: "site_nodes",
        changed_when: false,
      },
      {
        name: "Summary",
        module: "ansible.builtin.debug",
        args: {
          msg: folded(`
            {{ ['K3s ' ~ k3s_binary_version ~ ': ' ~ (site_nodes.stdout_lines | length) ~ ' nodes, '
                ~ (site_nodes.stdout_lines | select('search', ' True ') | list | length) ~ ' Ready, after ' ~ ${ELAPSED_SECONDS} ~ ' s']
              + (site_nodes.stdout_lines | map('regex_replace', '^', '  ') | list)
              + [('Kubeconfig: ' ~ site_kubeconfig ~ ' (export KUBECONFIG=' ~ site_kubeconfig ~ '; kubectl get nodes)')
                  if site_kubeconfig | default('') | length > 0
                  else 'No kubeconfig fetched (k3s_master_fetch_kubeconfig is false): /etc/rancher/k3s/k3s.yaml on ' ~ inventory_hostname,
                 'Next: make deploy-apps (the apps, and where they answer), make status (the control plane), make backup (an etcd snapshot).'] }}`),
        },
      },
    ],
  },
];
