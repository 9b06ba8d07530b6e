/**
 * Role `base`: what every node needs before K3s — cloud-init finished, packages, timezone, /etc/hosts
 * entries for every node, hostname = inventory name, the QEMU guest agent, and the host firewall off.
 */
import { folded, Literal, Role } from "../model";
import { writeFiles } from "./files";

const DEBIAN = "ansible_facts.os_family == 'Debian'";
const REDHAT = "ansible_facts.os_family == 'RedHat'";
/** What cloud-init renders /etc/hosts from at every boot where it manages the file (hosts.debian.tmpl, hosts.redhat.tmpl). */
const HOSTS_TEMPLATE = "('/etc/cloud/templates/hosts.' ~ ansible_facts.os_family | lower ~ '.tmpl')";
/** The host firewalls turned off, by their systemd unit names. */
const FIREWALLS = ["ufw", "firewalld"];
/** The firewall units the node has (from the find below). */
const FOUND = "(base_firewall_units.files | default([]) | map(attribute='path') | map('basename') | map('regex_replace', '[.]service$', '') | list)";

export const base: Role = {
  name: "base",
  source: "constructs/ansible/roles/base.ts",
  summary: "Timezone, packages, hostname, /etc/hosts, QEMU guest agent and firewall of a K3s node.",
  description: [
    "Waits for cloud-init to finish, installs the base packages (apt on Debian/Ubuntu, dnf on the RHEL family), sets the timezone, " +
      "writes /etc/hosts entries for the servers and the node itself (also into cloud-init's template of it, which it renders at every boot), sets the hostname to the inventory name, installs and enables the " +
      "QEMU guest agent (started when the VM has its virtio serial port), and turns the host firewall (ufw, firewalld) off.",
  ],
  modules: ["k3s_files"],
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
      name: "base_role_packages",
      type: "list",
      elements: "str",
      default: [],
      description:
        "Packages the other roles of the play need, installed in the same transaction (site.yml passes k3s_prereqs' " +
        "here: one package manager run per node instead of two).",
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
      // Skipped (rc 0) where there is no cloud-init, and once its boot has finished (it writes boot-finished last):
      // `cloud-init status` itself takes a second to start.
      name: "Wait for cloud-init to finish (it may still be installing packages on a new VM)",
      module: "ansible.builtin.command",
      args: {
        cmd: "timeout {{ base_cloud_init_timeout }} cloud-init status --wait",
        removes: "/usr/bin/cloud-init",
        creates: "/var/lib/cloud/instance/boot-finished",
      },
      register: "base_cloud_init_status",
      changed_when: false,
      // 0: done; 2: done with recoverable errors (cloud-init >= 23.4); anything else, including 124 from timeout: fail.
      failed_when: "base_cloud_init_status.rc | default(0) not in [0, 2]",
    },
    {
      name: "Install the base packages (apt)",
      module: "ansible.builtin.apt",
      args: {
        name: "{{ base_packages_debian + base_extra_packages + (['qemu-guest-agent'] if base_guest_agent else []) + base_role_packages }}",
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
        name: "{{ base_packages_redhat + base_extra_packages + (['qemu-guest-agent'] if base_guest_agent else []) + base_role_packages }}",
        state: "present",
      },
      when: REDHAT,
    },
    {
      // No stat first: a link to a missing zone file is refused by the file module itself (force: false).
      name: "Set the timezone",
      block: [
        {
          name: "Point /etc/localtime at the timezone",
          module: "ansible.builtin.file",
          args: { src: "/usr/share/zoneinfo/{{ base_timezone }}", dest: "/etc/localtime", state: "link" },
        },
      ],
      rescue: [
        {
          name: "Explain the timezone that could not be set",
          module: "ansible.builtin.fail",
          args: {
            msg: folded(`
              Could not point /etc/localtime at /usr/share/zoneinfo/{{ base_timezone }} on {{ inventory_hostname }}:
              {{ ansible_failed_result.msg | default('') | trim }}. An unknown timezone: set timezone in terraform.tfvars
              to an IANA name such as Europe/Warsaw or UTC. A regular file at /etc/localtime: remove it, then run again.`),
          },
        },
      ],
    },
    writeFiles("Record the timezone name for Debian tools (tzdata reads /etc/timezone)", [{ dest: "/etc/timezone", content: "{{ base_timezone }}\n", mode: "0644" }], {
      when: DEBIAN,
    }),
    {
      // Proxmox's cloud-init user-data says manage_etc_hosts: true, so cloud-init rewrites /etc/hosts from this
      // template at every boot (qemu-server's Cloudinit.pm; cloud-init's update_etc_hosts): the block goes there too.
      name: "Look for cloud-init's template of /etc/hosts",
      module: "ansible.builtin.stat",
      args: { path: `{{ ${HOSTS_TEMPLATE} }}`, get_checksum: false },
      register: "base_hosts_template",
    },
    {
      name: "Add the servers and this node to /etc/hosts (and to cloud-init's template of it)",
      module: "ansible.builtin.blockinfile",
      loop: `{{ ['/etc/hosts'] + ([${HOSTS_TEMPLATE}] if base_hosts_template.stat.exists else []) }}`,
      args: {
        path: "{{ item }}",
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
      // One look for both (a find, not a stat per unit).
      name: "Look for host firewall services",
      module: "ansible.builtin.find",
      args: { paths: "/lib/systemd/system", patterns: FIREWALLS.map((unit) => `${unit}.service`) },
      register: "base_firewall_units",
      when: "base_disable_firewall",
    },
    {
      name: "Ask ufw whether it is filtering",
      module: "ansible.builtin.command",
      args: { cmd: "ufw status" },
      register: "base_ufw_status",
      changed_when: false,
      when: ["base_disable_firewall", `'ufw' in ${FOUND}`],
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
      when: ["base_disable_firewall", `'ufw' in ${FOUND}`],
    },
    {
      name: "Stop and disable the host firewall",
      module: "ansible.builtin.systemd_service",
      args: { name: "{{ item }}", state: "stopped", enabled: false },
      loop: `{{ ${FOUND} if base_disable_firewall else [] }}`,
    },
  ],
};
