/**
 * Role `base`: what every node needs before K3s — cloud-init finished, packages, timezone, /etc/hosts
 * entries for every node, hostname = inventory name, the QEMU guest agent, and the host firewall off.
 */
import { folded, Literal, Role } from "../model";

const DEBIAN = "ansible_facts.os_family == 'Debian'";
const REDHAT = "ansible_facts.os_family == 'RedHat'";

export const base: Role = {
  name: "base",
  source: "constructs/ansible/roles/base.ts",
  summary: "Timezone, packages, hostname, /etc/hosts, QEMU guest agent and firewall of a K3s node.",
  description: [
    "Waits for cloud-init to finish, installs the base packages (apt on Debian/Ubuntu, dnf on the RHEL family), sets the timezone, " +
      "writes /etc/hosts entries for the servers and the node itself, sets the hostname to the inventory name, installs and enables the " +
      "QEMU guest agent (started when the VM has its virtio serial port), and turns the host firewall (ufw, firewalld) off.",
  ],
  variables: [
    {
      name: "base_timezone",
      type: "str",
      default: "Europe/Warsaw",
      description: "IANA timezone of the node (a file under /usr/share/zoneinfo).",
    },
    {
      name: "base_packages_debian",
      type: "list",
      elements: "str",
      default: ["vim", "htop", "curl", "ca-certificates", "tzdata", "procps", "kmod", "iproute2", "jq", "less"],
      description: "Packages installed with apt on Debian and Ubuntu.",
    },
    {
      name: "base_packages_redhat",
      type: "list",
      elements: "str",
      default: ["vim-enhanced", "curl", "ca-certificates", "tzdata", "procps-ng", "kmod", "iproute", "jq", "less", "tar"],
      description: "Packages installed with dnf on the RHEL family (htop needs EPEL there, so it is not in the list).",
    },
    {
      name: "base_extra_packages",
      type: "list",
      elements: "str",
      default: [],
      description: "More packages for every node, installed with the family's package manager (same names on every node).",
    },
    {
      name: "base_hosts_group",
      type: "str",
      default: "master",
      description:
        "Inventory group whose hosts get /etc/hosts entries (ansible_host and inventory name) on every node, besides the node itself. " +
        "The servers by default, so adding a worker changes nothing on the other nodes; k3s_cluster lists every node.",
    },
    {
      name: "base_guest_agent",
      type: "bool",
      default: true,
      description:
        "Install and enable the QEMU guest agent. It is started only where the VM has the agent's virtio serial port " +
        "(/dev/virtio-ports/org.qemu.guest_agent.0); elsewhere it stays installed and enabled, and the run says why it is not running.",
    },
    {
      name: "base_disable_firewall",
      type: "bool",
      default: true,
      description: "Stop and disable the host firewall (ufw, firewalld) so the K3s ports are open between nodes. false leaves it as it is.",
    },
    {
      name: "base_cloud_init_timeout",
      type: "int",
      default: 600,
      description: "Seconds to wait for cloud-init to finish its first boot before touching packages (skipped where cloud-init is absent).",
    },
  ],
  tasks: [
    {
      name: "Check whether cloud-init is installed",
      module: "ansible.builtin.stat",
      args: { path: "/usr/bin/cloud-init" },
      register: "base_cloud_init",
    },
    {
      name: "Wait for cloud-init to finish (it may still be installing packages on a new VM)",
      module: "ansible.builtin.command",
      args: { cmd: "timeout {{ base_cloud_init_timeout }} cloud-init status --wait" },
      when: "base_cloud_init.stat.exists",
      register: "base_cloud_init_status",
      changed_when: false,
      // 0: done; 2: done with recoverable errors (cloud-init >= 23.4); anything else, including 124 from timeout: fail.
      failed_when: "base_cloud_init_status.rc not in [0, 2]",
    },
    {
      name: "Install the base packages (apt)",
      module: "ansible.builtin.apt",
      args: {
        name: "{{ base_packages_debian + base_extra_packages + (['qemu-guest-agent'] if base_guest_agent else []) }}",
        state: "present",
        update_cache: true,
        cache_valid_time: 3600,
        install_recommends: false,
        lock_timeout: 300,
      },
      when: DEBIAN,
    },
    {
      name: "Install the base packages (dnf)",
      module: "ansible.builtin.dnf",
      args: {
        name: "{{ base_packages_redhat + base_extra_packages + (['qemu-guest-agent'] if base_guest_agent else []) }}",
        state: "present",
      },
      when: REDHAT,
    },
    {
      name: "Check that the timezone exists",
      module: "ansible.builtin.stat",
      args: { path: "/usr/share/zoneinfo/{{ base_timezone }}" },
      register: "base_zoneinfo",
    },
    {
      name: "Fail on an unknown timezone",
      module: "ansible.builtin.assert",
      args: {
        that: ["base_zoneinfo.stat.exists", "base_zoneinfo.stat.isreg"],
        fail_msg: "Timezone '{{ base_timezone }}' is not in /usr/share/zoneinfo on {{ inventory_hostname }}: set timezone in terraform.tfvars to an IANA name such as Europe/Warsaw or UTC.",
        quiet: true,
      },
    },
    {
      name: "Set the timezone",
      module: "ansible.builtin.file",
      args: { src: "/usr/share/zoneinfo/{{ base_timezone }}", dest: "/etc/localtime", state: "link", force: true },
    },
    {
      name: "Record the timezone name for Debian tools (tzdata reads /etc/timezone)",
      module: "ansible.builtin.copy",
      args: { content: "{{ base_timezone }}\n", dest: "/etc/timezone", owner: "root", group: "root", mode: "0644" },
      when: DEBIAN,
    },
    {
      name: "Add the servers and this node to /etc/hosts",
      module: "ansible.builtin.blockinfile",
      args: {
        path: "/etc/hosts",
        marker: "# {mark} K3s cluster nodes (managed by Ansible, role base)",
        block: new Literal(
          // In inventory order, this node last unless listed: no set operation, so the order never changes.
          "{% set base_hosts = groups[base_hosts_group] | default([]) %}\n" +
            "{% for host in base_hosts + ([] if inventory_hostname in base_hosts else [inventory_hostname]) %}\n" +
            "{{ hostvars[host]['ansible_host'] | default(host) }} {{ host }}\n" +
            "{% endfor %}\n",
        ),
        owner: "root",
        group: "root",
        mode: "0644",
      },
    },
    {
      name: "Set the hostname to the inventory name",
      module: "ansible.builtin.hostname",
      args: { name: "{{ inventory_hostname }}" },
    },
    {
      name: "Check for the QEMU guest agent's virtio serial port",
      module: "ansible.builtin.stat",
      args: { path: "/dev/virtio-ports/org.qemu.guest_agent.0" },
      register: "base_guest_agent_port",
      when: "base_guest_agent",
    },
    {
      name: "Enable the QEMU guest agent",
      module: "ansible.builtin.systemd_service",
      args: {
        name: "qemu-guest-agent",
        enabled: true,
        state: "{{ 'started' if base_guest_agent_port.stat.exists else omit }}",
      },
      when: "base_guest_agent",
    },
    {
      name: "Say why the QEMU guest agent is not running",
      module: "ansible.builtin.debug",
      args: {
        msg: folded(`
          qemu-guest-agent is installed and enabled on {{ inventory_hostname }} but not started: there is no
          /dev/virtio-ports/org.qemu.guest_agent.0 (not a QEMU VM, or the VM's "QEMU Guest Agent" option is off).
          It starts by itself once the port exists.`),
      },
      when: ["base_guest_agent", "not base_guest_agent_port.stat.exists"],
    },
    {
      name: "Look for host firewall services",
      module: "ansible.builtin.stat",
      args: { path: "/lib/systemd/system/{{ item }}.service", get_checksum: false },
      loop: ["ufw", "firewalld"],
      register: "base_firewall_units",
      when: "base_disable_firewall",
    },
    {
      name: "Ask ufw whether it is filtering",
      module: "ansible.builtin.command",
      args: { cmd: "ufw status" },
      register: "base_ufw_status",
      changed_when: false,
      when: ["base_disable_firewall", "base_firewall_units.results[0].stat.exists"],
    },
    {
      name: "Turn ufw's filtering off now",
      module: "ansible.builtin.command",
      args: { cmd: "ufw disable" },
      changed_when: true,
      when: ["base_disable_firewall", "base_ufw_status.stdout | default('') is search('Status: active')"],
    },
    {
      name: "Turn ufw off in its configuration",
      module: "ansible.builtin.lineinfile",
      args: { path: "/etc/ufw/ufw.conf", regexp: "^ENABLED=", line: "ENABLED=no" },
      when: ["base_disable_firewall", "base_firewall_units.results[0].stat.exists"],
    },
    {
      name: "Stop and disable the host firewall",
      module: "ansible.builtin.systemd_service",
      args: { name: "{{ item.item }}", state: "stopped", enabled: false },
      loop: "{{ base_firewall_units.results | default([]) }}",
      loop_control: { label: "{{ item.item }}" },
      when: ["base_disable_firewall", "item.stat.exists"],
    },
  ],
};
