/**
 * `security_profile = "hardened"`, the K3s side: what K3s's CIS hardening guide puts in the server's and the agent's
 * config.yaml, the Pod Security admission configuration and the audit policy it names, and the kernel settings
 * `protect-kernel-defaults` insists on. The roles hold them as variable defaults (documented in their
 * defaults/main.yml); group_vars only switches them on (k3s_master_hardened, k3s_worker_hardened).
 */
import { stringify } from "yaml";
import { RoleVariable } from "../model";

/** Beside config.yaml: the folder exists before K3s first starts (K3s's own server folder does not). */
export const PSA_CONFIG = "/etc/rancher/k3s/pod-security.yaml";
export const AUDIT_POLICY = "/etc/rancher/k3s/audit-policy.yaml";
export const AUDIT_LOG = "/var/lib/rancher/k3s/server/logs/audit.log";

/**
 * What the kubelet checks with protect-kernel-defaults (it refuses to start when one differs, instead of setting
 * it): Kubernetes pkg/kubelet/cm/container_manager_linux.go setupKernelTunables.
 */
export const PROTECTED_KERNEL_DEFAULTS: Readonly<Record<string, number>> = {
  "vm.overcommit_memory": 1,
  "vm.panic_on_oom": 0,
  "kernel.panic": 10,
  "kernel.panic_on_oops": 1,
  "kernel.keys.root_maxkeys": 1000000,
  "kernel.keys.root_maxbytes": 25000000,
};

/** The kubelet flags of the guide, on servers and agents alike. */
const KUBELET_ARGS = [
  "streaming-connection-idle-timeout=5m",
  "tls-cipher-suites=TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256," +
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305,TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305",
];

/** The server settings of the guide. */
const SERVER_CONFIG = {
  "protect-kernel-defaults": true,
  "secrets-encryption": true,
  "kube-apiserver-arg": [
    "enable-admission-plugins=NodeRestriction,EventRateLimit",
    `admission-control-config-file=${PSA_CONFIG}`,
    `audit-log-path=${AUDIT_LOG}`,
    `audit-policy-file=${AUDIT_POLICY}`,
    "audit-log-maxage=30",
    "audit-log-maxbackup=10",
    "audit-log-maxsize=100",
    "service-account-extend-token-expiration=false",
  ],
  "kube-controller-manager-arg": ["terminated-pod-gc-threshold=100"],
};

/**
 * The admission configuration: Pod Security `restricted` enforced (and audited, warned) in every namespace that
 * does not say otherwise by its labels, kube-system exempt (K3s's own pods); EventRateLimit as the guide has it.
 */
export function podSecurityConfig(): string {
  return stringify({
    apiVersion: "apiserver.config.k8s.io/v1",
    kind: "AdmissionConfiguration",
    plugins: [
      {
        name: "PodSecurity",
        configuration: {
          apiVersion: "pod-security.admission.config.k8s.io/v1",
          kind: "PodSecurityConfiguration",
          defaults: { enforce: "restricted", "enforce-version": "latest", audit: "restricted", "audit-version": "latest", warn: "restricted", "warn-version": "latest" },
          exemptions: { usernames: [], runtimeClasses: [], namespaces: ["kube-system"] },
        },
      },
      {
        name: "EventRateLimit",
        configuration: { apiVersion: "eventratelimit.admission.k8s.io/v1alpha1", kind: "Configuration", limits: [{ type: "Server", qps: 5000, burst: 20000 }] },
      },
    ],
  });
}

/** The audit policy: who did what to which object (Metadata), never a request's body; the health probes left out. */
export function auditPolicy(): string {
  return stringify({
    apiVersion: "audit.k8s.io/v1",
    kind: "Policy",
    omitStages: ["RequestReceived"],
    rules: [
      { level: "None", nonResourceURLs: ["/healthz*", "/readyz*", "/livez*"] },
      { level: "None", users: ["system:kube-proxy"], verbs: ["watch"] },
      { level: "Metadata" },
    ],
  });
}

/** The role variables that switch the profile on and hold its settings (`prefix`: k3s_master or k3s_worker). */
export function hardenedVariables(prefix: "k3s_master" | "k3s_worker"): RoleVariable[] {
  const server = prefix === "k3s_master";
  return [
    {
      name: `${prefix}_hardened`,
      type: "bool",
      default: false,
      description:
        `security_profile = "hardened": add ${prefix}_hardened_config and ${prefix}_hardened_kubelet_args to config.yaml` +
        (server ? `, and write the Pod Security admission configuration (${PSA_CONFIG}) and the audit policy (${AUDIT_POLICY}).` : "."),
    },
    {
      name: `${prefix}_hardened_config`,
      type: "dict",
      default: server ? SERVER_CONFIG : { "protect-kernel-defaults": true },
      description: `The ${server ? "server" : "agent"} settings K3s's CIS hardening guide asks for, merged into config.yaml before ${prefix}_extra_config.`,
    },
    {
      name: `${prefix}_hardened_kubelet_args`,
      type: "list",
      elements: "str",
      default: KUBELET_ARGS,
      description: `The kubelet flags of K3s's CIS hardening guide, added to ${prefix}_kubelet_args.`,
    },
  ];
}
