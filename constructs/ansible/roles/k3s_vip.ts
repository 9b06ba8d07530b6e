/**
 * Role `k3s_vip`: the API's virtual IP (api_vip in terraform.tfvars) on the K3s servers, with keepalived (a
 * Debian and RHEL package). VRRP with unicast peers — the other servers — so it needs no multicast on the LAN; the
 * address is held only by a server whose API answers /readyz (a tracked check script, run every second), so it
 * moves within seconds when K3s stops there or the server goes down. Nothing happens when no VIP is configured.
 */
import * as path from "node:path";
import { folded, Role } from "../model";
import { API_ANSWERS } from "./k3s-service";
import { IfaceUse, nodeNetworkCheck, nodeNetworkDerived, nodeNetworkVariables } from "./node-network";

const P = "k3s_vip";
const ENABLED = "k3s_vip_address | length > 0";
/** The curl output (an HTTP code) of an API server that answered. */
const ANSWERED = `[${API_ANSWERS.map((c) => `'${c}'`).join(", ")}]`;
const IFACE: IfaceUse = { suffix: "interface", purpose: "Interface that gets the virtual IP and sends VRRP" };
/** The check keepalived runs: the local API's /readyz, authenticated with the server's own admin client certificate. */
export const VIP_CHECK_SCRIPT = "/usr/local/libexec/k3s-proxmox/k3s-api-ready";
export const KEEPALIVED_CONFIG = "/etc/keepalived/keepalived.conf";

export const k3sVip: Role = {
  name: P,
  source: "constructs/ansible/roles/k3s_vip.ts",
  summary: "The Kubernetes API's virtual IP on the servers (keepalived, VRRP to unicast peers, held by a server whose API is ready).",
  description: [
    "Installs keepalived and writes /etc/keepalived/keepalived.conf: one VRRP instance on the interface that carries the node IP, " +
      "unicast to the other servers, the virtual IP k3s_vip_address, and a tracked check script that asks the local API for " +
      "/readyz with the server's admin client certificate. A server whose API does not answer gives the address up.",
    "All servers start as BACKUP with the same priority and nopreempt: the address stays where it is until its server fails.",
    "Does nothing when k3s_vip_address is empty (a single server without a VIP).",
  ],
  templatesDir: path.join(__dirname, P, "templates"),
  variables: [
    {
      name: "k3s_vip_address",
      type: "str",
      default: "",
      description: "The API's virtual IPv4 address (api_vip in terraform.tfvars); empty: no VIP, keepalived is not installed.",
    },
    {
      name: "k3s_vip_prefix_length",
      type: "int",
      default: 24,
      description: "Prefix length of the node network, for the address on the interface.",
    },
    {
      name: "k3s_vip_router_id",
      type: "int",
      default: 51,
      description: "VRRP virtual router id (1-255), the same on every server of the cluster and unique on the LAN.",
    },
    {
      name: "k3s_vip_servers_group",
      type: "str",
      default: "master",
      description: "Inventory group of the servers that share the address (each one's peers are the others).",
    },
    ...nodeNetworkVariables(P, IFACE),
    {
      name: "k3s_vip_advert_interval",
      type: "int",
      default: 1,
      description: "Seconds between VRRP advertisements; a backup takes over after about three missed ones.",
    },
    {
      name: "k3s_vip_check_interval",
      type: "int",
      default: 1,
      description: "Seconds between two runs of the /readyz check; two failures in a row give the address up, two successes make the server eligible again.",
    },
  ],
  derived: [
    ...nodeNetworkDerived(P, IFACE),
    {
      name: "k3s_vip_check_script",
      comment: "keepalived's tracked check (templates/k3s-api-ready.j2).",
      value: VIP_CHECK_SCRIPT,
    },
    {
      name: "k3s_vip_peers",
      comment: "The other servers' node addresses, in inventory order: the unicast peers.",
      // reject, not difference: difference is a set operation whose order changes from run to run.
      value: "{{ groups[k3s_vip_servers_group] | reject('equalto', inventory_hostname) | map('extract', hostvars, 'ansible_host') | list }}",
    },
  ],
  tasks: [
    {
      name: "Set up the API's virtual IP",
      when: ENABLED,
      block: [
        nodeNetworkCheck(P, IFACE),
        {
          name: "Install keepalived",
          module: "ansible.builtin.package",
          args: { name: "keepalived", state: "present" },
        },
        {
          name: "Create the folder of the check script",
          module: "ansible.builtin.file",
          args: { path: "{{ k3s_vip_check_script | dirname }}", state: "directory", owner: "root", group: "root", mode: "0755" },
        },
        {
          name: "Write the check script (the local API's /readyz)",
          module: "ansible.builtin.template",
          args: { src: "k3s-api-ready.j2", dest: "{{ k3s_vip_check_script }}", owner: "root", group: "root", mode: "0755" },
        },
        {
          name: "Write the keepalived configuration",
          module: "ansible.builtin.template",
          args: { src: "keepalived.conf.j2", dest: KEEPALIVED_CONFIG, owner: "root", group: "root", mode: "0640" },
          notify: "Restart keepalived",
        },
        {
          name: "Restart keepalived now if its configuration changed",
          module: "ansible.builtin.meta",
          args: "flush_handlers",
        },
        {
          name: "Enable and start keepalived",
          module: "ansible.builtin.systemd_service",
          args: { name: "keepalived", enabled: true, state: "started" },
        },
        {
          name: "Wait until a server holds the virtual IP and its API answers there",
          module: "ansible.builtin.command",
          args: { argv: ["curl", "-sk", "--max-time", "3", "-o", "/dev/null", "-w", "%{http_code}", "https://{{ k3s_vip_address }}:6443/readyz"] },
          register: "k3s_vip_answer",
          // 401 without credentials: an API server answers there.
          until: `k3s_vip_answer.stdout in ${ANSWERED}`,
          retries: 60,
          delay: 1,
          changed_when: false,
          failed_when: false,
        },
        {
          name: "Explain a virtual IP that does not answer",
          module: "ansible.builtin.fail",
          args: {
            msg: folded(`
              No K3s API answers at the virtual IP {{ k3s_vip_address }}:6443 (from {{ inventory_hostname }}, HTTP {{ k3s_vip_answer.stdout | default('none') }}).
              Look at 'journalctl -u keepalived' on the servers: VRRP between them (IP protocol 112) must not be filtered,
              k3s_vip_router_id ({{ k3s_vip_router_id }}) must be unique on the LAN, and the address must be free.`),
          },
          when: `k3s_vip_answer.stdout not in ${ANSWERED}`,
        },
      ],
    },
  ],
  handlers: [
    {
      name: "Restart keepalived",
      module: "ansible.builtin.systemd_service",
      args: { name: "keepalived", state: "restarted" },
    },
  ],
};
