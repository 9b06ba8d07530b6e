/**
 * Shared by `k3s_master` and `k3s_worker`: the node's own address and the network interface that
 * carries it, found in the gathered facts by matching the address (never a hard-coded `eth0`: Proxmox
 * VMs usually have `ens18`, nspawn containers `host0`).
 */
import { folded, Item, RoleVariable } from "../model";

/** The interface a role puts on the node network: its variable's suffix and what it is used for. */
export interface IfaceUse {
  readonly suffix: string;
  readonly purpose: string;
}

/** K3s's own: the interface Flannel's VXLAN uses. */
const FLANNEL: IfaceUse = { suffix: "flannel_iface", purpose: "Interface Flannel's VXLAN uses (flannel-iface)" };

/** The variables `<prefix>_node_ip` and `<prefix>_flannel_iface` (or another interface), and `<prefix>_node_name` for K3s. */
export function nodeNetworkVariables(prefix: string, iface: IfaceUse = FLANNEL): RoleVariable[] {
  const nodeName: RoleVariable = {
    name: `${prefix}_node_name`,
    type: "str",
    default: "{{ inventory_hostname }}",
    description: "Kubernetes node name (node-name); the inventory name, which the base role also makes the hostname.",
  };
  return [
    ...(iface === FLANNEL ? [nodeName] : []),
    {
      name: `${prefix}_node_ip`,
      type: "str",
      default: "{{ ansible_host }}",
      description: "The node's IPv4 address (node-ip); the inventory's ansible_host, i.e. the address from terraform.tfvars.",
    },
    {
      name: `${prefix}_${iface.suffix}`,
      type: "str",
      default: "",
      description: `${iface.purpose}; empty means the interface that carries the node IP, found in the facts.`,
    },
  ];
}

/** vars/main.yml entries: the detected interface and the one used. */
export function nodeNetworkDerived(prefix: string, iface: IfaceUse = FLANNEL) {
  return [
    {
      name: `${prefix}_detected_iface`,
      comment: "The interface whose primary IPv4 address is the node IP, from the gathered facts ('' if none).",
      value: folded(`
        {{ ansible_facts | dict2items | map(attribute='value') | select('mapping')
           | selectattr('device', 'defined') | selectattr('ipv4', 'defined')
           | selectattr('ipv4.address', 'defined') | selectattr('ipv4.address', 'equalto', ${prefix}_node_ip)
           | map(attribute='device') | first | default('') }}`),
    },
    {
      name: `${prefix}_iface`,
      comment: `The interface used: ${iface.purpose}.`,
      value: `{{ ${prefix}_${iface.suffix} if ${prefix}_${iface.suffix} | length > 0 else ${prefix}_detected_iface }}`,
    },
  ];
}

/** The first task of the role: fail early, and clearly, when no interface carries the node IP. */
export function nodeNetworkCheck(prefix: string, iface: IfaceUse = FLANNEL): Item {
  return {
    name: "Check that a network interface carries the node IP",
    module: "ansible.builtin.assert",
    args: {
      that: [`${prefix}_iface | length > 0`],
      fail_msg: folded(`
        No network interface of {{ inventory_hostname }} has the address {{ ${prefix}_node_ip }} (ansible_host in the inventory).
        Interfaces: {{ ansible_facts.interfaces | default([]) | join(', ') }}. Fix the address in terraform.tfvars, or set
        ${prefix}_node_ip / ${prefix}_${iface.suffix}.`),
      quiet: true,
    },
  };
}
