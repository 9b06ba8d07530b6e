/**
 * `ansible/inventory/group_vars/all.yml` (beside the inventory, so it goes wherever the inventory goes): the cluster's values from the configuration (terraform.tfvars), under the
 * role variables' own names, each with the role's description as its comment. It depends on the
 * configuration, so it is written at synth time and not committed.
 */
import { apiAddressOf, type ClusterConfig } from "../config";
import { appEndpoints, dashboardLogin } from "../k8s";
import { Role } from "./model";
import { yamlFile, wrap } from "./render";
import { PROTECTED_KERNEL_DEFAULTS } from "./roles/hardening";
import { K3S_SYSCTL } from "./roles/k3s_prereqs";

export const GROUP_VARS_SOURCE = "constructs/ansible/group-vars.ts";

/** Variables read by playbooks rather than roles. */
export const PLAYBOOK_VARIABLES: Readonly<Record<string, string>> = {
  cluster_nodes: "Every node terraform.tfvars lists; remove-nodes.yml drains and deletes the inventory's other nodes.",
  dashboard_login_account:
    "The dashboard ServiceAccount whose token make dashboard-token prints (make dashboard-admin-token: always headlamp-admin).",
};

/** The values: every one comes from the configuration, none is typed here. */
export function groupVarsValues(config: ClusterConfig): Record<string, unknown> {
  const apiAddress = apiAddressOf(config);
  const vip = config.network.apiVip;
  return {
    base_timezone: config.access.timezone,
    k3s_binary_version: config.k3s.version,
    k3s_master_cluster_name: config.clusterName,
    k3s_master_api_address: apiAddress,
    k3s_master_cluster_cidr: config.network.podCidr,
    k3s_master_service_cidr: config.network.serviceCidr,
    k3s_master_snapshot_schedule: config.backups.schedule,
    k3s_master_snapshot_retention: config.backups.retention,
    k3s_master_etcd_s3: config.backups.s3 ?? {},
    k3s_vip_address: vip ?? "",
    k3s_vip_prefix_length: config.network.prefixLength,
    // Unique per VIP on a /24 and the same on every server; VRRP goes to the peers only (unicast) anyway.
    k3s_vip_router_id: vip ? Number(vip.split(".")[3]) || 1 : 51,
    k3s_worker_server_url: `https://${apiAddress}:6443`,
    cluster_nodes: [...config.masters, ...config.workers].map((node) => node.name),
    dashboard_login_account: dashboardLogin(config),
    k3s_apps_endpoints: appEndpoints(config).map((e) => `${e.name}: ${e.url} — ${e.login}`),
    // Traefik's NodePorts answer on every node, and the VIP moves between the servers: the certificate names them all.
    k3s_apps_tls_names: [...(vip ? [vip] : []), ...[...config.masters, ...config.workers].map((node) => node.ip)].map((ip) => `IP:${ip}`),
    k3s_apps_ca_common_name: `${config.clusterName} cluster CA (k3s-proxmox)`,
    ...(config.security.tls ? { k3s_apps_tls_certificate_file: config.security.tls.certificateFile, k3s_apps_tls_key_file: config.security.tls.keyFile } : {}),
    ...(config.security.profile === "hardened"
      ? {
          k3s_master_hardened: true,
          k3s_worker_hardened: true,
          // protect-kernel-defaults: the kubelet refuses to start unless these are set, so the nodes set them at boot.
          k3s_prereqs_sysctl: { ...K3S_SYSCTL, ...PROTECTED_KERNEL_DEFAULTS },
          k3s_firewall_enabled: true,
          k3s_firewall_admin_cidrs: config.security.adminCidrs,
          k3s_firewall_vrrp: vip !== undefined,
        }
      : {}),
  };
}

export function groupVarsFile(config: ClusterConfig, roles: readonly Role[]): string {
  const values = groupVarsValues(config);
  const descriptions = new Map([
    ...roles.flatMap((role) => role.variables.map((v) => [v.name, v.description] as const)),
    ...Object.entries(PLAYBOOK_VARIABLES),
  ]);
  const comments = Object.fromEntries(
    Object.keys(values).map((name) => {
      const description = descriptions.get(name);
      if (!description) throw new Error(`group_vars sets ${name}, which no role declares`);
      return [name, wrap(description)];
    }),
  );
  return yamlFile(
    "terraform.tfvars (values) or constructs/ansible/group-vars.ts (layout)",
    values,
    comments,
    wrap(
      `Cluster "${config.clusterName}": values from the configuration for every host (not committed: make synth writes it). ` +
        "Each variable is documented in its role's defaults/main.yml and meta/argument_specs.yml.",
    ),
  );
}
