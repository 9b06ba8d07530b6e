/**
 * `ansible/site.yml`: checks first (an inventory with a master, every node reachable, a supported OS, no running
 * K3s at another version than the pinned one: that is make upgrade's job), then the OS roles on every node, the
 * first server and the API's virtual IP on it, further servers one at a time (joining through the VIP), and the agents.
 */
import { folded, Play } from "./model";
import { K3S } from "./roles/k3s_binary";

export const SITE_SOURCE = "constructs/ansible/site.ts";

/** OS families the roles support (apt or dnf, systemd). */
export const SUPPORTED_OS_FAMILIES = ["Debian", "RedHat"] as const;

/** The node has a K3s binary at a version other than the pinned one. */
const OTHER_VERSION = "site_k3s.installed | length > 0 and site_k3s.installed != k3s_binary_version";

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
    ],
  },
  {
    name: "Check that every node is reachable and runs a supported OS",
    hosts: "k3s_cluster",
    gather_facts: false,
    // any_errors_fatal on the checks, not on the play: a play-level one would end the run at the unreachable
    // host's ping, before its explanation.
    tasks: [
      {
        name: "Connect to the node",
        module: "ansible.builtin.ping",
        args: {},
        ignore_unreachable: true,
        register: "site_ping",
      },
      {
        name: "Explain an unreachable node",
        module: "ansible.builtin.fail",
        args: {
          msg: folded(`
            Cannot reach {{ inventory_hostname }} at {{ ansible_host | default(inventory_hostname) }} over SSH as
            {{ ansible_user | default('the current user') }} with key {{ ansible_ssh_private_key_file | default('(ssh default)') }}:
            {{ site_ping.msg | default('') | trim }}. Check that the VM runs (make apply), that the address is right,
            and that the key's public half was given to cloud-init (ssh_public_key_file).`),
        },
        when: "site_ping.unreachable | default(false)",
        any_errors_fatal: true,
      },
      {
        name: "Gather facts",
        module: "ansible.builtin.setup",
        args: {},
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
    ],
  },
  {
    name: "Prepare the operating system",
    hosts: "k3s_cluster",
    gather_facts: false,
    become: true,
    roles: ["base", "k3s_prereqs"],
  },
  {
    name: "Start the first K3s server (it initializes the embedded etcd)",
    hosts: "master[0]",
    gather_facts: false,
    become: true,
    // The VIP right after the first server: the others join through it.
    roles: ["k3s_master", "k3s_vip"],
  },
  {
    name: "Join the other K3s servers, one at a time (etcd adds one member at a time)",
    hosts: "master[1:]",
    gather_facts: false,
    become: true,
    serial: 1,
    roles: ["k3s_master", "k3s_vip"],
  },
  {
    name: "Join the K3s agents",
    hosts: "workers",
    gather_facts: false,
    become: true,
    roles: ["k3s_worker"],
  },
];
