/**
 * Every key an operator may set in `terraform.tfvars`: its type, default and meaning.
 *
 * This table is the single description of the configuration. The loader checks input against it,
 * and the README's configuration reference is generated from it (`make docs`; a test fails on drift).
 */

/** The HCL types a key may have, named as Terraform names them. */
export type KeyType = "string" | "number" | "bool" | "list(string)";

export interface KeySpec {
  readonly type: KeyType;
  /** The value used when the key is absent; `undefined` marks a required key. */
  readonly default?: string | number | boolean | readonly string[] | null;
  /** `null` passes the type check though the default is not null: the loader says what it means. @default false */
  readonly nullable?: boolean;
  /** One line for the README. */
  readonly description: string;
  /** The README groups keys under these headings, in this order. */
  readonly group: "Proxmox" | "Template" | "Nodes" | "Network" | "Access" | "Security" | "K3s" | "Backups" | "Apps";
}

export const CONFIG_SCHEMA = {
  proxmox_endpoint: {
    type: "string",
    group: "Proxmox",
    description: "URL of the Proxmox VE API, e.g. `https://192.168.1.2:8006/`. The API token comes from `PROXMOX_VE_API_TOKEN`, never from this file.",
  },
  proxmox_insecure: {
    type: "bool",
    default: false,
    group: "Proxmox",
    description: "Accept the Proxmox host's self-signed TLS certificate.",
  },
  proxmox_node: { type: "string", default: "pve", group: "Proxmox", description: "Proxmox node the VMs are created on." },
  datastore: { type: "string", default: "local-lvm", group: "Proxmox", description: "Datastore for the VM disks and cloud-init drives." },
  bridge: { type: "string", default: "vmbr0", group: "Proxmox", description: "Proxmox bridge the VMs' virtio NIC is attached to." },
  vm_id_base: {
    type: "number",
    default: null,
    group: "Proxmox",
    description: "First VM id: masters get base+0…, workers base+10…. `null` lets Proxmox pick free ids.",
  },

  template_vm_id: {
    type: "number",
    group: "Template",
    description: "VM id of the cloud-init template every node is fully cloned from: the one `make template` builds, or yours (`template_image = \"prebuilt\"`).",
  },
  template_image: {
    type: "string",
    default: "debian-12",
    nullable: true,
    group: "Template",
    description:
      "What `make template` (and `make apply`, before the VMs) builds the template from: `\"debian-12\"` (genericcloud amd64) or `\"ubuntu-24.04\"` (cloudimg amd64), pinned with their published checksums in `versions.env`; `\"custom\"` with `template_image_url` and `template_image_checksum`; `\"prebuilt\"`: you made `template_vm_id` yourself (README: \"A template made by hand\") and nothing builds it.",
  },
  template_image_url: {
    type: "string",
    default: null,
    group: "Template",
    description: "With `template_image = \"custom\"`: http(s) URL of a qcow2, raw or vmdk cloud image (`.img` is saved as `.qcow2`) that the Proxmox node downloads, e.g. from a mirror on your LAN.",
  },
  template_image_checksum: {
    type: "string",
    default: null,
    group: "Template",
    description: "With `template_image = \"custom\"`: the image's published checksum as `<algorithm>:<hex>` (sha256, sha512, …); the download fails when the file does not match.",
  },
  template_disk_gib: {
    type: "number",
    default: null,
    group: "Template",
    description: "Size of the template's disk, GiB: at least the image's virtual size (Proxmox imports it at that size, then grows it to this). `null`: 3 for debian-12, 4 for ubuntu-24.04, 8 for a custom image.",
  },
  template_image_datastore: {
    type: "string",
    default: "local",
    group: "Template",
    description: "File storage the image is downloaded to, with the `import` content type enabled (Datacenter → Storage → Content: Import).",
  },
  template_name: { type: "string", default: "k3s-template", group: "Template", description: "Name of the template VM `make template` builds." },

  cluster_name: { type: "string", default: "k3s", group: "Nodes", description: "Name used for VM tags and the kubeconfig context." },
  master_count: { type: "number", default: 1, group: "Nodes", description: "Number of K3s servers (1, 3, 5 or 7: etcd needs an odd count)." },
  worker_count: { type: "number", default: 2, group: "Nodes", description: "Number of K3s agents (0-100)." },
  master_cores: { type: "number", default: 2, group: "Nodes", description: "vCPUs per master." },
  master_memory_mib: { type: "number", default: 4096, group: "Nodes", description: "Memory per master, MiB." },
  master_disk_gib: { type: "number", default: 32, group: "Nodes", description: "Disk per master, GiB (the template's disk is grown to this)." },
  worker_cores: { type: "number", default: 2, group: "Nodes", description: "vCPUs per worker." },
  worker_memory_mib: { type: "number", default: 4096, group: "Nodes", description: "Memory per worker, MiB." },
  worker_disk_gib: { type: "number", default: 32, group: "Nodes", description: "Disk per worker, GiB." },

  node_cidr: { type: "string", default: "192.168.1.0/24", group: "Network", description: "The LAN the nodes live on." },
  gateway: { type: "string", default: "192.168.1.1", group: "Network", description: "Default gateway of the nodes." },
  dns_servers: { type: "list(string)", default: ["192.168.1.1"], group: "Network", description: "DNS servers given to the nodes by cloud-init." },
  first_ip: {
    type: "string",
    default: "192.168.1.10",
    group: "Network",
    description: "Address of the first master; masters count up from it, workers from it + 10.",
  },
  master_ips: { type: "list(string)", default: [], group: "Network", description: "Explicit master addresses (one per master), instead of counting from `first_ip`." },
  worker_ips: { type: "list(string)", default: [], group: "Network", description: "Explicit worker addresses (one per worker), instead of counting from `first_ip` + 10." },
  api_vip: {
    type: "string",
    default: null,
    group: "Network",
    description:
      "Virtual IP of the Kubernetes API, held by a healthy master (keepalived): a free address of `node_cidr`. Required when `master_count` > 1; `null` with one master uses its address.",
  },
  pod_cidr: { type: "string", default: "10.42.0.0/16", group: "Network", description: "Pod network (Flannel VXLAN)." },
  service_cidr: { type: "string", default: "10.43.0.0/16", group: "Network", description: "ClusterIP service network." },

  ssh_user: { type: "string", default: "debian", group: "Access", description: "User cloud-init creates on every VM; Ansible logs in as it." },
  ssh_public_key_file: {
    type: "string",
    default: "~/.ssh/id_ed25519.pub",
    group: "Access",
    description: "Public key cloud-init installs for `ssh_user`.",
  },
  ssh_private_key_file: {
    type: "string",
    default: null,
    group: "Access",
    description: "Private key Ansible uses; `null` means `ssh_public_key_file` without `.pub`.",
  },
  timezone: { type: "string", default: "Europe/Warsaw", group: "Access", description: "Timezone of every node (IANA name)." },

  security_profile: {
    type: "string",
    default: "homelab",
    group: "Security",
    description:
      "`\"homelab\"`: K3s's defaults. `\"hardened\"`: K3s as its CIS hardening guide configures it — protect-kernel-defaults (the kernel settings it needs set at boot), secrets encrypted in etcd, Pod Security `restricted` in every namespace that does not say otherwise (kube-system exempt), an audit log on every server, the guide's API server, controller-manager and kubelet flags; a host firewall (nftables) that lets in only the ports K3s needs; the apps' namespaces Pod Security `restricted` with default-deny NetworkPolicies, the apps reached only through Traefik over HTTPS (plain HTTP redirects), and a read-only `make dashboard-token`. `make provision` switches a running cluster and says what it restarts. README: \"The hardened profile\" (what it does not do yet).",
  },
  admin_cidrs: {
    type: "list(string)",
    default: null,
    group: "Security",
    description:
      "Hardened profile: the IPv4 networks (CIDR) that may reach the nodes' SSH, the Kubernetes API and the NodePorts; `null` means `node_cidr`. The machine that runs `make provision` must be inside (it is refused otherwise).",
  },

  tls_certificate_file: {
    type: "string",
    default: null,
    group: "Security",
    description:
      "Your own certificate (PEM, with any intermediates after it) for Traefik's HTTPS entry points, with `tls_key_file`; `null`: `make deploy-apps` issues one from a cluster CA it creates (its certificate written to `cluster-ca.crt` beside the kubeconfig, for your browser or `curl --cacert`). Read on your machine at `make deploy-apps`; the key goes only into a Secret.",
  },
  tls_key_file: { type: "string", default: null, group: "Security", description: "The private key (PEM) of `tls_certificate_file`." },

  k3s_version: {
    type: "string",
    default: null,
    group: "K3s",
    description: "K3s release, e.g. `v1.36.5+k3s1`; `null` means the release pinned in `versions.env` (`K3S_VERSION`). On a running cluster, change it and run `make upgrade`.",
  },

  etcd_snapshot_schedule: {
    type: "string",
    default: "0 */6 * * *",
    group: "Backups",
    description: "When K3s takes scheduled etcd snapshots on every server (cron: minute hour day month weekday); `\"\"` turns them off.",
  },
  etcd_snapshot_retention: { type: "number", default: 10, group: "Backups", description: "How many scheduled snapshots K3s keeps per server (older ones are deleted)." },
  etcd_s3_endpoint: {
    type: "string",
    default: null,
    group: "Backups",
    description: "S3-compatible endpoint (host[:port], e.g. `minio.lan:9000`) that K3s also uploads snapshots to; `null` keeps them on the servers only. The keys come from `K3S_ETCD_S3_ACCESS_KEY` / `K3S_ETCD_S3_SECRET_KEY` at `make provision`, never from this file.",
  },
  etcd_s3_bucket: { type: "string", default: "k3s-snapshots", group: "Backups", description: "Bucket for the off-site snapshots (with `etcd_s3_endpoint`)." },
  etcd_s3_folder: { type: "string", default: "", group: "Backups", description: "Folder inside the bucket (with `etcd_s3_endpoint`)." },
  etcd_s3_region: { type: "string", default: "us-east-1", group: "Backups", description: "Region the S3 endpoint expects (with `etcd_s3_endpoint`)." },
  etcd_s3_insecure: { type: "bool", default: false, group: "Backups", description: "Talk plain HTTP to the S3 endpoint (a LAN MinIO without TLS)." },

  traefik_enabled: { type: "bool", default: true, group: "Apps", description: "Deploy Traefik, the ingress controller (the default IngressClass `traefik`), in `kube-system`." },
  traefik_image: { type: "string", default: "traefik:v3.5.3", group: "Apps", description: "Traefik image, with a pinned tag." },
  traefik_http_node_port: { type: "number", default: 30080, group: "Apps", description: "NodePort of Traefik's HTTP entry point." },
  traefik_https_node_port: { type: "number", default: 30443, group: "Apps", description: "NodePort of Traefik's HTTPS entry point." },
  traefik_dashboard_node_port: { type: "number", default: 30880, group: "Apps", description: "NodePort of Traefik's dashboard (no login: keep it on your LAN; plain HTTP, or HTTPS under the hardened profile)." },
  dashboard_enabled: {
    type: "bool",
    default: true,
    group: "Apps",
    description: "Deploy the cluster dashboard (Headlamp) in `monitoring`, with the login ServiceAccounts `headlamp-admin` (cluster-admin: `make dashboard-admin-token`; also `make dashboard-token` under the homelab profile) and `headlamp-viewer` (read-only: `make dashboard-token` under the hardened profile).",
  },
  dashboard_image: { type: "string", default: "ghcr.io/headlamp-k8s/headlamp:v0.35.0", group: "Apps", description: "Headlamp image, with a pinned tag." },
  dashboard_node_port: { type: "number", default: 30090, group: "Apps", description: "NodePort of the dashboard (under the hardened profile Traefik's HTTPS entry point for it)." },
  whoami_enabled: { type: "bool", default: true, group: "Apps", description: "Deploy Whoami, a test web app, in `apps` (also at `/whoami` through Traefik)." },
  whoami_image: { type: "string", default: "traefik/whoami:v1.11.0", group: "Apps", description: "Whoami image, with a pinned tag." },
  whoami_node_port: { type: "number", default: 30081, group: "Apps", description: "NodePort of Whoami (under the hardened profile Traefik's HTTPS entry point for it)." },
  whoami_replicas: { type: "number", default: 2, group: "Apps", description: "Whoami replicas (1-10)." },
  uptime_kuma_enabled: { type: "bool", default: true, group: "Apps", description: "Deploy Uptime Kuma, status monitoring, in `monitoring`, its data on a local-path volume." },
  uptime_kuma_image: { type: "string", default: "louislam/uptime-kuma:1.23.16", group: "Apps", description: "Uptime Kuma image, with a pinned tag." },
  uptime_kuma_node_port: { type: "number", default: 30082, group: "Apps", description: "NodePort of Uptime Kuma (under the hardened profile Traefik's HTTPS entry point for it)." },
  uptime_kuma_storage_gib: { type: "number", default: 1, group: "Apps", description: "Size of Uptime Kuma's volume, GiB." },
} as const satisfies Record<string, KeySpec>;

export type ConfigKey = keyof typeof CONFIG_SCHEMA;
