/**
 * terraform.tfvars -> ClusterConfig: parsing (the CDK's own HCL parser), checking every key against
 * CONFIG_SCHEMA, and the address plan. Every problem found is reported, not only the first.
 */
import { parse as parseHcl } from "@cdktn/hcl2json";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { CONFIG_SCHEMA, ConfigKey, KeySpec } from "./schema";
import { Cidr, contains, intToIp, ipToInt, isIpv4, overlaps, parseCidr } from "./ipv4";
import { readVersions } from "./versions";
import { resolveTemplateImage, TEMPLATE_IMAGE_PRESETS, TemplateImage } from "./template-image";

export type Role = "master" | "worker";

/** One VM / K3s node, fully resolved. */
export interface NodeSpec {
  /** `k3s-master-1`, `k3s-worker-2`, …: VM name, hostname and inventory name. */
  readonly name: string;
  readonly role: Role;
  /** 1-based position within its role. */
  readonly index: number;
  readonly ip: string;
  /** Proxmox VM id, or undefined to let Proxmox choose. */
  readonly vmId?: number;
  readonly cores: number;
  readonly memoryMiB: number;
  readonly diskGiB: number;
}

/** The validated configuration: the one source every generator reads. */
export interface ClusterConfig {
  readonly clusterName: string;
  readonly proxmox: {
    readonly endpoint: string;
    readonly insecure: boolean;
    readonly node: string;
    readonly datastore: string;
    readonly bridge: string;
  };
  /** The template every node is cloned from. */
  readonly template: TemplateConfig;
  readonly network: {
    readonly nodeCidr: string;
    readonly prefixLength: number;
    readonly gateway: string;
    /** The API's virtual IP (keepalived on the masters), when api_vip is set. */
    readonly apiVip?: string;
    readonly dnsServers: readonly string[];
    readonly podCidr: string;
    readonly serviceCidr: string;
  };
  readonly access: {
    readonly sshUser: string;
    /** The public key itself (read from `ssh_public_key_file`). */
    readonly sshPublicKey: string;
    readonly sshPrivateKeyFile: string;
    readonly timezone: string;
  };
  readonly k3s: { readonly version: string };
  readonly security: {
    readonly profile: "homelab" | "hardened";
    /** Who may reach SSH, the API and the NodePorts under the hardened profile's firewall (admin_cidrs, or node_cidr). */
    readonly adminCidrs: readonly string[];
    /** The operator's own certificate and key for Traefik (absolute paths); undefined: one from the cluster CA. */
    readonly tls?: { readonly certificateFile: string; readonly keyFile: string };
  };
  readonly backups: {
    /** Cron expression, or "" for no scheduled snapshots. */
    readonly schedule: string;
    readonly retention: number;
    /** Off-site copies through K3s's etcd-s3 settings; undefined when etcd_s3_endpoint is null. */
    readonly s3?: { readonly endpoint: string; readonly bucket: string; readonly folder: string; readonly region: string; readonly insecure: boolean };
  };
  readonly apps: AppsConfig;
  readonly masters: readonly NodeSpec[];
  readonly workers: readonly NodeSpec[];
}

/** The cloud-init template: built by the template stack (`make template`) from `image`, or made by hand. */
export interface TemplateConfig {
  readonly vmId: number;
  readonly name: string;
  /** The cloud image the template stack builds it from; undefined: `template_image = "prebuilt"`, nothing builds it. */
  readonly image?: TemplateImage;
  /** File storage the image is downloaded to (`import` content). */
  readonly imageDatastore: string;
}

/** The apps of `make deploy-apps`; a disabled app is removed from the cluster by the next deploy. */
export interface AppsConfig {
  readonly traefik: { readonly enabled: boolean; readonly image: string; readonly httpNodePort: number; readonly httpsNodePort: number; readonly dashboardNodePort: number };
  readonly dashboard: { readonly enabled: boolean; readonly image: string; readonly nodePort: number };
  readonly whoami: { readonly enabled: boolean; readonly image: string; readonly nodePort: number; readonly replicas: number };
  readonly uptimeKuma: { readonly enabled: boolean; readonly image: string; readonly nodePort: number; readonly storageGiB: number };
}

/** The address of the Kubernetes API: the VIP, or the only master's address. */
export function apiAddressOf(config: ClusterConfig): string {
  return config.network.apiVip ?? config.masters[0].ip;
}

/** The NodePort range of a default kube-apiserver (service-node-port-range). */
export const NODE_PORT_RANGE = [30000, 32767] as const;

export class ConfigError extends Error {
  constructor(readonly source: string, readonly problems: readonly string[]) {
    super(`${source}: ${problems.length} problem(s) in the configuration:\n${problems.map((p) => `  - ${p}`).join("\n")}`);
    this.name = "ConfigError";
  }
}

export interface LoadOptions {
  /** Folder that relative paths in the file are resolved against (default: the file's folder). */
  readonly baseDir?: string;
  /** Home folder for `~/` paths (default: the user's). */
  readonly homeDir?: string;
  /** K3s version used when `k3s_version` is null (default: K3S_VERSION from versions.env). */
  readonly defaultK3sVersion?: string;
}

/** Reads and validates a tfvars file. Throws ConfigError listing every problem. */
export async function loadConfigFile(file: string, options: LoadOptions = {}): Promise<ClusterConfig> {
  if (!fs.existsSync(file)) {
    const hint = path.basename(file) === "terraform.tfvars" ? " Copy terraform.tfvars.example to terraform.tfvars and edit it." : "";
    throw new ConfigError(file, [`the file does not exist.${hint} (TFVARS=<path> selects another file.)`]);
  }
  let raw: Record<string, unknown>;
  try {
    raw = (await parseHcl(file, fs.readFileSync(file, "utf8"))) as Record<string, unknown>;
  } catch (error) {
    throw new ConfigError(file, [`not valid HCL: ${(error as Error).message}`]);
  }
  return buildConfig(raw, { baseDir: path.dirname(path.resolve(file)), ...options }, file);
}

type Values = { [K in ConfigKey]: unknown };

/** Validates parsed tfvars values and resolves them into a ClusterConfig. */
export function buildConfig(raw: Record<string, unknown>, options: LoadOptions = {}, source = "terraform.tfvars"): ClusterConfig {
  const problems: string[] = [];
  const v = checkTypes(raw, problems);
  const num = (key: ConfigKey) => v[key] as number;
  const str = (key: ConfigKey) => v[key] as string;
  const list = (key: ConfigKey) => v[key] as string[];

  const range = (key: ConfigKey, min: number, max: number, fix: string) => {
    const value = v[key];
    if (typeof value === "number" && !(Number.isInteger(value) && value >= min && value <= max)) {
      problems.push(`${key} = ${value}: must be a whole number from ${min} to ${max}; ${fix}.`);
    }
  };
  const pattern = (key: ConfigKey, re: RegExp, what: string) => {
    const value = v[key];
    if (typeof value === "string" && !re.test(value)) problems.push(`${key} = ${JSON.stringify(value)}: must be ${what}.`);
  };

  // Proxmox
  const endpoint = v.proxmox_endpoint;
  if (typeof endpoint === "string" && !isHttpUrl(endpoint)) {
    problems.push(`proxmox_endpoint = ${JSON.stringify(endpoint)}: must be an http(s) URL such as "https://192.168.1.2:8006/".`);
  }
  range("template_vm_id", 100, 999_999_999, "use the id of your cloud-init template (qm list shows it)");
  if (v.template_disk_gib !== null) {
    range("template_disk_gib", 1, 1024, "give at least the image's virtual size (qemu-img info <image> shows it)");
    for (const role of ["master", "worker"] as const) {
      const [size, nodes] = [v.template_disk_gib, v[`${role}_disk_gib`]];
      if (typeof size === "number" && typeof nodes === "number" && size > nodes) problems.push(`template_disk_gib = ${size} is larger than ${role}_disk_gib = ${nodes}: a clone's disk can only grow; raise ${role}_disk_gib or lower template_disk_gib.`);
    }
  }
  const templateImage = checkTemplateImage(v, problems);
  pattern("template_image_datastore", /^[A-Za-z][A-Za-z0-9_.-]*$/, "a Proxmox storage id such as \"local\"");
  pattern("template_name", /^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/, "a DNS label such as \"k3s-template\" (Proxmox's VM name format)");
  pattern("proxmox_node", /^[A-Za-z0-9][A-Za-z0-9.-]*$/, "a Proxmox node name such as \"pve\"");
  pattern("datastore", /^[A-Za-z][A-Za-z0-9_.-]*$/, "a Proxmox storage id such as \"local-lvm\"");
  pattern("bridge", /^[A-Za-z][A-Za-z0-9_.-]{0,14}$/, "a Linux bridge name such as \"vmbr0\"");
  if (v.vm_id_base !== null) range("vm_id_base", 100, 999_999_000, "pick a free range of VM ids, or null to let Proxmox choose");
  if (typeof v.vm_id_base === "number" && typeof v.template_vm_id === "number" && typeof v.master_count === "number" && typeof v.worker_count === "number") {
    const [base, id] = [v.vm_id_base, v.template_vm_id];
    if ((id >= base && id < base + v.master_count) || (id >= base + 10 && id < base + 10 + v.worker_count)) {
      problems.push(`template_vm_id = ${id} is also the id of a node (vm_id_base = ${base}: masters ${base}…, workers ${base + 10}…); give the template an id outside that range.`);
    }
  }

  // Nodes
  pattern("cluster_name", /^[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?$/, "lower-case letters, digits and dashes (a DNS label of up to 32 characters)");
  const masterCount = v.master_count;
  if (typeof masterCount === "number" && ![1, 3, 5, 7].includes(masterCount)) {
    problems.push(`master_count = ${masterCount}: must be 1, 3, 5 or 7 (embedded etcd needs an odd number of servers for quorum).`);
  }
  if (typeof masterCount === "number" && masterCount > 1 && v.api_vip === null) {
    problems.push(
      `api_vip is not set, but master_count = ${masterCount}: with several masters the API needs a virtual IP that moves to a healthy one; ` +
        "set api_vip to a free address of node_cidr, outside the nodes' addresses.",
    );
  }
  range("worker_count", 0, 100, "use 0 for a single-node cluster");
  for (const role of ["master", "worker"] as const) {
    range(`${role}_cores`, 1, 128, "2 is the documented minimum for K3s");
    range(`${role}_memory_mib`, 1024, 1_048_576, "K3s needs at least 1024 MiB; 4096 is the default");
    range(`${role}_disk_gib`, 8, 65_536, "give at least 8 GiB (32 is the default)");
  }

  // Network
  const cidrs: Partial<Record<"node_cidr" | "pod_cidr" | "service_cidr", Cidr>> = {};
  for (const key of ["node_cidr", "pod_cidr", "service_cidr"] as const) {
    const value = v[key];
    if (typeof value !== "string") continue;
    const cidr = parseCidr(value);
    if (!cidr) problems.push(`${key} = ${JSON.stringify(value)}: not an IPv4 network in CIDR form with no host bits set, such as "192.168.1.0/24".`);
    else cidrs[key] = cidr;
  }
  const nodeNet = cidrs.node_cidr;
  if (nodeNet && nodeNet.prefix > 29) problems.push(`node_cidr = "${nodeNet.text}": too small for a cluster; use a /29 or larger (e.g. /24).`);
  const pairs = [["node_cidr", "pod_cidr"], ["node_cidr", "service_cidr"], ["pod_cidr", "service_cidr"]] as const;
  for (const [a, b] of pairs) {
    const ca = cidrs[a];
    const cb = cidrs[b];
    if (ca && cb && overlaps(ca, cb)) problems.push(`${a} = "${ca.text}" overlaps ${b} = "${cb.text}": the networks must be disjoint; change ${b}.`);
  }
  const gateway = typeof v.gateway === "string" ? v.gateway : undefined;
  if (gateway !== undefined) {
    if (!isIpv4(gateway)) problems.push(`gateway = ${JSON.stringify(gateway)}: not an IPv4 address.`);
    else if (nodeNet && !usable(nodeNet, ipToInt(gateway))) problems.push(`gateway = "${gateway}": not a host address of node_cidr "${nodeNet.text}"; use your router's address on that network.`);
  }
  if (Array.isArray(v.dns_servers)) {
    if (v.dns_servers.length === 0) problems.push("dns_servers = []: give at least one DNS server, e.g. your router's address.");
    for (const server of v.dns_servers as string[]) if (!isIpv4(server)) problems.push(`dns_servers: ${JSON.stringify(server)} is not an IPv4 address.`);
  }
  const addresses = planAddresses(v, nodeNet, gateway, problems);

  // Access
  const home = options.homeDir ?? os.homedir();
  const baseDir = options.baseDir ?? process.cwd();
  pattern("ssh_user", /^[a-z_][a-z0-9_-]{0,31}$/, "a Linux user name such as \"debian\"");
  let sshPublicKey = "";
  let publicKeyFile = "";
  if (typeof v.ssh_public_key_file === "string") {
    publicKeyFile = resolvePath(v.ssh_public_key_file, baseDir, home);
    sshPublicKey = readPublicKey(v.ssh_public_key_file, publicKeyFile, problems);
  }
  const privateKeyFile =
    typeof v.ssh_private_key_file === "string" ? resolvePath(v.ssh_private_key_file, baseDir, home) : publicKeyFile.replace(/\.pub$/, "");
  if (typeof v.timezone === "string" && !isTimezone(v.timezone)) {
    problems.push(`timezone = ${JSON.stringify(v.timezone)}: not an IANA timezone name; use e.g. "Europe/Warsaw" or "UTC".`);
  }

  if (typeof v.security_profile === "string" && !["homelab", "hardened"].includes(v.security_profile)) {
    problems.push(`security_profile = ${JSON.stringify(v.security_profile)}: must be "homelab" (K3s's defaults) or "hardened" (K3s's CIS hardening guide).`);
  }

  const adminCidrs = Array.isArray(v.admin_cidrs) ? (v.admin_cidrs as string[]) : typeof v.node_cidr === "string" ? [v.node_cidr] : [];
  if (Array.isArray(v.admin_cidrs)) {
    if (v.admin_cidrs.length === 0) problems.push("admin_cidrs = []: no one could reach SSH or the API through the firewall; give at least your own network, or null for node_cidr.");
    for (const cidr of adminCidrs) {
      if (!parseCidr(cidr)) problems.push(`admin_cidrs: ${JSON.stringify(cidr)} is not an IPv4 network in CIDR form with no host bits set, such as "192.168.1.0/24" or "192.168.1.20/32".`);
    }
  }

  const tlsKeys = ["tls_certificate_file", "tls_key_file"] as const;
  const tlsFiles = tlsKeys.map((key) => (typeof v[key] === "string" ? resolvePath(v[key] as string, baseDir, home) : undefined));
  if ((tlsFiles[0] === undefined) !== (tlsFiles[1] === undefined)) {
    problems.push("tls_certificate_file and tls_key_file go together: set both (your certificate and its key), or neither (a certificate from the cluster CA).");
  }
  for (const [i, key] of tlsKeys.entries()) {
    const file = tlsFiles[i];
    if (file !== undefined && !readablePem(file)) problems.push(`${key} = ${JSON.stringify(v[key])}: ${file} is not a readable PEM file; give the path of your certificate or key (relative to this file's folder, or ~/…).`);
  }
  if (v.security_profile === "hardened" && v.traefik_enabled === false) {
    const served = (["dashboard_enabled", "whoami_enabled", "uptime_kuma_enabled"] as const).filter((key) => v[key] === true);
    if (served.length > 0) {
      problems.push(`traefik_enabled = false: under security_profile = "hardened" the apps are reached only through Traefik over HTTPS; enable Traefik, or disable the apps too (${served.join(", ")}).`);
    }
  }

  // K3s
  const k3sVersion = v.k3s_version === null ? options.defaultK3sVersion ?? readVersions().K3S_VERSION : v.k3s_version;
  if (typeof k3sVersion !== "string" || !/^v1\.\d+\.\d+\+k3s(\d+|-[0-9a-f]{7,40}(-dirty)?)$/.test(k3sVersion)) {
    problems.push(
      `k3s_version = ${JSON.stringify(k3sVersion)}: must be a K3s release tag such as "v1.33.5+k3s1" ` +
        `(or "v1.34.0+k3s-<commit>" for a K3s built from a commit, "…-dirty" from a modified one).`,
    );
  }

  // Backups
  if (typeof v.etcd_snapshot_schedule === "string" && v.etcd_snapshot_schedule !== "" && !isCron(v.etcd_snapshot_schedule)) {
    problems.push(`etcd_snapshot_schedule = ${JSON.stringify(v.etcd_snapshot_schedule)}: must be a cron expression of five fields such as "0 */6 * * *" (every 6 hours), or "" for none.`);
  }
  range("etcd_snapshot_retention", 1, 1000, "10 keeps the last 10 scheduled snapshots");
  if (typeof v.etcd_s3_endpoint === "string" && !/^[A-Za-z0-9.-]+(:\d{1,5})?$/.test(v.etcd_s3_endpoint)) {
    problems.push(`etcd_s3_endpoint = ${JSON.stringify(v.etcd_s3_endpoint)}: must be a host name or address with an optional port, without a scheme or path, e.g. "minio.lan:9000".`);
  }
  pattern("etcd_s3_bucket", /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, "an S3 bucket name (3-63 lower-case letters, digits, dots and dashes)");

  // Apps
  const nodePortKeys = APP_NODE_PORTS.filter(([enabled]) => v[enabled] === true).map(([, port]) => port);
  const ports = new Map<number, ConfigKey>();
  for (const key of nodePortKeys) {
    range(key, NODE_PORT_RANGE[0], NODE_PORT_RANGE[1], "Kubernetes gives NodePorts from 30000-32767");
    const port = v[key];
    if (typeof port !== "number") continue;
    const other = ports.get(port);
    if (other) problems.push(`${key} = ${port}: already used by ${other}; give every app its own NodePort.`);
    else ports.set(port, key);
  }
  for (const key of ["traefik_image", "dashboard_image", "whoami_image", "uptime_kuma_image"] as const) {
    const image = v[key];
    if (typeof image === "string" && !isPinnedImage(image)) {
      problems.push(`${key} = ${JSON.stringify(image)}: must name an image with a pinned tag or digest, e.g. "traefik:v3.5.3" (not "latest"), so every node runs the same version.`);
    }
  }
  range("whoami_replicas", 1, 10, "2 shows load balancing between pods");
  range("uptime_kuma_storage_gib", 1, 1024, "1 GiB holds months of checks");

  if (problems.length > 0) throw new ConfigError(source, problems);

  const vmIdBase = v.vm_id_base as number | null;
  const nodes = (role: Role, count: number, ips: string[], vmOffset: number): NodeSpec[] =>
    Array.from({ length: count }, (_, i) => ({
      name: `k3s-${role}-${i + 1}`,
      role,
      index: i + 1,
      ip: ips[i],
      vmId: vmIdBase === null ? undefined : vmIdBase + vmOffset + i,
      cores: num(`${role}_cores`),
      memoryMiB: num(`${role}_memory_mib`),
      diskGiB: num(`${role}_disk_gib`),
    }));

  return {
    clusterName: str("cluster_name"),
    proxmox: {
      endpoint: str("proxmox_endpoint"),
      insecure: v.proxmox_insecure as boolean,
      node: str("proxmox_node"),
      datastore: str("datastore"),
      bridge: str("bridge"),
    },
    template: { vmId: num("template_vm_id"), name: str("template_name"), image: templateImage, imageDatastore: str("template_image_datastore") },
    network: {
      nodeCidr: str("node_cidr"),
      prefixLength: nodeNet!.prefix,
      gateway: str("gateway"),
      apiVip: typeof v.api_vip === "string" ? v.api_vip : undefined,
      dnsServers: list("dns_servers"),
      podCidr: str("pod_cidr"),
      serviceCidr: str("service_cidr"),
    },
    access: { sshUser: str("ssh_user"), sshPublicKey, sshPrivateKeyFile: privateKeyFile, timezone: str("timezone") },
    k3s: { version: k3sVersion as string },
    security: {
      profile: v.security_profile as "homelab" | "hardened",
      adminCidrs,
      tls: tlsFiles[0] && tlsFiles[1] ? { certificateFile: tlsFiles[0], keyFile: tlsFiles[1] } : undefined,
    },
    backups: {
      schedule: str("etcd_snapshot_schedule"),
      retention: num("etcd_snapshot_retention"),
      s3:
        v.etcd_s3_endpoint === null
          ? undefined
          : { endpoint: str("etcd_s3_endpoint"), bucket: str("etcd_s3_bucket"), folder: str("etcd_s3_folder"), region: str("etcd_s3_region"), insecure: v.etcd_s3_insecure as boolean },
    },
    apps: {
      traefik: {
        enabled: v.traefik_enabled as boolean,
        image: str("traefik_image"),
        httpNodePort: num("traefik_http_node_port"),
        httpsNodePort: num("traefik_https_node_port"),
        dashboardNodePort: num("traefik_dashboard_node_port"),
      },
      dashboard: { enabled: v.dashboard_enabled as boolean, image: str("dashboard_image"), nodePort: num("dashboard_node_port") },
      whoami: { enabled: v.whoami_enabled as boolean, image: str("whoami_image"), nodePort: num("whoami_node_port"), replicas: num("whoami_replicas") },
      uptimeKuma: {
        enabled: v.uptime_kuma_enabled as boolean,
        image: str("uptime_kuma_image"),
        nodePort: num("uptime_kuma_node_port"),
        storageGiB: num("uptime_kuma_storage_gib"),
      },
    },
    masters: nodes("master", num("master_count"), addresses.masters, 0),
    workers: nodes("worker", num("worker_count"), addresses.workers, 10),
  };
}

/**
 * `template_image`: a preset, "custom" (with URL and checksum) or "prebuilt". A null one would leave the template the
 * VMs are cloned from undeclared — neither built by the template stack nor said to exist — so it is refused.
 */
function checkTemplateImage(v: Values, problems: string[]): TemplateImage | undefined {
  const name = v.template_image;
  const choices = [...Object.keys(TEMPLATE_IMAGE_PRESETS), "custom", "prebuilt"].map((c) => JSON.stringify(c)).join(", ");
  const id = typeof v.template_vm_id === "number" ? v.template_vm_id : "<template_vm_id>";
  if (name === null) {
    problems.push(
      `template_image = null: make apply clones template ${id}, but nothing declares it. Set template_image = "debian-12" (or another of ${choices}) ` +
        `so that make template builds it, or "prebuilt" if you made template ${id} yourself.`,
    );
    return undefined;
  }
  if (typeof name !== "string") return undefined;
  const custom = { url: v.template_image_url as string | null, checksum: v.template_image_checksum as string | null, diskGiB: v.template_disk_gib as number | null };
  if (name === "prebuilt") {
    for (const key of ["template_image_url", "template_image_checksum", "template_disk_gib"] as const) {
      if (v[key] !== null) problems.push(`${key} is set, but template_image = "prebuilt": nothing builds the template; remove it, or set template_image = "custom".`);
    }
    return undefined;
  }
  if (!(name in TEMPLATE_IMAGE_PRESETS) && name !== "custom") {
    const near = closest(name, [...Object.keys(TEMPLATE_IMAGE_PRESETS), "custom", "prebuilt"]);
    problems.push(`template_image = ${JSON.stringify(name)}: not one of ${choices}.${near ? ` Did you mean "${near}"?` : ""}`);
    return undefined;
  }
  return resolveTemplateImage(name, custom, problems);
}

/** Each app's toggle and the NodePorts it takes when enabled. */
const APP_NODE_PORTS: readonly (readonly [ConfigKey, ConfigKey])[] = [
  ["traefik_enabled", "traefik_http_node_port"],
  ["traefik_enabled", "traefik_https_node_port"],
  ["traefik_enabled", "traefik_dashboard_node_port"],
  ["dashboard_enabled", "dashboard_node_port"],
  ["whoami_enabled", "whoami_node_port"],
  ["uptime_kuma_enabled", "uptime_kuma_node_port"],
];

/** An image reference with an explicit tag other than `latest`, or a digest. */
function isPinnedImage(image: string): boolean {
  const match = /^([a-z0-9]+([._-][a-z0-9]+)*(:\d+)?\/)?[a-z0-9]+([._/-][a-z0-9]+)*(:([\w][\w.-]{0,127}))?(@sha256:[0-9a-f]{64})?$/.exec(image);
  if (!match) return false;
  const tag = match[6];
  const digest = match[7];
  return digest !== undefined || (tag !== undefined && tag !== "latest");
}

/** Five cron fields of digits, `*`, `/`, `,` and `-` (K3s also accepts @hourly and friends). */
function isCron(text: string): boolean {
  if (/^@(yearly|annually|monthly|weekly|daily|midnight|hourly)$/.test(text)) return true;
  const fields = text.trim().split(/\s+/);
  return fields.length === 5 && fields.every((field) => /^(\*|\d+(-\d+)?)(\/\d+)?(,(\*|\d+(-\d+)?)(\/\d+)?)*$/.test(field));
}

/** Unknown keys, missing required keys and wrong types; fills defaults. */
function checkTypes(raw: Record<string, unknown>, problems: string[]): Values {
  const known = Object.keys(CONFIG_SCHEMA) as ConfigKey[];
  for (const key of Object.keys(raw)) {
    if (!(key in CONFIG_SCHEMA)) {
      const guess = closest(key, known);
      problems.push(`${key}: unknown key.${guess ? ` Did you mean ${guess}?` : ""} The README lists every key.`);
    }
  }
  const values = {} as Values;
  for (const key of known) {
    const spec: KeySpec = CONFIG_SCHEMA[key];
    const value = key in raw ? raw[key] : spec.default;
    if (value === undefined) {
      problems.push(`${key}: required, but not set. Add \`${key} = …\` (see terraform.tfvars.example).`);
    } else if (value === null && (spec.default === null || spec.nullable)) {
      // an optional key left at null, or one whose null the checks below explain
    } else if (!hasType(value, spec.type)) {
      problems.push(`${key} = ${JSON.stringify(value)}: must be a ${spec.type}.`);
      values[key] = undefined;
      continue;
    }
    values[key] = value;
  }
  return values;
}

function hasType(value: unknown, type: KeySpec["type"]): boolean {
  switch (type) {
    case "string":
      return typeof value === "string";
    case "number":
      return typeof value === "number" && Number.isFinite(value);
    case "bool":
      return typeof value === "boolean";
    case "list(string)":
      return Array.isArray(value) && value.every((item) => typeof item === "string");
  }
}

/** Node addresses: explicit lists, or counted from first_ip (masters) and first_ip + 10 (workers). */
function planAddresses(v: Values, net: Cidr | undefined, gateway: string | undefined, problems: string[]) {
  const result = { masters: [] as string[], workers: [] as string[] };
  const [masterCount, workerCount] = [v.master_count, v.worker_count];
  if (typeof masterCount !== "number" || typeof workerCount !== "number") return result;
  const counts = { master: masterCount, worker: workerCount };
  const first = typeof v.first_ip === "string" ? v.first_ip : undefined;
  if (first !== undefined && !isIpv4(first)) {
    problems.push(`first_ip = ${JSON.stringify(first)}: not an IPv4 address.`);
    return result;
  }
  if (!net) return result;
  if (net.last - net.first - 2 < counts.master + counts.worker + 1) {
    problems.push(
      `node_cidr = "${net.text}" has ${net.last - net.first - 1} host addresses, too few for the gateway and ` +
        `${counts.master + counts.worker} nodes; use a larger network or fewer nodes.`,
    );
    return result;
  }
  for (const role of ["master", "worker"] as const) {
    const key = `${role}_ips` as const;
    const explicit = (v[key] as string[] | undefined) ?? [];
    const count = counts[role];
    if (explicit.length > 0) {
      if (explicit.length !== count) problems.push(`${key} has ${explicit.length} address(es) but ${role}_count = ${count}; give exactly one per ${role}, or [] to count from first_ip.`);
      result[`${role}s`] = explicit;
    } else if (first !== undefined) {
      const start = ipToInt(first) + (role === "worker" ? 10 : 0);
      result[`${role}s`] = Array.from({ length: count }, (_, i) => intToIp(Math.min(start + i, 2 ** 32 - 1)));
    }
  }
  const seen = new Map<string, string>();
  if (gateway && isIpv4(gateway)) seen.set(gateway, "the gateway");
  const vip = v.api_vip;
  if (typeof vip === "string") {
    if (!isIpv4(vip)) problems.push(`api_vip = ${JSON.stringify(vip)}: not an IPv4 address; give a free address of node_cidr "${net.text}".`);
    else if (!usable(net, ipToInt(vip))) problems.push(`api_vip = "${vip}": not a host address of node_cidr "${net.text}" (network and broadcast addresses excluded); the VIP must be on the nodes' LAN.`);
    else if (seen.has(vip)) problems.push(`api_vip = "${vip}": already taken by ${seen.get(vip)}; give the VIP an address nothing else uses.`);
    else seen.set(vip, "api_vip");
  }
  for (const role of ["master", "worker"] as const) {
    const explicit = ((v[`${role}_ips`] as string[] | undefined) ?? []).length > 0;
    const origin = explicit ? `${role}_ips` : "first_ip";
    for (const [i, ip] of result[`${role}s`].entries()) {
      const who = `k3s-${role}-${i + 1}`;
      const other = seen.get(ip);
      if (!isIpv4(ip)) {
        problems.push(`${origin}: ${JSON.stringify(ip)} (for ${who}) is not an IPv4 address.`);
      } else if (!usable(net, ipToInt(ip))) {
        problems.push(
          `${origin}: ${who} would get ${ip}, which is not a host address of node_cidr "${net.text}"` +
            ` (network and broadcast addresses excluded); move ${origin} so every node fits.`,
        );
      } else if (other) {
        problems.push(`${origin}: ${who} would get ${ip}, already taken by ${other}; give every node its own address.`);
      } else {
        seen.set(ip, who);
      }
    }
  }
  return result;
}

/** A host address of the block: not its network or broadcast address (for blocks of 4 or more). */
function usable(net: Cidr, ip: number): boolean {
  return contains(net, ip) && (net.prefix >= 31 || (ip !== net.first && ip !== net.last));
}

function isHttpUrl(text: string): boolean {
  try {
    const url = new URL(text);
    return (url.protocol === "https:" || url.protocol === "http:") && url.hostname !== "";
  } catch {
    return false;
  }
}

function isTimezone(name: string): boolean {
  try {
    new Intl.DateTimeFormat("en", { timeZone: name });
    return /^[A-Za-z_]+(\/[A-Za-z0-9_+-]+)*$/.test(name);
  } catch {
    return false;
  }
}

function resolvePath(file: string, baseDir: string, home: string): string {
  if (file === "~" || file.startsWith("~/")) return path.join(home, file.slice(1));
  return path.resolve(baseDir, file);
}

function readablePem(file: string): boolean {
  try {
    return fs.readFileSync(file, "utf8").includes("-----BEGIN ");
  } catch {
    return false;
  }
}

function readPublicKey(given: string, file: string, problems: string[]): string {
  let text: string;
  try {
    text = fs.readFileSync(file, "utf8").trim();
  } catch (error) {
    problems.push(
      `ssh_public_key_file = "${given}": cannot read ${file} (${(error as NodeJS.ErrnoException).code ?? "error"}); ` +
        `create a key with \`ssh-keygen -t ed25519\` or point the key at an existing .pub file.`,
    );
    return "";
  }
  if (!/^(ssh-(ed25519|rsa|dss)|ecdsa-sha2-nistp\d+|sk-[a-z0-9@.-]+) [A-Za-z0-9+/=]+( .*)?$/.test(text) || text.includes("\n")) {
    problems.push(`ssh_public_key_file = "${given}": ${file} does not hold one OpenSSH public key (a line like "ssh-ed25519 AAAA… comment"); did you name the private key?`);
  }
  return text;
}

/** The known key nearest to a typo, if it is near enough to be a likely meaning. */
function closest(word: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of candidates) {
    const d = editDistance(word, candidate);
    if (d < bestDistance) [best, bestDistance] = [candidate, d];
  }
  return bestDistance <= Math.max(2, Math.floor(word.length / 3)) ? best : undefined;
}

/** Levenshtein distance: how many one-character edits turn `a` into `b`. */
export function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      current[j] = Math.min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    previous = current;
  }
  return previous[b.length];
}
