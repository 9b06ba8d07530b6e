/**
 * `ansible/status.yml` (make status): how the control plane is, in words. Each server is asked whether it is
 * reachable, whether k3s runs, whether its API answers /readyz and its etcd member /health, and whether it holds
 * the API's virtual IP; then this machine asks the API address itself. The verdict names the quorum etcd needs,
 * and the run fails when the API is unavailable, so scripts can rely on the exit code.
 */
import { folded, Play } from "./model";
import { API_ANSWERS } from "./roles/k3s-service";
import { K3S } from "./roles/k3s_binary";
import { K3S_SERVER_TLS } from "./roles/k3s_master";

export const STATUS_SOURCE = "constructs/ansible/status.ts";

const TLS = K3S_SERVER_TLS;
/** K3s's etcd answers HTTP (/health) on its own client port; 2379 speaks gRPC only (HTTP gets 415 there). */
const ETCD_HTTP_PORT = 2382;
/** curl's arguments for a local K3s endpoint with a client certificate: prints the HTTP code, then the body. */
function localCurl(url: string, ca: string, cert: string, key: string): string[] {
  return ["curl", "-s", "--max-time", "3", "-w", "\\n%{http_code}", "--cacert", ca, "--cert", cert, "--key", key, url];
}

/** The API address answered (401 without credentials is an answer). */
const STATUS_UP = `status_api.status | default(-1) in [${API_ANSWERS.join(", ")}]`;
const REACHABLE = "not (status_ping.unreachable | default(false))";
/** Per server, as one dict (hostvars[...].status_server), for the summary on localhost. */
const SERVER_FACT = folded(`
  {{ {'name': inventory_hostname, 'address': ansible_host | default(inventory_hostname),
      'reachable': false, 'k3s': 'unknown', 'api': false, 'etcd': false, 'etcd_reason': '', 'vip': false} }}`);

export const statusPlays: readonly Play[] = [
  {
    name: "Ask every server",
    hosts: "master",
    gather_facts: false,
    become: true,
    tasks: [
      { name: "Start from an unknown state", module: "ansible.builtin.set_fact", args: { status_server: SERVER_FACT } },
      { name: "Connect", module: "ansible.builtin.ping", args: {}, ignore_unreachable: true, register: "status_ping" },
      {
        name: "Ask the server",
        when: REACHABLE,
        block: [
          {
            name: "Is k3s running?",
            module: "ansible.builtin.command",
            args: { argv: ["systemctl", "is-active", "k3s"] },
            register: "status_service",
            changed_when: false,
            failed_when: false,
          },
          {
            name: "Does the local API answer /readyz?",
            module: "ansible.builtin.command",
            args: { argv: localCurl("https://127.0.0.1:6443/readyz", `${TLS}/server-ca.crt`, `${TLS}/client-admin.crt`, `${TLS}/client-admin.key`) },
            register: "status_readyz",
            changed_when: false,
            failed_when: false,
          },
          {
            name: "Is the local etcd member healthy?",
            module: "ansible.builtin.command",
            args: { argv: localCurl(`https://127.0.0.1:${ETCD_HTTP_PORT}/health`, `${TLS}/etcd/server-ca.crt`, `${TLS}/etcd/client.crt`, `${TLS}/etcd/client.key`) },
            register: "status_etcd",
            changed_when: false,
            failed_when: false,
          },
          {
            name: "Does it hold the virtual IP?",
            module: "ansible.builtin.command",
            args: { argv: ["ip", "-4", "-o", "address", "show"] },
            register: "status_addresses",
            changed_when: false,
            when: "k3s_vip_address | default('') | length > 0",
          },
          {
            name: "Sum it up",
            module: "ansible.builtin.set_fact",
            vars: { status_etcd_lines: "{{ status_etcd.stdout_lines | default(['', '']) }}" },
            args: {
              status_server: folded(`
                {{ status_server | combine({
                     'reachable': true,
                     'k3s': (status_service.stdout | default('')) or 'state unknown',
                     'api': (status_readyz.stdout_lines | default(['']))[-1] == '200',
                     'etcd': status_etcd_lines[-1] == '200' and status_etcd_lines[0] is search('"health": *"true"'),
                     'etcd_reason': (status_etcd_lines[0] | from_json).reason | default('')
                                    if status_etcd_lines[0] is match('{') else '',
                     'vip': (' ' ~ (k3s_vip_address | default('')) ~ '/') in (status_addresses.stdout | default('')),
                   }) }}`),
            },
          },
        ],
      },
    ],
  },
  {
    name: "Sum up the control plane",
    hosts: "localhost",
    gather_facts: false,
    vars: {
      status_servers: "{{ groups['master'] | map('extract', hostvars, 'status_server') | list }}",
      status_api_address: "{{ k3s_master_api_address }}",
      status_quorum: "{{ (groups['master'] | length) // 2 + 1 }}",
      status_ready: "{{ status_servers | selectattr('api') | list | length }}",
      status_healthy: "{{ status_servers | selectattr('etcd') | list | length }}",
    },
    tasks: [
      {
        name: "Ask the API address from here",
        module: "ansible.builtin.uri",
        // An API server answers 401 to a request without credentials: that is enough to know it is there.
        args: { url: "https://{{ status_api_address }}:6443/readyz", validate_certs: false, status_code: [...API_ANSWERS], timeout: 5 },
        register: "status_api",
        failed_when: false,
      },
      {
        name: "Read the nodes through a ready server",
        module: "ansible.builtin.command",
        args: { argv: [K3S, "kubectl", "get", "nodes", "--no-headers", "-o", "wide"] },
        // Templated before the condition is: a default when no server is ready.
        delegate_to: "{{ status_servers | selectattr('api') | map(attribute='name') | first | default(groups['master'][0]) }}",
        become: true,
        register: "status_nodes",
        changed_when: false,
        failed_when: false,
        when: "status_servers | selectattr('api') | list | length > 0",
      },
      {
        name: "Show each server",
        module: "ansible.builtin.debug",
        args: {
          msg: folded(`
            {{ item.name }} ({{ item.address }}):
            {{ 'unreachable over SSH' if not item.reachable else
               'k3s ' ~ item.k3s ~ ', API ' ~ ('ready' if item.api else 'not ready') ~ ', etcd '
               ~ ('healthy' if item.etcd else 'not healthy' ~ ((' (' ~ item.etcd_reason ~ ')') if item.etcd_reason | length > 0 else ''))
               ~ (', holds the virtual IP' if item.vip else '') }}`),
        },
        loop: "{{ status_servers }}",
        loop_control: { label: "{{ item.name }}" },
      },
      {
        name: "Show the nodes",
        module: "ansible.builtin.debug",
        args: { msg: "{{ status_nodes.stdout_lines }}" },
        when: "status_nodes.stdout_lines is defined",
      },
      {
        name: "Say whether the API is available",
        module: "ansible.builtin.debug",
        args: {
          msg: folded(`
            The Kubernetes API answers at https://{{ status_api_address }}:6443: {{ status_ready }} of {{ status_servers | length }}
            servers ready; etcd has quorum ({{ status_healthy }} of {{ status_servers | length }} members healthy, {{ status_quorum }} needed).
            {{ '' if status_ready | int == status_servers | length else
               'Degraded: ' ~ (status_servers | rejectattr('api') | map(attribute='name') | join(', ')) ~ ' not ready; '
               ~ ('one more server down stops the API.' if status_healthy | int <= status_quorum | int else 'the cluster survives one more failure.') }}`),
        },
        when: STATUS_UP,
      },
      {
        name: "Say that the API is unavailable",
        module: "ansible.builtin.fail",
        args: {
          msg: folded(`
            The Kubernetes API is unavailable at https://{{ status_api_address }}:6443 ({{ status_api.msg | default('no answer') | regex_replace('^Status code was -1 and not [^:]*: ', '') }}):
            {{ status_ready }} of {{ status_servers | length }} servers ready and {{ status_healthy }} of {{ status_servers | length }}
            etcd members healthy; etcd needs {{ status_quorum }} for quorum.
            {{ ('Start the servers that are down (' ~ (status_down | join(', ')) ~ '): the cluster comes back by itself once '
                ~ status_quorum ~ ' servers run.') if status_down | length > 0 else
               'Every server runs k3s: read why their API is not ready with journalctl -u k3s on each.' }} Nothing was changed.`),
        },
        // Down: unreachable, or k3s not running (a running one without quorum is waiting for the others).
        vars: { status_down: "{{ status_servers | rejectattr('k3s', 'equalto', 'active') | map(attribute='name') | list }}" },
        when: `not (${STATUS_UP})`,
      },
    ],
  },
];
