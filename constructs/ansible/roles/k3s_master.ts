/**
 * Role `k3s_master`: a K3s server with embedded etcd. The first server (k3s_master_first) initializes the
 * cluster; any further server joins it with the token read from it. Configuration in
 * /etc/rancher/k3s/config.yaml (0600) and our own systemd unit — no install script, nothing secret on a
 * command line. Restarts only through the handler, so a run that changes nothing restarts nothing.
 * The first server's admin kubeconfig is written on the operator's machine (k3s_master_kubeconfig_path).
 */
import * as path from "node:path";
import { folded, Role } from "../model";
import { K3S_CONFIG, readyzWait, serviceActiveWait, restartReasonHandler, serviceStartTasks } from "./k3s-service";
import { K3S_BINARY_CHANGED } from "./k3s_binary";
import { AUDIT_POLICY, auditPolicy, hardenedVariables, PSA_CONFIG, podSecurityConfig } from "./hardening";
import { nodeNetworkCheck, nodeNetworkDerived, nodeNetworkVariables } from "./node-network";

const P = "k3s_master";
const FIRST = "inventory_hostname == k3s_master_first";
const JOINER = "inventory_hostname != k3s_master_first";
export { K3S_CONFIG };
const NODE_TOKEN = "/var/lib/rancher/k3s/server/node-token";
/** The server's certificates and keys (CAs, the admin client, etcd's). */
export const K3S_SERVER_TLS = "/var/lib/rancher/k3s/server/tls";
/** Where K3s keeps the secrets-encryption configuration, with the key (pkg/daemons/control/deps/deps.go). */
const ENCRYPTION_CONFIG = "/var/lib/rancher/k3s/server/cred/encryption-config.json";

export const k3sMaster: Role = {
  name: P,
  source: "constructs/ansible/roles/k3s_master.ts",
  summary: "K3s server with embedded etcd; waits for the API and writes the operator's kubeconfig.",
  description: [
    `Writes ${K3S_CONFIG} (mode 0600: cluster-init on the first server, server URL and token on the others; traefik and ` +
      "servicelb disabled, write-kubeconfig-mode 0644, tls-san, node-ip, cluster and service CIDRs, flannel-iface = the interface " +
      "that carries the node IP) and /etc/systemd/system/k3s.service, starts K3s and waits for /readyz.",
    "On the first server, rebuilds /etc/rancher/k3s/k3s.yaml into k3s_master_kubeconfig_path on the operator's machine (mode 0600), " +
      "with the API address instead of 127.0.0.1 and cluster, user and context named k3s_master_cluster_name.",
    "With k3s_master_hardened, the settings of K3s's CIS hardening guide are added (protect-kernel-defaults, secrets-encryption, the " +
      `API server's admission and audit flags, the kubelet's), with the Pod Security admission configuration (${PSA_CONFIG}: restricted ` +
      `unless a namespace says otherwise, kube-system exempt) and the audit policy (${AUDIT_POLICY}).`,
    "The binary comes from the k3s_binary role (a dependency). A changed binary, configuration or unit restarts k3s through the handler.",
  ],
  dependencies: ["k3s_binary"],
  modules: ["k3s_files"],
  templatesDir: path.join(__dirname, P, "templates"),
  variables: [
    {
      name: "k3s_master_api_address",
      type: "str",
      required: true,
      description:
        "Address of the Kubernetes API: the virtual IP (api_vip) or, without one, the first master's IP. Written as tls-san, used by joining servers and in the kubeconfig.",
    },
    {
      name: "k3s_master_cluster_name",
      type: "str",
      default: "k3s",
      description: "Name of the cluster, user and context in the operator's kubeconfig (cluster_name in terraform.tfvars).",
    },
    {
      name: "k3s_master_cluster_cidr",
      type: "str",
      default: "10.42.0.0/16",
      description: "Pod network (cluster-cidr).",
    },
    {
      name: "k3s_master_service_cidr",
      type: "str",
      default: "10.43.0.0/16",
      description: "Service network (service-cidr).",
    },
    {
      name: "k3s_master_first",
      type: "str",
      default: "{{ groups['master'] | first }}",
      description: "Inventory name of the server that initializes the cluster (cluster-init); the other servers join it.",
    },
    ...nodeNetworkVariables(P),
    {
      name: "k3s_master_tls_san",
      type: "list",
      elements: "str",
      default: [],
      description: "More names or addresses for the API certificate, besides k3s_master_api_address and the node's own address (e.g. a DNS name).",
    },
    {
      name: "k3s_master_disable",
      type: "list",
      elements: "str",
      default: ["traefik", "servicelb"],
      description: "Packaged components K3s must not deploy (disable); Traefik is installed by make deploy-apps instead.",
    },
    {
      name: "k3s_master_snapshot_schedule",
      type: "str",
      default: "0 */6 * * *",
      description: "When K3s saves scheduled etcd snapshots (etcd-snapshot-schedule-cron); an empty string disables them (etcd-disable-snapshots).",
    },
    {
      name: "k3s_master_snapshot_retention",
      type: "int",
      default: 10,
      description: "How many scheduled snapshots each server keeps (etcd-snapshot-retention).",
    },
    {
      name: "k3s_master_etcd_s3",
      type: "dict",
      default: {},
      description:
        "Off-site snapshot target: endpoint, bucket, folder, region, insecure (etcd-s3-*). The keys are read from K3S_ETCD_S3_ACCESS_KEY and " +
        "K3S_ETCD_S3_SECRET_KEY in the environment of make provision. Empty: snapshots stay on the servers.",
    },
    {
      name: "k3s_master_kubelet_args",
      type: "list",
      elements: "str",
      default: [],
      description: "Extra kubelet flags without dashes, e.g. 'max-pods=150' (kubelet-arg).",
    },
    ...hardenedVariables(P),
    {
      name: "k3s_master_extra_config",
      type: "dict",
      default: {},
      description: "More K3s server settings, merged last into config.yaml (keys as in `k3s server --help` without dashes).",
    },
    {
      name: "k3s_master_ready_retries",
      type: "int",
      default: 300,
      description: "How many times to ask /readyz before giving up.",
    },
    {
      name: "k3s_master_ready_delay",
      type: "int",
      default: 1,
      description: "Seconds between two /readyz checks (a look is one cheap request: a short delay ends the wait soon after the event).",
    },
    {
      name: "k3s_master_fetch_kubeconfig",
      type: "bool",
      default: true,
      description: "Write the admin kubeconfig on the operator's machine.",
    },
    {
      name: "k3s_master_kubeconfig_path",
      type: "str",
      default: "{{ playbook_dir | dirname }}/kubeconfig",
      description: "Where the kubeconfig goes on the operator's machine: ./kubeconfig at the repository root. ~/.kube/config is never touched.",
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
      name: "Read the join token from the first server",
      module: "ansible.builtin.slurp",
      args: { src: NODE_TOKEN },
      delegate_to: "{{ k3s_master_first }}",
      register: "k3s_master_join_token",
      no_log: true,
      when: JOINER,
    },
    {
      name: "Check that the S3 keys are in the environment",
      module: "ansible.builtin.assert",
      args: {
        that: ["lookup('ansible.builtin.env', 'K3S_ETCD_S3_ACCESS_KEY') | length > 0", "lookup('ansible.builtin.env', 'K3S_ETCD_S3_SECRET_KEY') | length > 0"],
        fail_msg: folded(`
          etcd_s3_endpoint is set ({{ k3s_master_etcd_s3.endpoint | default('') }}) but K3S_ETCD_S3_ACCESS_KEY or K3S_ETCD_S3_SECRET_KEY
          is empty: export both before make provision, or set etcd_s3_endpoint = null.`),
        quiet: true,
      },
      when: "k3s_master_etcd_s3 | length > 0",
    },
    // K3s generates the secrets-encryption key when a server first starts with the flag, and keeps it out of the
    // datastore's bootstrap data once that exists (pkg/cluster/storage.go Save does not overwrite it). A cluster
    // switched to hardened would end with one key per server, each unable to read the others' Secrets: the servers
    // already in the cluster take the first server's key before they restart with the flag. (A server joining
    // afresh gets it over the bootstrap HTTP call, with the certificates.)
    {
      name: "Read the first server's secrets-encryption key (hardened)",
      module: "ansible.builtin.slurp",
      args: { src: ENCRYPTION_CONFIG },
      delegate_to: "{{ k3s_master_first }}",
      register: `${P}_encryption_config`,
      no_log: true,
      when: [JOINER, "k3s_master_hardened"],
    },
    {
      name: "Check whether this server is already in the cluster (K3s's credentials folder)",
      module: "ansible.builtin.stat",
      args: { path: path.posix.dirname(ENCRYPTION_CONFIG), get_checksum: false },
      register: `${P}_cred_dir`,
      when: [JOINER, "k3s_master_hardened"],
    },
    {
      name: "Give a server already in the cluster the first server's secrets-encryption key, before it restarts with it",
      module: "ansible.builtin.copy",
      args: { content: `{{ ${P}_encryption_config.content | b64decode }}`, dest: ENCRYPTION_CONFIG, owner: "root", group: "root", mode: "0600", force: false },
      no_log: true,
      when: [JOINER, "k3s_master_hardened", `${P}_cred_dir.stat.isdir | default(false)`],
    },
    ...serviceStartTasks("k3s", "server", P, {
      name: "Write the Pod Security admission configuration and the audit policy (hardened profile)",
      files: [
        { dest: PSA_CONFIG, content: podSecurityConfig(), mode: "0600" },
        { dest: AUDIT_POLICY, content: auditPolicy(), mode: "0600" },
      ],
      when: "k3s_master_hardened",
    }),
    {
      name: "Wait for the Kubernetes API",
      block: [
        serviceActiveWait("k3s", "Wait until systemd reports k3s started (it signals readiness itself)", "k3s_master", "k3s_master_ready_retries", "k3s_master_ready_delay"),
        readyzWait(
          "Wait until the API server reports ready (/readyz)",
          "{{ k3s_binary_install_path }}",
          "k3s_master_readyz",
          "{{ k3s_master_ready_retries }}",
          "{{ k3s_master_ready_delay }}",
        ),
      ],
      rescue: [
        {
          name: "Explain why the API is not ready",
          module: "ansible.builtin.fail",
          args: {
            msg: folded(`
              The K3s API on {{ inventory_hostname }} did not report ready within
              {{ k3s_master_ready_retries | int * k3s_master_ready_delay | int }} s
              (last answer: {{ ansible_failed_result.stderr | default(ansible_failed_result.msg | default('none')) | trim }}).
              Look at 'journalctl -u k3s' on the host: a wrong node IP, a port in use, or too little memory are the usual causes.`),
          },
        },
      ],
    },
    {
      name: "Read the admin kubeconfig",
      module: "ansible.builtin.slurp",
      args: { src: "/etc/rancher/k3s/k3s.yaml" },
      register: "k3s_master_admin_kubeconfig",
      no_log: true,
      when: [FIRST, "k3s_master_fetch_kubeconfig"],
    },
    {
      name: "Write the kubeconfig on the operator's machine",
      module: "ansible.builtin.template",
      args: { src: "kubeconfig.j2", dest: "{{ k3s_master_kubeconfig_path }}", mode: "0600" },
      delegate_to: "localhost",
      become: false,
      no_log: true,
      when: [FIRST, "k3s_master_fetch_kubeconfig"],
    },
  ],
  handlers: [
    restartReasonHandler("k3s", P, true),
    {
      name: "Restart k3s",
      module: "ansible.builtin.systemd_service",
      // no_block: the unit is Type=notify with no start timeout; the /readyz wait bounds the wait instead.
      args: { name: "k3s", state: "restarted", daemon_reload: true, no_block: true },
      listen: K3S_BINARY_CHANGED,
    },
  ],
};
