/**
 * Role `k3s_apps` (run on the operator's machine by apps-deploy.yml): writes Traefik's certificate (the
 * operator's, or one issued from a cluster CA it creates and keeps in the cluster), applies the generated
 * manifests through the Kubernetes API with the kubeconfig `make provision` wrote, deletes the objects of
 * disabled apps, and prints where each app answers. kubernetes.core.k8s compares before it writes, and a
 * certificate is issued only when none fits, so a second run with nothing changed reports no change.
 */
import { TLS } from "../../k8s/apps";
import { folded, Item, Role, Task } from "../model";

const P = "k3s_apps";
const ENABLED = `query('ansible.builtin.fileglob', ${P}_manifests_dir ~ '/*.yaml') | sort`;
const REMOVED = `query('ansible.builtin.fileglob', ${P}_manifests_dir ~ '/removed/*.yaml') | sort`;
const K8S_COMMON = { kubeconfig: `{{ ${P}_kubeconfig }}`, src: "{{ item }}" };
const KUBECONFIG = { kubeconfig: `{{ ${P}_kubeconfig }}` };
/** The operator gave a certificate of their own (tls_certificate_file); otherwise the cluster CA issues one. */
const OWN = `${P}_tls_certificate_file | length > 0`;
const CA_MODE = `${P}_tls_certificate_file | length == 0`;
/** A key of a Secret read by k8s_info, decoded: as a Jinja expression, and as a templated value. */
const secretValue = (register: string, key: string) => `${register}.resources[0].data['${key}'] | b64decode`;
const secretData = (register: string, key: string) => `{{ ${secretValue(register, key)} }}`;
/** A Secret of kube-system read through the API into REGISTER (no_log: it may hold a key). */
const readSecret = (name: string, secret: string, register: string, when?: string): Task => ({
  name,
  module: "kubernetes.core.k8s_info",
  args: { ...KUBECONFIG, kind: "Secret", namespace: TLS.namespace, name: secret },
  register,
  no_log: true,
  ...(when ? { when } : {}),
});
const tlsSecret = (name: string, type: string, crt: string, key: string) => ({
  ...KUBECONFIG,
  state: "present",
  definition: {
    apiVersion: "v1",
    kind: "Secret",
    type,
    metadata: { name, namespace: TLS.namespace, labels: { "app.kubernetes.io/managed-by": "k3s-proxmox" } },
    stringData: { "tls.crt": crt, "tls.key": key },
  },
});

/**
 * Traefik's certificate: the operator's files, or issued by the cluster CA (made once, kept as a Secret in
 * kube-system, its certificate written beside the kubeconfig). A certificate from the CA is issued again only when
 * none exists, it names other addresses than the nodes', it expires within k3s_apps_tls_renew_days, or another CA
 * signed it. Every task that holds a key has no_log.
 */
const TLS_TASKS: readonly Item[] = [
  readSecret("Look for the cluster CA", TLS.caSecret, `${P}_ca_found`, CA_MODE),
  {
    name: "Create the cluster CA (once: it stays in the cluster as the Secret " + `${TLS.namespace}/${TLS.caSecret})`,
    when: [CA_MODE, `${P}_ca_found.resources | length == 0`],
    no_log: true,
    block: [
      { name: "Create the CA's key", module: "community.crypto.openssl_privatekey_pipe", args: { type: "ECC", curve: "secp384r1" }, register: `${P}_ca_key` },
      {
        name: "Create the CA's certificate request",
        module: "community.crypto.openssl_csr_pipe",
        args: {
          privatekey_content: `{{ ${P}_ca_key.privatekey }}`,
          common_name: `{{ ${P}_ca_common_name }}`,
          basic_constraints: ["CA:TRUE", "pathlen:0"],
          basic_constraints_critical: true,
          key_usage: ["keyCertSign", "cRLSign"],
          key_usage_critical: true,
          // What the check below compares a certificate's authority key identifier with.
          create_subject_key_identifier: true,
          use_common_name_for_san: false,
        },
        register: `${P}_ca_csr`,
      },
      {
        name: "Sign the CA's certificate (10 years)",
        module: "community.crypto.x509_certificate_pipe",
        args: { provider: "selfsigned", csr_content: `{{ ${P}_ca_csr.csr }}`, privatekey_content: `{{ ${P}_ca_key.privatekey }}`, selfsigned_not_after: "+3650d" },
        register: `${P}_ca_certificate`,
      },
      {
        name: "Keep the CA in the cluster",
        module: "kubernetes.core.k8s",
        args: tlsSecret(TLS.caSecret, "Opaque", `{{ ${P}_ca_certificate.certificate }}`, `{{ ${P}_ca_key.privatekey }}`),
      },
    ],
  },
  // Read after the block: a skipped task's register would overwrite what an earlier one read.
  readSecret("Read the cluster CA", TLS.caSecret, `${P}_ca_secret`, CA_MODE),
  readSecret("Read Traefik's certificate", TLS.secret, `${P}_tls_secret`),
  {
    name: "Look at Traefik's certificate (the addresses it names, its expiry, who signed it)",
    module: "community.crypto.x509_certificate_info",
    args: { content: secretData(`${P}_tls_secret`, "tls.crt"), valid_at: { renewal: `+{{ ${P}_tls_renew_days }}d` } },
    register: `${P}_tls_info`,
    when: [CA_MODE, `${P}_tls_secret.resources | length > 0`],
  },
  {
    name: "Look at the cluster CA's certificate",
    module: "community.crypto.x509_certificate_info",
    args: { content: secretData(`${P}_ca_secret`, "tls.crt") },
    register: `${P}_ca_info`,
    when: CA_MODE,
  },
  {
    name: "Issue Traefik's certificate from the cluster CA (none yet, other addresses, expiring, or another CA's)",
    when: [
      CA_MODE,
      `${P}_tls_secret.resources | length == 0 or (${P}_tls_info.subject_alt_name | default([]) | sort) != (${P}_tls_names | sort) ` +
        `or not ${P}_tls_info.valid_at.renewal or ${P}_tls_info.authority_key_identifier != ${P}_ca_info.subject_key_identifier`,
    ],
    no_log: true,
    block: [
      { name: "Create the certificate's key", module: "community.crypto.openssl_privatekey_pipe", args: { type: "ECC", curve: "secp256r1" }, register: `${P}_tls_key` },
      {
        name: "Create the certificate request (every node's address)",
        module: "community.crypto.openssl_csr_pipe",
        args: {
          privatekey_content: `{{ ${P}_tls_key.privatekey }}`,
          common_name: `{{ ${P}_tls_names[0] | regex_replace('^[A-Z]+:', '') }}`,
          subject_alt_name: `{{ ${P}_tls_names }}`,
          extended_key_usage: ["serverAuth"],
          key_usage: ["digitalSignature"],
          use_common_name_for_san: false,
        },
        register: `${P}_tls_csr`,
      },
      {
        name: "Sign the certificate with the cluster CA",
        module: "community.crypto.x509_certificate_pipe",
        args: {
          provider: "ownca",
          csr_content: `{{ ${P}_tls_csr.csr }}`,
          ownca_content: secretData(`${P}_ca_secret`, "tls.crt"),
          ownca_privatekey_content: secretData(`${P}_ca_secret`, "tls.key"),
          ownca_not_after: `+{{ ${P}_tls_days }}d`,
        },
        register: `${P}_tls_certificate`,
      },
      {
        name: "Store Traefik's certificate",
        module: "kubernetes.core.k8s",
        args: tlsSecret(TLS.secret, "kubernetes.io/tls", `{{ ${P}_tls_certificate.certificate }}`, `{{ ${P}_tls_key.privatekey }}`),
      },
    ],
  },
  {
    name: "Store the operator's certificate for Traefik (tls_certificate_file, tls_key_file)",
    module: "kubernetes.core.k8s",
    args: tlsSecret(TLS.secret, "kubernetes.io/tls", `{{ lookup('ansible.builtin.file', ${P}_tls_certificate_file) }}\n`, `{{ lookup('ansible.builtin.file', ${P}_tls_key_file) }}\n`),
    no_log: true,
    when: OWN,
  },
  {
    name: "Write the cluster CA's certificate beside the kubeconfig (trust it to reach the apps over HTTPS)",
    module: "ansible.builtin.copy",
    args: { content: secretData(`${P}_ca_secret`, "tls.crt"), dest: `{{ ${P}_ca_certificate_path }}`, mode: "0644" },
    when: CA_MODE,
  },
  readSecret("Read the certificate Traefik is to present", TLS.secret, `${P}_tls_secret`),
];

export const k3sApps: Role = {
  name: P,
  source: "constructs/ansible/roles/k3s_apps.ts",
  summary: "Applies the generated manifests (manifests/) to the cluster and removes disabled apps.",
  description: [
    "Applies every manifests/*.yaml in file-name order (namespaces first) with kubernetes.core.k8s (client-side apply: " +
      "only what differs is patched), waits for the workloads unless k3s_apps_wait is false, deletes the objects listed in " +
      "manifests/removed/*.yaml (apps disabled in terraform.tfvars), then prints the URLs.",
    "Runs on the operator's machine against the API at the address in k3s_apps_kubeconfig; nothing is copied to the nodes.",
  ],
  variables: [
    {
      name: `${P}_manifests_dir`,
      type: "path",
      default: "{{ playbook_dir | dirname }}/manifests",
      description: "Folder of the generated manifests (make synth writes manifests/ at the repository root).",
    },
    {
      name: `${P}_kubeconfig`,
      type: "path",
      default: "{{ playbook_dir | dirname }}/kubeconfig",
      description: "Kubeconfig that reaches the cluster: the one make provision writes (k3s_master_kubeconfig_path).",
    },
    {
      name: `${P}_wait`,
      type: "bool",
      default: true,
      description: "Wait until every Deployment is available (its images pulled and its probes passing).",
    },
    {
      name: `${P}_wait_timeout`,
      type: "int",
      default: 600,
      description: "Seconds to wait for one manifest's workloads; the first deploy pulls every image.",
    },
    {
      name: `${P}_tls_names`,
      type: "list",
      elements: "str",
      default: [],
      description: "What Traefik's certificate from the cluster CA names (subjectAltName entries, e.g. IP:192.168.1.10): every node's address and the VIP (written by make synth).",
    },
    {
      name: `${P}_tls_certificate_file`,
      type: "str",
      default: "",
      description: "The operator's own certificate (PEM) for Traefik (tls_certificate_file); empty: one from the cluster CA.",
    },
    {
      name: `${P}_tls_key_file`,
      type: "str",
      default: "",
      description: "The key (PEM) of k3s_apps_tls_certificate_file (tls_key_file).",
    },
    {
      name: `${P}_ca_common_name`,
      type: "str",
      default: "k3s-proxmox cluster CA",
      description: "The cluster CA's name (its subject), made once.",
    },
    {
      name: `${P}_ca_certificate_path`,
      type: "path",
      default: `{{ ${P}_kubeconfig | dirname }}/cluster-ca.crt`,
      description: "Where the cluster CA's certificate is written, for the operator's browser or curl --cacert.",
    },
    {
      name: `${P}_tls_days`,
      type: "int",
      default: 397,
      description: "Days a certificate from the cluster CA is valid (browsers accept at most 398).",
    },
    {
      name: `${P}_tls_renew_days`,
      type: "int",
      default: 30,
      description: "A certificate from the cluster CA that expires within this many days is issued again by make deploy-apps.",
    },
    {
      name: `${P}_endpoints`,
      type: "list",
      elements: "str",
      default: [],
      description: "Lines printed at the end: each enabled app's URL and how to log in (written by make synth from terraform.tfvars).",
    },
  ],
  tasks: [
    {
      name: "Check that the kubeconfig exists",
      module: "ansible.builtin.stat",
      args: { path: `{{ ${P}_kubeconfig }}` },
      register: `${P}_kubeconfig_stat`,
    },
    {
      name: "Explain a missing kubeconfig or manifests",
      module: "ansible.builtin.assert",
      args: {
        that: [`${P}_kubeconfig_stat.stat.exists`, `${ENABLED} | length > 0`],
        fail_msg: folded(`
          Need the kubeconfig {{ ${P}_kubeconfig }} (make provision writes it: run it first) and the manifests in
          {{ ${P}_manifests_dir }} (make synth writes them).`),
        quiet: true,
      },
    },
    ...TLS_TASKS,
    {
      name: "Apply the manifests of the enabled apps",
      module: "kubernetes.core.k8s",
      args: { ...K8S_COMMON, state: "present", apply: true, wait: `{{ ${P}_wait }}`, wait_timeout: `{{ ${P}_wait_timeout }}` },
      loop: `{{ ${ENABLED} }}`,
      loop_control: { label: "{{ item | basename }}" },
    },
    {
      // Traefik reads its certificate at start: a new one rolls it (the annotation is the certificate's hash).
      name: "Roll Traefik when its certificate changed",
      module: "kubernetes.core.k8s",
      args: {
        ...KUBECONFIG,
        state: "patched",
        api_version: "apps/v1",
        kind: "Deployment",
        namespace: TLS.namespace,
        name: "traefik",
        definition: { spec: { template: { metadata: { annotations: { "k3s-proxmox/certificate-sha256": `{{ ${secretValue(`${P}_tls_secret`, "tls.crt")} | hash('sha256') }}` } } } } },
      },
      when: `'10-traefik.yaml' in (${ENABLED} | map('basename'))`,
    },
    {
      name: "Delete the objects of disabled apps",
      module: "kubernetes.core.k8s",
      args: { ...K8S_COMMON, state: "absent", wait: true, wait_timeout: `{{ ${P}_wait_timeout }}` },
      loop: `{{ ${REMOVED} }}`,
      loop_control: { label: "{{ item | basename }}" },
    },
    {
      name: "Show where the apps answer",
      module: "ansible.builtin.debug",
      args: {
        msg: `{{ ${P}_endpoints }}`,
      },
      when: `${P}_endpoints | length > 0`,
    },
  ],
};
