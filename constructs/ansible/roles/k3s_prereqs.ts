/**
 * Role `k3s_prereqs`: the kernel and OS settings K3s needs — swap off (now and at boot), br_netfilter and
 * overlay present (loaded, or built into the kernel), the forwarding/bridge sysctls, SELinux permissive.
 *
 * Built-in modules: `modprobe` fails on kernels without /lib/modules (custom kernels, LXC, containers) even
 * when the feature is there, so a module counts as present when /sys/module/<name> exists, or, where
 * /sys/module is hidden, by its own trace: /proc/sys/net/bridge for br_netfilter, an `overlay` line in
 * /proc/filesystems for overlay. Only a module with none of these is loaded with modprobe. The project's module
 * k3s_kernel does swap, modules and running sysctls in one round trip, k3s_files the two files in another.
 */
import * as path from "node:path";
import { Role } from "../model";
import { writeFiles } from "./files";

const SYSCTL_FILE = "/etc/sysctl.d/90-k3s.conf";

/** The kernel settings K3s needs on every node (k3s_prereqs_sysctl's default). */
export const K3S_SYSCTL: Readonly<Record<string, number>> = {
  "net.ipv4.ip_forward": 1,
  "net.bridge.bridge-nf-call-iptables": 1,
  "net.bridge.bridge-nf-call-ip6tables": 1,
};

export const k3sPrereqs: Role = {
  name: "k3s_prereqs",
  source: "constructs/ansible/roles/k3s_prereqs.ts",
  summary: "Swap off, kernel modules, sysctls and SELinux mode for K3s.",
  description: [
    "Turns swap off now and comments swap out of /etc/fstab (and masks swap.target against zram and GPT auto-swap). " +
      "Makes sure br_netfilter and overlay are present (loaded or built in) and lists them in /etc/modules-load.d/k3s.conf. " +
      `Sets the sysctls in ${SYSCTL_FILE} and applies the ones whose running value differs. ` +
      "On the RHEL family, puts SELinux in permissive mode, now and in /etc/selinux/config.",
  ],
  templatesDir: path.join(__dirname, "k3s_prereqs", "templates"),
  modules: ["k3s_files", "k3s_kernel"],
  variables: [
    {
      name: "k3s_prereqs_disable_swap",
      type: "bool",
      default: true,
      description: "Turn swap off now and at boot (the kubelet expects no swap).",
    },
    {
      name: "k3s_prereqs_kernel_modules",
      type: "list",
      elements: "str",
      default: ["br_netfilter", "overlay"],
      description: "Kernel modules that must be present (loaded or built in) and are loaded at boot.",
    },
    {
      name: "k3s_prereqs_sysctl",
      type: "dict",
      default: K3S_SYSCTL,
      description: `Kernel settings written to ${SYSCTL_FILE}; a running value that differs is changed at once.`,
    },
    {
      name: "k3s_prereqs_packages",
      type: "dict",
      default: {
        Debian: ["procps", "kmod", "iptables", "ipset", "conntrack"],
        RedHat: ["procps-ng", "kmod", "iptables-nft", "ipset", "conntrack-tools"],
      },
      description:
        "Packages by OS family: the tools this role runs (sysctl, modprobe) and the netfilter tools K3s's kube-proxy and " +
        "network policy controller call (a release binary carries its own; a K3s built without them uses the host's).",
    },
    {
      name: "k3s_prereqs_install_packages",
      type: "bool",
      default: true,
      description: "Install k3s_prereqs_packages; false where another role installs them (site.yml: base, in its one transaction).",
    },
    {
      name: "k3s_prereqs_selinux_permissive",
      type: "bool",
      default: true,
      description: "On the RHEL family, switch an enforcing SELinux to permissive (now and in /etc/selinux/config).",
    },
  ],
  tasks: [
    {
      name: "Install the tools this role and K3s run (sysctl, modprobe, iptables, ipset, conntrack)",
      module: "ansible.builtin.package",
      args: { name: "{{ k3s_prereqs_packages[ansible_facts.os_family] | default([]) }}", state: "present" },
      when: "k3s_prereqs_install_packages",
    },
    {
      name: "Comment swap out of /etc/fstab",
      module: "ansible.builtin.replace",
      args: { path: "/etc/fstab", regexp: "^([^#\\s]\\S*\\s+\\S+\\s+swap\\s.*)$", replace: "# \\1" },
      when: "k3s_prereqs_disable_swap",
    },
    {
      name: "Mask swap.target so no swap unit starts at boot",
      module: "ansible.builtin.systemd_service",
      args: { name: "swap.target", masked: true },
      when: "k3s_prereqs_disable_swap",
    },
    writeFiles("Write the kernel modules to load and the kernel settings to apply at boot", [
      { dest: "/etc/modules-load.d/k3s.conf", template: "modules-load.conf.j2", mode: "0644" },
      { dest: SYSCTL_FILE, template: "sysctl.conf.j2", mode: "0644" },
    ]),
    {
      // One round trip for what were a dozen stat/slurp/modprobe/sysctl tasks (constructs/ansible/modules/k3s_kernel.py).
      name: "Turn swap off, load the kernel modules that are missing, apply the settings whose running value differs",
      module: "k3s_kernel",
      args: {
        swap_off: "{{ k3s_prereqs_disable_swap }}",
        modules: "{{ k3s_prereqs_kernel_modules }}",
        sysctl: "{{ k3s_prereqs_sysctl }}",
        node: "{{ inventory_hostname }}",
      },
    },
    {
      name: "Set SELinux to permissive at boot",
      module: "ansible.builtin.lineinfile",
      args: { path: "/etc/selinux/config", regexp: "^SELINUX=", line: "SELINUX=permissive" },
      when: [
        "k3s_prereqs_selinux_permissive",
        "ansible_facts.os_family == 'RedHat'",
        "ansible_facts.selinux.status | default('disabled') == 'enabled'",
        "ansible_facts.selinux.config_mode | default('') == 'enforcing'",
      ],
    },
    {
      name: "Set SELinux to permissive now",
      module: "ansible.builtin.command",
      args: { cmd: "setenforce 0" },
      when: [
        "k3s_prereqs_selinux_permissive",
        "ansible_facts.os_family == 'RedHat'",
        "ansible_facts.selinux.status | default('disabled') == 'enabled'",
        "ansible_facts.selinux.mode | default('') == 'enforcing'",
      ],
      changed_when: true,
    },
  ],
};
