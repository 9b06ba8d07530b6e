/**
 * Role `k3s_apps` (run on the operator's machine by apps-deploy.yml): applies the generated manifests
 * through the Kubernetes API with the kubeconfig `make provision` wrote, deletes the objects of disabled
 * apps, and prints where each app answers. kubernetes.core.k8s compares before it writes, so a second run
 * with nothing changed reports no change.
 */
import { folded, Role } from "../model";

const P = "k3s_apps";
const ENABLED = `query('ansible.builtin.fileglob', ${P}_manifests_dir ~ '/*.yaml') | sort`;
const REMOVED = `query('ansible.builtin.fileglob', ${P}_manifests_dir ~ '/removed/*.yaml') | sort`;
const K8S_COMMON = { kubeconfig: `{{ ${P}_kubeconfig }}`, src: "{{ item }}" };

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
    {
      name: "Apply the manifests of the enabled apps",
      module: "kubernetes.core.k8s",
      args: { ...K8S_COMMON, state: "present", apply: true, wait: `{{ ${P}_wait }}`, wait_timeout: `{{ ${P}_wait_timeout }}` },
      loop: `{{ ${ENABLED} }}`,
      loop_control: { label: "{{ item | basename }}" },
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
