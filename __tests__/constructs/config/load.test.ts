import * as fs from "node:fs";
import * as path from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { apiAddressOf, buildConfig, ConfigError, loadConfigFile } from "../../../constructs/config";
import { readVersions } from "../../../constructs/config/versions";
import { tempDir } from "../../helpers";

const PUBLIC_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGJ1c3kgYmVlcyBidXp6IGFsbCBkYXkgbG9uZw test@example";
const scratch = tempDir("k3spve-config-");
let dir: string;

beforeAll(() => {
  dir = scratch();
  fs.writeFileSync(path.join(dir, "id_ed25519.pub"), `${PUBLIC_KEY}\n`);
  fs.writeFileSync(path.join(dir, "id_ed25519"), "-----BEGIN OPENSSH PRIVATE KEY-----\n");
});

/** The smallest valid configuration; each case below changes one thing. */
function vars(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    proxmox_endpoint: "https://192.168.1.2:8006/",
    template_vm_id: 9000,
    ssh_public_key_file: "id_ed25519.pub",
    k3s_version: "v1.33.5+k3s1",
    ...overrides,
  };
}

function build(overrides: Record<string, unknown> = {}) {
  return buildConfig(vars(overrides), { baseDir: dir, homeDir: dir });
}

/** The list of problems a configuration is rejected with. */
function problems(overrides: Record<string, unknown>): readonly string[] {
  try {
    build(overrides);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as ConfigError).problems;
  }
  throw new Error(`accepted: ${JSON.stringify(overrides)}`);
}

describe("defaults", () => {
  it("gives the design document's cluster: 1 master and 2 workers of 2 vCPU / 4 GiB / 32 GiB", () => {
    const config = build();
    expect(config.masters.map((n) => [n.name, n.ip])).toEqual([["k3s-master-1", "192.168.1.10"]]);
    expect(config.workers.map((n) => [n.name, n.ip])).toEqual([
      ["k3s-worker-1", "192.168.1.20"],
      ["k3s-worker-2", "192.168.1.21"],
    ]);
    for (const node of [...config.masters, ...config.workers]) {
      expect([node.cores, node.memoryMiB, node.diskGiB, node.vmId]).toEqual([2, 4096, 32, undefined]);
    }
    expect(config.network).toMatchObject({ podCidr: "10.42.0.0/16", serviceCidr: "10.43.0.0/16", prefixLength: 24, gateway: "192.168.1.1" });
    expect(config.access).toEqual({
      sshUser: "debian",
      sshPublicKey: PUBLIC_KEY,
      sshPrivateKeyFile: path.join(dir, "id_ed25519"),
      timezone: "Europe/Warsaw",
    });
    expect(config.proxmox).toEqual({
      endpoint: "https://192.168.1.2:8006/",
      insecure: false,
      node: "pve",
      datastore: "local-lvm",
      bridge: "vmbr0",
    });
    expect(config.template).toMatchObject({ vmId: 9000, name: "k3s-template", imageDatastore: "local", image: { name: "debian-12", checksumAlgorithm: "sha512" } });
    expect(config.template.image!.fileName).toMatch(/^debian-12-genericcloud-amd64-[0-9-]+\.qcow2$/);
    expect(config.template.image!.checksum).toMatch(/^[0-9a-f]{128}$/);
  });

  it("takes the API's virtual IP, required with several masters and optional with one; the API address follows it", () => {
    const ha = build({ master_count: 3, api_vip: "192.168.1.9" });
    expect(ha.network.apiVip).toBe("192.168.1.9");
    expect(apiAddressOf(ha)).toBe("192.168.1.9");
    expect(build({ api_vip: "192.168.1.200" }).network.apiVip).toBe("192.168.1.200");
    const single = build();
    expect(single.network.apiVip).toBeUndefined();
    expect(apiAddressOf(single)).toBe("192.168.1.10");
  });

  it("lets the hardened firewall's admin networks default to node_cidr", () => {
    expect(build().security.adminCidrs).toEqual(["192.168.1.0/24"]);
    expect(build({ admin_cidrs: ["192.168.1.20/32", "10.8.0.0/16"] }).security.adminCidrs).toEqual(["192.168.1.20/32", "10.8.0.0/16"]);
  });

  it("builds for the e2e the Traefik release that traefik_image names by default", () => {
    expect(build({}).apps.traefik.image).toBe(`traefik:${readVersions().TRAEFIK_BUILD_VERSION}`);
  });

  it("takes the operator's certificate and key for Traefik, resolved beside terraform.tfvars", () => {
    const dir = scratch();
    fs.writeFileSync(path.join(dir, "tls.crt"), "-----BEGIN CERTIFICATE-----\n");
    fs.writeFileSync(path.join(dir, "tls.key"), "-----BEGIN PRIVATE KEY-----\n");
    const config = build({ tls_certificate_file: path.join(dir, "tls.crt"), tls_key_file: path.join(dir, "tls.key") });
    expect(config.security.tls).toEqual({ certificateFile: path.join(dir, "tls.crt"), keyFile: path.join(dir, "tls.key") });
    expect(build({}).security.tls).toBeUndefined();
  });

  it("numbers VMs from vm_id_base: masters +0…, workers +10…", () => {
    const config = build({ vm_id_base: 500, master_count: 3, worker_count: 3, api_vip: "192.168.1.9" });
    expect(config.masters.map((n) => n.vmId)).toEqual([500, 501, 502]);
    expect(config.workers.map((n) => n.vmId)).toEqual([510, 511, 512]);
  });

  it("uses explicit addresses when given", () => {
    const config = build({ master_ips: ["192.168.1.50"], worker_ips: ["192.168.1.60", "192.168.1.61"] });
    expect([...config.masters, ...config.workers].map((n) => n.ip)).toEqual(["192.168.1.50", "192.168.1.60", "192.168.1.61"]);
  });

  it("accepts K3s built from a commit (air-gapped builds name it v1.x.y+k3s-<commit>, K3s adds -dirty for a modified tree)", () => {
    expect(build({ k3s_version: "v1.34.0+k3s-857412ae" }).k3s.version).toBe("v1.34.0+k3s-857412ae");
    expect(build({ k3s_version: "v1.34.1+k3s-857412ae-dirty" }).k3s.version).toBe("v1.34.1+k3s-857412ae-dirty");
  });

  it("defaults to the K3s release pinned in versions.env, a real release tag", () => {
    const config = buildConfig(vars({ k3s_version: null }), { baseDir: dir });
    expect(config.k3s.version).toMatch(/^v1\.\d+\.\d+\+k3s\d+$/);
    expect(config.k3s.version).toBe(readVersions().K3S_VERSION);
  });

  it("expands ~ in key paths and takes the k3s version from versions.env when null", () => {
    const config = buildConfig(vars({ ssh_public_key_file: "~/id_ed25519.pub", k3s_version: null }), {
      homeDir: dir,
      defaultK3sVersion: "v1.32.1+k3s2",
    });
    expect(config.access.sshPrivateKeyFile).toBe(path.join(dir, "id_ed25519"));
    expect(config.k3s.version).toBe("v1.32.1+k3s2");
  });
});

describe("apps and backups", () => {
  it("default to the design document's NodePorts, every app enabled, snapshots every 6 hours keeping 10, no S3", () => {
    const config = build();
    expect(config.apps.traefik).toMatchObject({ enabled: true, httpNodePort: 30080, httpsNodePort: 30443, dashboardNodePort: 30880 });
    expect(config.apps.dashboard).toMatchObject({ enabled: true, nodePort: 30090 });
    expect(config.apps.whoami).toMatchObject({ enabled: true, nodePort: 30081, replicas: 2 });
    expect(config.apps.uptimeKuma).toMatchObject({ enabled: true, nodePort: 30082, storageGiB: 1 });
    expect(config.backups).toEqual({ schedule: "0 */6 * * *", retention: 10, s3: undefined });
  });

  it("accept digests, registries with ports, cron shorthands, no schedule, and an S3 target", () => {
    const config = build({
      whoami_image: "registry.lan:5000/traefik/whoami@sha256:" + "a".repeat(64),
      etcd_snapshot_schedule: "@daily",
      etcd_s3_endpoint: "minio.lan:9000",
      etcd_s3_folder: "lab",
    });
    expect(config.apps.whoami.image).toContain("@sha256:");
    expect(config.backups.s3).toEqual({ endpoint: "minio.lan:9000", bucket: "k3s-snapshots", folder: "lab", region: "us-east-1", insecure: false });
    expect(build({ etcd_snapshot_schedule: "" }).backups.schedule).toBe("");
    expect(build({ etcd_snapshot_schedule: "15 2,14 * * 1-5" }).backups.schedule).toBe("15 2,14 * * 1-5");
  });
});

describe("bad input: one message per problem, naming the key, the value and the fix", () => {
  const cases: [string, Record<string, unknown>, RegExp][] = [
    ["a typo'd key", { worker_cuont: 3 }, /^worker_cuont: unknown key\. Did you mean worker_count\?/],
    ["an unknown key with no near match", { colour: "blue" }, /^colour: unknown key\. The README/],
    ["a missing required key", { template_vm_id: undefined }, /^template_vm_id: required, but not set/],
    ["a string where a number belongs", { worker_count: "3" }, /^worker_count = "3": must be a number\.$/],
    ["a number where a bool belongs", { proxmox_insecure: 1 }, /^proxmox_insecure = 1: must be a bool\.$/],
    ["a negative worker count", { worker_count: -1 }, /^worker_count = -1: must be a whole number from 0 to 100/],
    ["an absurd worker count", { worker_count: 5000 }, /^worker_count = 5000: must be a whole number from 0 to 100/],
    ["a fractional count", { worker_count: 2.5 }, /^worker_count = 2\.5: must be a whole number/],
    ["an even master count", { master_count: 2 }, /^master_count = 2: must be 1, 3, 5 or 7/],
    ["zero cores", { worker_cores: 0 }, /^worker_cores = 0: must be a whole number from 1 to 128/],
    ["too little memory", { master_memory_mib: 512 }, /^master_memory_mib = 512: .*at least 1024 MiB/],
    ["a tiny disk", { worker_disk_gib: 2 }, /^worker_disk_gib = 2: .*at least 8 GiB/],
    ["a template id below 100", { template_vm_id: 7 }, /^template_vm_id = 7: must be a whole number from 100/],
    ["an unknown security profile", { security_profile: "paranoid" }, /^security_profile = "paranoid": must be "homelab" \(K3s's defaults\) or "hardened"/],
    ["no admin network at all", { admin_cidrs: [] }, /^admin_cidrs = \[\]: no one could reach SSH or the API through the firewall/],
    ["an admin network with host bits", { admin_cidrs: ["192.168.1.5/24"] }, /^admin_cidrs: "192\.168\.1\.5\/24" is not an IPv4 network in CIDR form with no host bits set/],
    ["a certificate without its key", { tls_certificate_file: "id_ed25519.pub" }, /^tls_certificate_file and tls_key_file go together: set both/],
    ["a certificate file that is not PEM", { tls_certificate_file: "id_ed25519.pub", tls_key_file: "missing.key" }, /^tls_certificate_file = "id_ed25519\.pub": .*id_ed25519\.pub is not a readable PEM file/],
    ["hardened apps without Traefik", { security_profile: "hardened", traefik_enabled: false }, /^traefik_enabled = false: under security_profile = "hardened" the apps are reached only through Traefik over HTTPS; enable Traefik, or disable the apps too \(dashboard_enabled, whoami_enabled, uptime_kuma_enabled\)/],
    ["a template no one declares", { template_image: null }, /^template_image = null: make apply clones template 9000, but nothing declares it\. Set template_image = "debian-12" .* or "prebuilt" if you made template 9000 yourself/],
    ["an unknown template image", { template_image: "debian-13" }, /^template_image = "debian-13": not one of "debian-12", "ubuntu-24\.04", "custom", "prebuilt"\. Did you mean "debian-12"\?/],
    ["a custom image without a URL", { template_image: "custom", template_image_checksum: `sha256:${"a".repeat(64)}` }, /^template_image = "custom" needs template_image_url/],
    ["an image URL without a checksum", { template_image: "custom", template_image_url: "https://mirror.lan/debian.qcow2" }, /^template_image = "custom" needs template_image_checksum: an image is only downloaded with the checksum its publisher gives/],
    ["an image that Proxmox cannot import", { template_image: "custom", template_image_url: "https://mirror.lan/debian.iso", template_image_checksum: `sha256:${"a".repeat(64)}` }, /^template_image_url = "https:\/\/mirror\.lan\/debian\.iso": must be an http\(s\) URL of an image file ending in \.qcow2, \.raw, \.vmdk or \.img/],
    ["a checksum without its algorithm", { template_image: "custom", template_image_url: "https://mirror.lan/d.qcow2", template_image_checksum: "a".repeat(64) }, /^template_image_checksum = "a{64}": must be <algorithm>:<hex>/],
    ["a checksum of the wrong length", { template_image: "custom", template_image_url: "https://mirror.lan/d.qcow2", template_image_checksum: `sha512:${"a".repeat(64)}` }, /^template_image_checksum = "sha512:a{64}": a sha512 checksum has 128 hex digits, this one 64/],
    ["a checksum algorithm Proxmox does not verify", { template_image: "custom", template_image_url: "https://mirror.lan/d.qcow2", template_image_checksum: `crc32:${"a".repeat(8)}` }, /^template_image_checksum = "crc32:a{8}": the algorithm "crc32" is not one Proxmox verifies/],
    ["an image URL beside a preset", { template_image_url: "https://mirror.lan/d.qcow2" }, /^template_image_url is set, but template_image = "debian-12": it is only read with template_image = "custom"/],
    ["a checksum beside a prebuilt template", { template_image: "prebuilt", template_image_checksum: `sha256:${"a".repeat(64)}` }, /^template_image_checksum is set, but template_image = "prebuilt": nothing builds the template/],
    ["a template id a node gets", { vm_id_base: 9000 }, /^template_vm_id = 9000 is also the id of a node \(vm_id_base = 9000: masters 9000…, workers 9010…\)/],
    ["a template disk larger than the nodes'", { template_disk_gib: 40, worker_disk_gib: 32 }, /^template_disk_gib = 40 is larger than worker_disk_gib = 32: a clone's disk can only grow/],
    ["a template name that is no DNS label", { template_name: "k3s template" }, /^template_name = "k3s template": must be a DNS label/],
    ["an endpoint that is no URL", { proxmox_endpoint: "pve.lan:8006" }, /^proxmox_endpoint = "pve\.lan:8006": must be an http\(s\) URL/],
    ["a malformed node CIDR", { node_cidr: "192.168.1.0/33" }, /^node_cidr = "192\.168\.1\.0\/33": not an IPv4 network/],
    ["a CIDR with host bits", { pod_cidr: "10.42.0.1/16" }, /^pod_cidr = "10\.42\.0\.1\/16": not an IPv4 network .* no host bits/],
    ["a malformed gateway", { gateway: "192.168.1" }, /^gateway = "192\.168\.1": not an IPv4 address/],
    ["a gateway outside the network", { gateway: "10.0.0.1" }, /^gateway = "10\.0\.0\.1": not a host address of node_cidr "192\.168\.1\.0\/24"/],
    ["a gateway on the broadcast address", { gateway: "192.168.1.255" }, /^gateway = "192\.168\.1\.255": not a host address/],
    ["a malformed DNS server", { dns_servers: ["1.1.1"] }, /^dns_servers: "1\.1\.1" is not an IPv4 address/],
    ["no DNS server", { dns_servers: [] }, /^dns_servers = \[\]: give at least one/],
    ["a malformed first_ip", { first_ip: "192.168.1.300" }, /^first_ip = "192\.168\.1\.300": not an IPv4 address/],
    ["a node outside the network", { first_ip: "192.168.2.10" }, /^first_ip: k3s-master-1 would get 192\.168\.2\.10, which is not a host address of node_cidr/],
    ["workers running past the broadcast address", { first_ip: "192.168.1.240", worker_count: 6 }, /^first_ip: k3s-worker-6 would get 192\.168\.1\.255, which is not a host address/],
    ["a node on the network address", { master_ips: ["192.168.1.0"] }, /^master_ips: k3s-master-1 would get 192\.168\.1\.0, which is not a host address/],
    ["a node on the gateway", { first_ip: "192.168.1.1" }, /^first_ip: k3s-master-1 would get 192\.168\.1\.1, already taken by the gateway/],
    ["two nodes on one address", { master_ips: ["192.168.1.20"] }, /^first_ip: k3s-worker-1 would get 192\.168\.1\.20, already taken by k3s-master-1/],
    ["an address list of the wrong length", { worker_ips: ["192.168.1.60"] }, /^worker_ips has 1 address\(es\) but worker_count = 2/],
    ["more nodes than addresses", { node_cidr: "192.168.1.0/29", first_ip: "192.168.1.2", worker_count: 6 }, /^node_cidr = "192\.168\.1\.0\/29" has 6 host addresses, too few/],
    ["pods overlapping services", { service_cidr: "10.42.128.0/17" }, /^pod_cidr = "10\.42\.0\.0\/16" overlaps service_cidr = "10\.42\.128\.0\/17"/],
    ["nodes overlapping pods", { node_cidr: "10.0.0.0/8", gateway: "10.0.0.1", first_ip: "10.0.0.10" }, /^node_cidr = "10\.0\.0\.0\/8" overlaps pod_cidr/],
    ["a missing SSH key file", { ssh_public_key_file: "nope.pub" }, /^ssh_public_key_file = "nope\.pub": cannot read .*nope\.pub \(ENOENT\); create a key/],
    ["a private key given as the public one", { ssh_public_key_file: "id_ed25519" }, /^ssh_public_key_file = "id_ed25519": .* does not hold one OpenSSH public key/],
    ["a malformed K3s version", { k3s_version: "1.33" }, /^k3s_version = "1\.33": must be a K3s release tag/],
    ["a K3s version without the k3s suffix", { k3s_version: "v1.33.5" }, /^k3s_version = "v1\.33\.5": must be a K3s release tag/],
    ["an unknown timezone", { timezone: "Mars/Olympus" }, /^timezone = "Mars\/Olympus": not an IANA timezone/],
    ["a bad cluster name", { cluster_name: "My Cluster" }, /^cluster_name = "My Cluster": must be lower-case/],
    ["a NodePort outside 30000-32767", { whoami_node_port: 8080 }, /^whoami_node_port = 8080: must be a whole number from 30000 to 32767; Kubernetes gives NodePorts/],
    ["two apps on one NodePort", { uptime_kuma_node_port: 30081 }, /^uptime_kuma_node_port = 30081: already used by whoami_node_port/],
    ["an image without a tag", { whoami_image: "traefik/whoami" }, /^whoami_image = "traefik\/whoami": must name an image with a pinned tag or digest/],
    ["an image tagged latest", { traefik_image: "traefik:latest" }, /^traefik_image = "traefik:latest": must name an image with a pinned tag/],
    ["a malformed image reference", { dashboard_image: "Headlamp: v1" }, /^dashboard_image = "Headlamp: v1": must name an image/],
    ["absurd replicas", { whoami_replicas: 0 }, /^whoami_replicas = 0: must be a whole number from 1 to 10/],
    ["a snapshot schedule that is no cron expression", { etcd_snapshot_schedule: "every 6 hours" }, /^etcd_snapshot_schedule = "every 6 hours": must be a cron expression of five fields/],
    ["a snapshot retention of 0", { etcd_snapshot_retention: 0 }, /^etcd_snapshot_retention = 0: must be a whole number from 1 to 1000/],
    ["an S3 endpoint with a scheme", { etcd_s3_endpoint: "https://minio.lan:9000" }, /^etcd_s3_endpoint = "https:\/\/minio\.lan:9000": must be a host name or address with an optional port/],
    ["a bad bucket name", { etcd_s3_bucket: "My_Bucket" }, /^etcd_s3_bucket = "My_Bucket": must be an S3 bucket name/],
    ["three masters without a VIP", { master_count: 3 }, /^api_vip is not set, but master_count = 3: with several masters the API needs a virtual IP/],
    ["a malformed VIP", { api_vip: "192.168.1" }, /^api_vip = "192\.168\.1": not an IPv4 address; give a free address of node_cidr "192\.168\.1\.0\/24"/],
    ["a VIP outside the network", { api_vip: "10.1.1.1" }, /^api_vip = "10\.1\.1\.1": not a host address of node_cidr "192\.168\.1\.0\/24"/],
    ["a VIP on the broadcast address", { api_vip: "192.168.1.255" }, /^api_vip = "192\.168\.1\.255": not a host address/],
    ["a VIP on the gateway", { api_vip: "192.168.1.1" }, /^api_vip = "192\.168\.1\.1": already taken by the gateway/],
    ["a VIP a node gets", { master_count: 3, api_vip: "192.168.1.11" }, /^first_ip: k3s-master-2 would get 192\.168\.1\.11, already taken by api_vip/],
  ];

  it.each(cases)("rejects %s", (_, overrides, expected) => {
    const found = problems(overrides);
    expect(found.some((p) => expected.test(p)), `problems were:\n${found.join("\n")}`).toBe(true);
  });

  it("builds a template from a custom image, a .img saved as .qcow2, or none for a prebuilt one", () => {
    const checksum = `sha256:${"AB".repeat(32)}`;
    const custom = build({ template_image: "custom", template_image_url: "http://mirror.lan/images/noble-server-cloudimg-amd64.img", template_image_checksum: checksum });
    expect(custom.template.image).toEqual({
      name: "custom",
      url: "http://mirror.lan/images/noble-server-cloudimg-amd64.img",
      fileName: "noble-server-cloudimg-amd64.qcow2",
      checksumAlgorithm: "sha256",
      checksum: "ab".repeat(32),
      diskGiB: 8,
    });
    expect(build({ template_image: "ubuntu-24.04" }).template.image).toMatchObject({ fileName: "ubuntu-24.04-server-cloudimg-amd64.qcow2", checksumAlgorithm: "sha256", diskGiB: 4 });
    expect(build({ template_image: "prebuilt" }).template.image).toBeUndefined();
  });

  it("lets a disabled app keep a NodePort another app uses", () => {
    expect(build({ whoami_enabled: false, uptime_kuma_node_port: 30081 }).apps.uptimeKuma.nodePort).toBe(30081);
  });

  it("reports every problem at once", () => {
    expect(problems({ worker_count: -1, gateway: "x", timezone: "Nowhere" })).toHaveLength(3);
  });
});

describe("loadConfigFile", () => {
  it("parses HCL with the CDK's parser", async () => {
    const file = path.join(dir, "cluster.tfvars");
    fs.writeFileSync(
      file,
      [
        'proxmox_endpoint = "https://pve.lan:8006/"',
        "template_vm_id   = 9001",
        "worker_count     = 3 # one more",
        'dns_servers      = ["1.1.1.1", "9.9.9.9"]',
        'ssh_public_key_file = "id_ed25519.pub"',
        'k3s_version = "v1.33.5+k3s1"',
        "vm_id_base = null",
      ].join("\n"),
    );
    const config = await loadConfigFile(file);
    expect(config.workers).toHaveLength(3);
    expect(config.network.dnsServers).toEqual(["1.1.1.1", "9.9.9.9"]);
    expect(config.template.vmId).toBe(9001);
  });

  it("points at the example when terraform.tfvars is missing", async () => {
    await expect(loadConfigFile(path.join(dir, "terraform.tfvars"))).rejects.toThrow(/does not exist\. Copy terraform\.tfvars\.example/);
  });

  it("names the file and position of an HCL syntax error", async () => {
    const file = path.join(dir, "broken.tfvars");
    fs.writeFileSync(file, "worker_count = = 3\n");
    await expect(loadConfigFile(file)).rejects.toThrow(/not valid HCL: .*broken\.tfvars:1/);
  });
});
