/**
 * Role `k3s_firewall`: the host firewall of `security_profile = "hardened"`, one nftables table per node with the
 * port matrix K3s needs and nothing more — SSH and the API from admin_cidrs, the API and supervisor (6443) for the
 * nodes, the kubelet (10250/tcp) and Flannel's VXLAN (8472/udp) between the nodes, etcd (2379-2380/tcp) between
 * the servers, VRRP between the servers when there is a virtual IP, the NodePorts only from admin_cidrs; the rest
 * of the incoming traffic dropped. nftables on both OS families (firewalld is switched off by base, as K3s's docs
 * ask; it would be nftables underneath anyway). The project's module k3s_firewall checks, writes and loads the
 * table in one round trip, and a systemd unit loads it at boot, before K3s.
 */
import * as path from "node:path";
import { Role } from "../model";

const P = "k3s_firewall";
/** The table's name (family inet), the ruleset file and the unit that loads it at boot. */
export const FIREWALL_TABLE = "k3s_proxmox";
export const FIREWALL_RULESET = "/etc/k3s-proxmox/firewall.nft";
export const FIREWALL_UNIT = "k3s-firewall.service";
/** The node addresses of an inventory group, in inventory order. */
const addresses = (group: string) => `{{ groups[${group}] | map('extract', hostvars, 'ansible_host') | list }}`;

export const k3sFirewall: Role = {
  name: P,
  source: "constructs/ansible/roles/k3s_firewall.ts",
  summary: "The host firewall of the hardened profile: one nftables table with the ports K3s needs, the rest dropped.",
  description: [
    `With k3s_firewall_enabled, loads the nftables table inet ${FIREWALL_TABLE} (${FIREWALL_RULESET}, from templates/firewall.nft.j2) ` +
      `now and at boot (${FIREWALL_UNIT}): incoming traffic is dropped unless it is SSH or the Kubernetes API from ` +
      "k3s_firewall_admin_cidrs, the API and the K3s supervisor (6443) from the nodes, the kubelet (10250/tcp) or Flannel's VXLAN " +
      "(8472/udp) from the nodes, etcd (2379-2380/tcp) or VRRP (with k3s_firewall_vrrp) from the servers, a NodePort from " +
      "k3s_firewall_admin_cidrs, or traffic of the pods (cni0, flannel.1). Outgoing traffic is not filtered; K3s's own rules are not touched.",
    "Refuses, before changing the firewall, when the machine Ansible runs on is outside k3s_firewall_admin_cidrs (it would be shut out).",
    `Without k3s_firewall_enabled, removes the table, the ruleset and the unit where an earlier run left them.`,
  ],
  templatesDir: path.join(__dirname, P, "templates"),
  modules: ["k3s_firewall"],
  variables: [
    {
      name: "k3s_firewall_enabled",
      type: "bool",
      default: false,
      description: 'Load the host firewall (security_profile = "hardened"); false removes what an earlier run loaded.',
    },
    {
      name: "k3s_firewall_admin_cidrs",
      type: "list",
      elements: "str",
      default: [],
      description: "IPv4 networks (CIDR) that may reach SSH, the Kubernetes API and the NodePorts (admin_cidrs in terraform.tfvars).",
    },
    {
      name: "k3s_firewall_vrrp",
      type: "bool",
      default: false,
      description: "Let VRRP (IP protocol 112) in between the servers: the API has a virtual IP (api_vip).",
    },
    {
      name: "k3s_firewall_node_port_range",
      type: "str",
      default: "30000-32767",
      description: "The NodePort range of the cluster (K3s's default, service-node-port-range).",
    },
    {
      name: "k3s_firewall_nodes_group",
      type: "str",
      default: "k3s_cluster",
      description: "Inventory group of every node (the kubelet, VXLAN and API peers).",
    },
    {
      name: "k3s_firewall_servers_group",
      type: "str",
      default: "master",
      description: "Inventory group of the K3s servers (etcd and VRRP peers; the API listens on them).",
    },
    {
      name: "k3s_firewall_packages",
      type: "list",
      elements: "str",
      default: ["nftables"],
      description: "The packages the firewall needs (the same name on both OS families).",
    },
    {
      name: "k3s_firewall_install_packages",
      type: "bool",
      default: true,
      description: "Install k3s_firewall_packages; false where another role installs them (site.yml: base, in its one transaction).",
    },
  ],
  derived: [
    { name: "k3s_firewall_node_addresses", comment: "Every node's address (ansible_host).", value: addresses("k3s_firewall_nodes_group") },
    { name: "k3s_firewall_server_addresses", comment: "The servers' addresses.", value: addresses("k3s_firewall_servers_group") },
    { name: "k3s_firewall_server", comment: "Whether this node is a server.", value: "{{ inventory_hostname in groups[k3s_firewall_servers_group] }}" },
    { name: "k3s_firewall_table", comment: "The nftables table (family inet) the ruleset replaces whole.", value: FIREWALL_TABLE },
  ],
  tasks: [
    {
      name: "Install nftables",
      module: "ansible.builtin.package",
      args: { name: "{{ k3s_firewall_packages }}", state: "present" },
      when: ["k3s_firewall_enabled", "k3s_firewall_install_packages"],
    },
    {
      // The controller's address as the node sees it: the SSH client of the facts gathered without become.
      name: "Check, write and load the host firewall (or remove it when it is off)",
      module: "k3s_firewall",
      args: {
        state: "{{ 'present' if k3s_firewall_enabled else 'absent' }}",
        ruleset: "{{ lookup('ansible.builtin.template', 'firewall.nft.j2') if k3s_firewall_enabled else '' }}",
        table: "{{ k3s_firewall_table }}",
        path: FIREWALL_RULESET,
        unit: FIREWALL_UNIT,
        admin_cidrs: "{{ k3s_firewall_admin_cidrs }}",
        controller: "{{ (ansible_facts.env.SSH_CONNECTION | default('')).split(' ') | first }}",
        node: "{{ inventory_hostname }}",
      },
    },
  ],
};
