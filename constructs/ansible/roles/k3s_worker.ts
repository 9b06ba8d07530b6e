/**
 * Role `k3s_worker`: a K3s agent joining the cluster. The join token is read from the server
 * (k3s_worker_server_host) by this role itself, so `--limit <new worker>` works when scaling up; it goes
 * into /etc/rancher/k3s/config.yaml (0600) and nowhere else. The role then waits until the server lists
 * the node, with kubectl run on the server.
 */
import * as path from "node:path";
import { folded, Role } from "../model";
import { serviceActiveWait, restartReasonHandler, serviceStartTasks } from "./k3s-service";
import { hardenedVariables } from "./hardening";
import { K3S_BINARY_CHANGED } from "./k3s_binary";
import { K3S_CONFIG } from "./k3s_master";
import { nodeNetworkCheck, nodeNetworkDerived, nodeNetworkVariables } from "./node-network";

const P = "k3s_worker";

export const k3sWorker: Role = {
  name: P,
  source: "constructs/ansible/roles/k3s_worker.ts",
  summary: "K3s agent that joins the cluster and waits until the server lists it.",
  description: [
    `Reads the join token from the server, writes ${K3S_CONFIG} (mode 0600: server URL, token, node-ip, node-name, ` +
      "flannel-iface = the interface that carries the node IP) and /etc/systemd/system/k3s-agent.service, starts the agent, and waits " +
      "until `kubectl get node` on the server finds the node.",
    "The binary comes from the k3s_binary role (a dependency). A changed binary, configuration or unit restarts k3s-agent through the handler.",
  ],
  dependencies: ["k3s_binary"],
  modules: ["k3s_files"],
  templatesDir: path.join(__dirname, P, "templates"),
  variables: [
    {
      name: "k3s_worker_server_url",
      type: "str",
      required: true,
      description: "URL of the Kubernetes API the agent registers with: https://<api_vip or the first master's IP>:6443 (K3s's fixed registration address).",
    },
    {
      name: "k3s_worker_server_host",
      type: "str",
      default: "{{ groups['master'] | first }}",
      description: "Inventory name of the server the join token is read from and kubectl runs on.",
    },
    ...nodeNetworkVariables(P),
    {
      name: "k3s_worker_kubelet_args",
      type: "list",
      elements: "str",
      default: [],
      description: "Extra kubelet flags without dashes, e.g. 'max-pods=150' (kubelet-arg).",
    },
    ...hardenedVariables(P),
    {
      name: "k3s_worker_extra_config",
      type: "dict",
      default: {},
      description: "More K3s agent settings, merged last into config.yaml (keys as in `k3s agent --help` without dashes).",
    },
    {
      name: "k3s_worker_register_retries",
      type: "int",
      default: 300,
      description: "How many times to look for the node on the server before giving up.",
    },
    {
      name: "k3s_worker_register_delay",
      type: "int",
      default: 1,
      description: "Seconds between two looks (a look is one cheap request: a short delay ends the wait soon after the event).",
    },
  ],
  derived: nodeNetworkDerived(P),
  tasks: [
    nodeNetworkCheck(P),
    {
      name: "Create the K3s configuration folder",
      module: "ansible.builtin.file",
      args: { path: "/etc/rancher/k3s", state: "directory", owner: "root", group: "root", mode: "0755" },
    },
    {
      name: "Read the join token from the server",
      module: "ansible.builtin.slurp",
      args: { src: "/var/lib/rancher/k3s/server/node-token" },
      delegate_to: "{{ k3s_worker_server_host }}",
      register: "k3s_worker_join_token",
      no_log: true,
    },
    ...serviceStartTasks("k3s-agent", "agent", P),
    {
      name: "Wait for the node to register",
      block: [
        serviceActiveWait("k3s-agent", "Wait until systemd reports k3s-agent started (it signals readiness once joined)", "k3s_worker", "k3s_worker_register_retries", "k3s_worker_register_delay"),
        {
          name: "Wait until the server lists this node",
          module: "ansible.builtin.command",
          args: { cmd: "{{ k3s_binary_install_path }} kubectl get node {{ k3s_worker_node_name }} --output name" },
          delegate_to: "{{ k3s_worker_server_host }}",
          register: "k3s_worker_node",
          until: "k3s_worker_node.rc == 0",
          retries: "{{ k3s_worker_register_retries }}",
          delay: "{{ k3s_worker_register_delay }}",
          changed_when: false,
        },
      ],
      rescue: [
        {
          name: "Explain why the node did not register",
          module: "ansible.builtin.fail",
          args: {
            msg: folded(`
              {{ ('k3s-agent on ' ~ inventory_hostname ~ ' did not start (systemd says it is '
                  ~ k3s_worker_active.status.ActiveState ~ ')') if k3s_worker_active.status.ActiveState | default('active') != 'active'
                 else k3s_worker_node_name ~ " did not appear in 'kubectl get nodes' on " ~ k3s_worker_server_host }} within
              {{ k3s_worker_register_retries | int * k3s_worker_register_delay | int }} s. Look at 'journalctl -u k3s-agent'
              on {{ inventory_hostname }}: the server must be reachable at {{ k3s_worker_server_url }} (port 6443/tcp) and
              the nodes must reach each other on 8472/udp (VXLAN) and 10250/tcp (kubelet).`),
          },
        },
      ],
    },
  ],
  handlers: [
    restartReasonHandler("k3s-agent", P, false),
    {
      name: "Restart k3s-agent",
      module: "ansible.builtin.systemd_service",
      // no_block: the unit is Type=notify with no start timeout; the registration wait bounds the wait instead.
      args: { name: "k3s-agent", state: "restarted", daemon_reload: true, no_block: true },
      listen: K3S_BINARY_CHANGED,
    },
  ],
};
