/**
 * The Jinja templates rendered by the real Ansible (the pinned venv of scripts/setup-python.sh) with sample
 * values, and the results parsed back: the K3s server and agent configurations, the kubeconfig, the
 * sysctl and modules-load files; and the k3s_binary role's checksum lookups (vars/main.yml) evaluated on
 * sample air-gap folders, and its download URLs. Skipped, saying so, when the venv has not been made (make setup).
 */
import { execFileSync } from "node:child_process";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { parse, stringify } from "yaml";
import { k3sBinary } from "../../../constructs/ansible/roles/k3s_binary";
import { k3sMaster } from "../../../constructs/ansible/roles/k3s_master";
import { k3sWorker } from "../../../constructs/ansible/roles/k3s_worker";
import { groupVarsValues } from "../../../constructs/ansible/group-vars";
import { varsFile } from "../../../constructs/ansible/render";
import { readVersions } from "../../../constructs/config/versions";
import { REPO, tempDir, testConfig, VENV_BIN } from "../../helpers";

/** What a configuration without k3s_version gives the nodes: group_vars' version and the role's default release URL. */
const DEFAULT_RELEASE = {
  k3s_binary_version: groupVarsValues(testConfig({ k3s_version: null })).k3s_binary_version,
  k3s_binary_release_url: k3sBinary.variables.find((v) => v.name === "k3s_binary_release_url")!.default,
};

const ROLES = path.join(REPO, "constructs/ansible/roles");
/** The hardened profile's variables at the roles' defaults (switched off). */
const HARDENED_DEFAULTS = Object.fromEntries([...k3sMaster.variables, ...k3sWorker.variables].filter((v) => v.name.includes("_hardened")).map((v) => [v.name, v.default]));
/** The firewall's values for a cluster of two servers and one agent, administered from one network and one address. */
const FIREWALL = {
  k3s_firewall_table: "k3s_proxmox",
  k3s_firewall_admin_cidrs: ["192.168.1.0/24", "10.8.0.7/32"],
  k3s_firewall_node_addresses: ["192.168.1.10", "192.168.1.11", "192.168.1.20"],
  k3s_firewall_server_addresses: ["192.168.1.10", "192.168.1.11"],
  k3s_firewall_node_port_range: "30000-32767",
};
/** nft checks a ruleset (-c) only with CAP_NET_ADMIN: as root, where the nftables package is installed. */
const NFT = ["/usr/sbin/nft", "/sbin/nft"].find((p) => fs.existsSync(p));
const canCheckNft = NFT !== undefined && process.getuid?.() === 0;
if (!canCheckNft) console.warn("templates.test.ts: the firewall rulesets are not checked with nft -c (it needs root and the nftables package)");
const PLAYBOOK_BIN = path.join(VENV_BIN, "ansible-playbook");
const haveAnsible = fs.existsSync(PLAYBOOK_BIN);
if (!haveAnsible) console.warn(`templates.test.ts: skipped, no ${PLAYBOOK_BIN} (run make setup or scripts/setup-python.sh)`);

const TOKEN = "K10abcdef0123456789::server:s3cr3t-join-token";
const b64 = (text: string) => Buffer.from(text).toString("base64");
const ADMIN_KUBECONFIG = stringify({
  apiVersion: "v1",
  clusters: [{ cluster: { "certificate-authority-data": "Q0EtREFUQQ==", server: "https://127.0.0.1:6443" }, name: "default" }],
  contexts: [{ context: { cluster: "default", user: "default" }, name: "default" }],
  "current-context": "default",
  kind: "Config",
  preferences: {},
  users: [{ name: "default", user: { "client-certificate-data": "Q0VSVA==", "client-key-data": "S0VZ" } }],
});

const scratch = tempDir("k3spve-templates-");
let out: string;
let expected: { sha: (text: string) => string; built: string; bare: string };
const rendered = (name: string) => fs.readFileSync(path.join(out, name), "utf8");

beforeAll(() => {
  if (!haveAnsible) return;
  out = scratch();
  const template = (src: string, dest: string, vars: Record<string, unknown> = {}) => ({
    name: `Render ${dest}`,
    "ansible.builtin.template": { src: path.join(ROLES, src), dest: path.join(out, dest), mode: "0600" },
    vars,
  });
  const playbook: object[] = [
    {
      name: "Render the role templates with sample values",
      hosts: "localhost",
      connection: "local",
      gather_facts: false,
      vars: {
        k3s_binary_install_path: "/usr/local/bin/k3s",
        k3s_master_first: "localhost",
        k3s_master_node_name: "k3s-master-1",
        k3s_master_node_ip: "192.168.1.10",
        k3s_master_iface: "ens18",
        k3s_master_cluster_cidr: "10.42.0.0/16",
        k3s_master_service_cidr: "10.43.0.0/16",
        k3s_master_api_address: "192.168.1.10",
        k3s_master_tls_san: ["k3s.lan", "192.168.1.10"],
        k3s_master_disable: ["traefik", "servicelb"],
        k3s_master_kubelet_args: [],
        k3s_master_snapshot_schedule: "0 */6 * * *",
        k3s_master_snapshot_retention: 10,
        k3s_master_etcd_s3: {},
        k3s_master_extra_config: {},
        k3s_master_cluster_name: "homelab",
        k3s_master_admin_kubeconfig: { content: b64(ADMIN_KUBECONFIG) },
        k3s_worker_server_url: "https://192.168.1.10:6443",
        k3s_worker_join_token: { content: b64(`${TOKEN}\n`) },
        k3s_worker_node_name: "k3s-worker-1",
        k3s_worker_node_ip: "192.168.1.20",
        k3s_worker_iface: "ens18",
        k3s_worker_kubelet_args: ["max-pods=150"],
        k3s_worker_extra_config: { "node-label": ["tier=apps"] },
        k3s_prereqs_kernel_modules: ["br_netfilter", "overlay"],
        k3s_prereqs_sysctl: { "net.ipv4.ip_forward": 1, "net.bridge.bridge-nf-call-iptables": 1, "net.bridge.bridge-nf-call-ip6tables": 1 },
        ...HARDENED_DEFAULTS,
      },
      tasks: [
        template("k3s_master/templates/config.yaml.j2", "server-first.yaml"),
        template("k3s_master/templates/config.yaml.j2", "server-join.yaml", {
          k3s_master_first: "k3s-master-1",
          k3s_master_node_name: "k3s-master-2",
          k3s_master_node_ip: "192.168.1.11",
          k3s_master_join_token: { content: b64(`${TOKEN}\n`) },
          k3s_master_kubelet_args: ["max-pods=150"],
          k3s_master_snapshot_schedule: "",
          k3s_master_extra_config: { "etcd-snapshot-retention": 10, disable: ["traefik"] },
        }),
        template("k3s_master/templates/config.yaml.j2", "server-s3.yaml", {
          k3s_master_etcd_s3: { endpoint: "minio.lan:9000", bucket: "snaps", folder: "lab", region: "eu-central-1", insecure: true },
        }),
        template("k3s_master/templates/config.yaml.j2", "server-hardened.yaml", { k3s_master_hardened: true, k3s_master_kubelet_args: ["max-pods=150"] }),
        template("k3s_worker/templates/config.yaml.j2", "agent-hardened.yaml", { k3s_worker_hardened: true }),
        template("k3s_master/templates/kubeconfig.j2", "kubeconfig"),
        template("k3s_master/templates/k3s.service.j2", "k3s.service"),
        template("k3s_worker/templates/config.yaml.j2", "agent.yaml"),
        template("k3s_worker/templates/k3s-agent.service.j2", "k3s-agent.service"),
        template("k3s_prereqs/templates/sysctl.conf.j2", "sysctl.conf"),
        template("k3s_prereqs/templates/modules-load.conf.j2", "modules.conf"),
        template("k3s_vip/templates/keepalived.conf.j2", "keepalived.conf", {
          k3s_vip_address: "192.168.1.9",
          k3s_vip_prefix_length: 24,
          k3s_vip_router_id: 9,
          k3s_vip_iface: "ens18",
          k3s_vip_node_ip: "192.168.1.10",
          k3s_vip_peers: ["192.168.1.11", "192.168.1.12"],
          k3s_vip_advert_interval: 1,
          k3s_vip_check_interval: 1,
          k3s_vip_check_script: "/usr/local/libexec/k3s-proxmox/k3s-api-ready",
        }),
        template("k3s_vip/templates/k3s-api-ready.j2", "k3s-api-ready"),
        template("k3s_firewall/templates/firewall.nft.j2", "firewall-server.nft", { ...FIREWALL, k3s_firewall_server: true, k3s_firewall_vrrp: true }),
        template("k3s_firewall/templates/firewall.nft.j2", "firewall-agent.nft", { ...FIREWALL, k3s_firewall_server: false, k3s_firewall_vrrp: true }),
      ],
    },
  ];
  // Air-gap folders shaped like scripts/build-k3s.sh's output, and one with a bare <binary>.sha256.
  const sha = (text: string) => crypto.createHash("sha256").update(text).digest("hex");
  const built = path.join(out, "built");
  fs.mkdirSync(path.join(built, "images"), { recursive: true });
  fs.writeFileSync(path.join(built, "k3s"), "binary bytes");
  fs.writeFileSync(path.join(built, "images/pause.tar"), "pause image bytes");
  fs.writeFileSync(path.join(built, "images/echo.tar"), "echo image bytes");
  fs.writeFileSync(path.join(built, "images/notes.txt"), "not an image");
  fs.writeFileSync(
    path.join(built, "sha256sum"),
    `${sha("binary bytes")}  k3s\n${sha("pause image bytes")}  images/pause.tar\n${sha("echo image bytes").toUpperCase()} *images/echo.tar\n`,
  );
  const bare = path.join(out, "bare");
  fs.mkdirSync(bare);
  fs.writeFileSync(path.join(bare, "k3s-v1"), "other bytes");
  fs.writeFileSync(path.join(bare, "k3s-v1.sha256"), `${sha("other bytes")}\n`);
  fs.writeFileSync(path.join(out, "k3s_binary_vars.yml"), varsFile(k3sBinary));
  const lookups = (dest: string, vars: Record<string, unknown>) => ({
    name: `Evaluate the air-gap lookups into ${dest}`,
    "ansible.builtin.copy": {
      content:
        "{{ {'sha256': k3s_binary_airgap_sha256, 'sum_file': k3s_binary_airgap_sum_file, 'images': k3s_binary_airgap_images | map('basename') | list, 'image_sums': k3s_binary_airgap_image_sums} | to_json }}",
      dest: path.join(out, dest),
      mode: "0600",
    },
    vars: { k3s_binary_airgap_checksum: "", k3s_binary_airgap_images_dir: "", ...vars },
  });
  expected = { sha, built, bare };
  playbook.push({
    name: "Evaluate the k3s_binary role's air-gap lookups",
    hosts: "localhost",
    connection: "local",
    gather_facts: false,
    vars_files: [path.join(out, "k3s_binary_vars.yml")],
    tasks: [
      lookups("built.json", { k3s_binary_airgap_path: path.join(built, "k3s"), k3s_binary_airgap_images_dir: path.join(built, "images") }),
      lookups("bare.json", { k3s_binary_airgap_path: path.join(bare, "k3s-v1") }),
      lookups("pinned.json", { k3s_binary_airgap_path: path.join(bare, "k3s-v1"), k3s_binary_airgap_checksum: "sha256:ABCDEF" }),
      lookups("missing.json", { k3s_binary_airgap_path: path.join(out, "nowhere/k3s") }),
      {
        name: "Evaluate the download URL of a configuration without k3s_version",
        "ansible.builtin.copy": {
          content: "{{ {'binary': k3s_binary_download_url, 'checksum': k3s_binary_download_checksum} | to_json }}",
          dest: path.join(out, "default-download.json"),
          mode: "0600",
        },
        vars: { ...DEFAULT_RELEASE, k3s_binary_url: "", k3s_binary_checksum: "", k3s_binary_release: { arch: "amd64", suffix: "" } },
      },
      {
        name: "Evaluate the download URLs and the staged path",
        "ansible.builtin.copy": {
          content:
            "{{ {'binary': k3s_binary_download_url, 'checksum': k3s_binary_download_checksum, 'images': k3s_binary_release_images_url, 'images_checksum': k3s_binary_release_images_checksum, 'staged': k3s_binary_staged_path} | to_json }}",
          dest: path.join(out, "download.json"),
          mode: "0600",
        },
        vars: {
          k3s_binary_version: "v1.34.1+k3s-857412ae-dirty",
          k3s_binary_release_url: "http://mirror.lan:8089/k3s",
          k3s_binary_url: "",
          k3s_binary_checksum: "",
          k3s_binary_release_images_format: "tar.zst",
          k3s_binary_release: { arch: "arm64", suffix: "-arm64" },
        },
      },
    ],
  } as never);
  const file = path.join(out, "render.yml");
  fs.writeFileSync(file, stringify(playbook));
  try {
    execFileSync(PLAYBOOK_BIN, ["-i", "localhost,", file], {
      env: { ...process.env, K3S_ETCD_S3_ACCESS_KEY: "test-access-key", K3S_ETCD_S3_SECRET_KEY: "test-secret-key", ANSIBLE_NOCOLOR: "1", ANSIBLE_LOCALHOST_WARNING: "false", ANSIBLE_INVENTORY_UNPARSED_WARNING: "false", ANSIBLE_PYTHON_INTERPRETER: path.join(VENV_BIN, "python") },
      stdio: "pipe",
      timeout: 120_000,
    });
  } catch (error) {
    const e = error as { stdout?: Buffer; stderr?: Buffer };
    throw new Error(`ansible-playbook failed:\n${e.stdout?.toString() ?? ""}\n${e.stderr?.toString() ?? ""}`);
  }
}, 180_000);

describe.skipIf(!haveAnsible)("templates rendered by Ansible", () => {
  it("k3s_master config.yaml: the first server initializes etcd, with the design's settings", () => {
    const text = rendered("server-first.yaml");
    expect(text).toMatch(/^# Managed by Ansible \(role k3s_master\)/);
    expect(parse(text)).toEqual({
      "node-name": "k3s-master-1",
      "node-ip": "192.168.1.10",
      "flannel-iface": "ens18",
      "flannel-backend": "vxlan",
      "cluster-cidr": "10.42.0.0/16",
      "service-cidr": "10.43.0.0/16",
      "tls-san": ["192.168.1.10", "k3s.lan"],
      "write-kubeconfig-mode": "0644",
      disable: ["traefik", "servicelb"],
      "cluster-init": true,
      "etcd-snapshot-schedule-cron": "0 */6 * * *",
      "etcd-snapshot-retention": 10,
    });
    expect(text).toContain("write-kubeconfig-mode: '0644'");
  });

  it("k3s_master config.yaml: a further server joins with server URL and token; extra settings win", () => {
    const config = parse(rendered("server-join.yaml"));
    expect(config).toMatchObject({
      server: "https://192.168.1.10:6443",
      token: TOKEN,
      "node-ip": "192.168.1.11",
      "kubelet-arg": ["max-pods=150"],
      "etcd-snapshot-retention": 10,
      disable: ["traefik"],
    });
    expect(config["cluster-init"]).toBeUndefined();
    expect(config["etcd-disable-snapshots"]).toBe(true);
    expect(config["etcd-snapshot-schedule-cron"]).toBeUndefined();
  });

  it("k3s_master config.yaml: an S3 target with the keys from the environment", () => {
    expect(parse(rendered("server-s3.yaml"))).toMatchObject({
      "etcd-s3": true,
      "etcd-s3-endpoint": "minio.lan:9000",
      "etcd-s3-bucket": "snaps",
      "etcd-s3-folder": "lab",
      "etcd-s3-region": "eu-central-1",
      "etcd-s3-insecure": true,
      "etcd-s3-access-key": "test-access-key",
      "etcd-s3-secret-key": "test-secret-key",
    });
  });

  it("k3s_master config.yaml, hardened: the CIS guide's settings added, the kubelet's flags after the operator's", () => {
    const config = parse(rendered("server-hardened.yaml"));
    expect(config).toMatchObject({ "protect-kernel-defaults": true, "secrets-encryption": true, "cluster-init": true, "kube-controller-manager-arg": ["terminated-pod-gc-threshold=100"] });
    expect(config["kube-apiserver-arg"]).toEqual(
      expect.arrayContaining([
        "enable-admission-plugins=NodeRestriction,EventRateLimit",
        "admission-control-config-file=/etc/rancher/k3s/pod-security.yaml",
        "audit-policy-file=/etc/rancher/k3s/audit-policy.yaml",
        "audit-log-path=/var/lib/rancher/k3s/server/logs/audit.log",
      ]),
    );
    expect(config["kubelet-arg"]).toEqual(["max-pods=150", "streaming-connection-idle-timeout=5m", expect.stringMatching(/^tls-cipher-suites=TLS_ECDHE_/)]);
    expect(parse(rendered("server-first.yaml"))["secrets-encryption"]).toBeUndefined();
  });

  it("k3s_worker config.yaml, hardened: protect-kernel-defaults and the guide's kubelet flags", () => {
    expect(parse(rendered("agent-hardened.yaml"))).toMatchObject({
      "protect-kernel-defaults": true,
      "kubelet-arg": ["max-pods=150", "streaming-connection-idle-timeout=5m", expect.stringMatching(/^tls-cipher-suites=/)],
    });
    expect(parse(rendered("agent.yaml"))["protect-kernel-defaults"]).toBeUndefined();
  });

  it("k3s_worker config.yaml: server, token, node address and interface, extras merged", () => {
    expect(parse(rendered("agent.yaml"))).toEqual({
      server: "https://192.168.1.10:6443",
      token: TOKEN,
      "node-name": "k3s-worker-1",
      "node-ip": "192.168.1.20",
      "flannel-iface": "ens18",
      "kubelet-arg": ["max-pods=150"],
      "node-label": ["tier=apps"],
    });
  });

  it("kubeconfig: the API address instead of 127.0.0.1, everything named after the cluster", () => {
    const kubeconfig = parse(rendered("kubeconfig"));
    expect(kubeconfig).toEqual({
      apiVersion: "v1",
      kind: "Config",
      clusters: [{ name: "homelab", cluster: { server: "https://192.168.1.10:6443", "certificate-authority-data": "Q0EtREFUQQ==" } }],
      users: [{ name: "homelab", user: { "client-certificate-data": "Q0VSVA==", "client-key-data": "S0VZ" } }],
      contexts: [{ name: "homelab", context: { cluster: "homelab", user: "homelab" } }],
      "current-context": "homelab",
      preferences: {},
    });
  });

  it("systemd units: the binary and its mode only on the command line", () => {
    expect(rendered("k3s.service")).toMatch(/^ExecStart=\/usr\/local\/bin\/k3s server$/m);
    expect(rendered("k3s-agent.service")).toMatch(/^ExecStart=\/usr\/local\/bin\/k3s agent$/m);
    for (const unit of ["k3s.service", "k3s-agent.service"]) expect(rendered(unit)).not.toContain(TOKEN);
  });

  it("keepalived.conf: one VRRP instance on the node interface, unicast to the other servers, the VIP tracked by the API check", () => {
    const text = rendered("keepalived.conf");
    expect(text).toMatch(/^# Managed by Ansible \(role k3s_vip\)/);
    const instance = /vrrp_instance k3s_api \{([\s\S]*)\n\}/.exec(text)![1];
    for (const line of ["state BACKUP", "nopreempt", "interface ens18", "virtual_router_id 9", "priority 100", "advert_int 1", "unicast_src_ip 192.168.1.10"]) {
      expect(instance).toMatch(new RegExp(`^\\s+${line}$`, "m"));
    }
    expect(/unicast_peer \{\s*([^}]*)\}/.exec(instance)![1].split(/\s+/).filter(Boolean)).toEqual(["192.168.1.11", "192.168.1.12"]);
    expect(instance).toMatch(/virtual_ipaddress \{\s*192\.168\.1\.9\/24 dev ens18\s*\}/);
    expect(instance).toMatch(/track_script \{\s*k3s_api_ready\s*\}/);
    expect(text).toMatch(/vrrp_script k3s_api_ready \{\s*script "\/usr\/local\/libexec\/k3s-proxmox\/k3s-api-ready"\s*interval 1\s*timeout 3\s*fall 2\s*rise 2\s*\}/);
    // Braces balance: keepalived reads blocks by them.
    expect(text.split("{").length).toBe(text.split("}").length);
  });

  it("the VIP's check script asks the local API's /readyz with the server's admin client certificate", () => {
    const text = rendered("k3s-api-ready");
    expect(text.startsWith("#!/bin/sh\n")).toBe(true);
    expect(text).toMatch(/exec curl -sf --max-time 2 .*--cert "\$tls\/client-admin\.crt" --key "\$tls\/client-admin\.key"/);
    expect(text).toContain("https://127.0.0.1:6443/readyz");
    execFileSync("sh", ["-n", path.join(out, "k3s-api-ready")]); // parses as a shell script
  });

  it("firewall.nft: a server lets in SSH and the API from the admins, the API, kubelet and VXLAN from the nodes, etcd and VRRP from the servers", () => {
    const rules = (name: string) => rendered(name).split("\n").map((l) => l.trim()).filter((l) => /^(tcp|udp|ip|iif|iifname|meta|ct|fib) /.test(l)).map((l) => l.replace(/ comment .*$/, ""));
    expect(rendered("firewall-server.nft")).toMatch(/set admin \{\s*type ipv4_addr; flags interval\s*elements = \{ 192\.168\.1\.0\/24, 10\.8\.0\.7\/32 \}/);
    expect(rendered("firewall-server.nft")).toMatch(/set servers \{\s*type ipv4_addr\s*elements = \{ 192\.168\.1\.10, 192\.168\.1\.11 \}/);
    const input = [
      "ct state established,related accept",
      "ct state invalid drop",
      'iif "lo" accept',
      'iifname { "cni0", "flannel.1" } accept',
      "meta l4proto { 1, 58 } accept",
      "udp sport 67 udp dport 68 accept",
      "tcp dport 22 ip saddr @admin accept",
    ];
    const nodes = ["tcp dport 10250 ip saddr @nodes accept", "udp dport 8472 ip saddr @nodes accept"];
    const nodePorts = ["fib daddr type local meta l4proto { tcp, udp } th dport 30000-32767 jump node_port", 'iifname { "lo", "cni0", "flannel.1" } accept', "ip saddr @admin accept"];
    expect(rules("firewall-server.nft")).toEqual([
      ...input,
      "tcp dport 6443 ip saddr @admin accept",
      "tcp dport 6443 ip saddr @nodes accept",
      "tcp dport 2379-2380 ip saddr @servers accept",
      "ip protocol 112 ip saddr @servers accept",
      ...nodes,
      ...nodePorts,
    ]);
    // An agent serves no API and no etcd: not even the admins reach 6443 there.
    expect(rules("firewall-agent.nft")).toEqual([...input, ...nodes, ...nodePorts]);
    for (const name of ["firewall-server.nft", "firewall-agent.nft"]) {
      expect(rendered(name)).toMatch(/chain input \{\s*type filter hook input priority filter; policy drop;/);
      // It replaces only its own table: declared (so the delete cannot fail on the first load), deleted, declared whole.
      expect(rendered(name)).toMatch(/^table inet k3s_proxmox\ndelete table inet k3s_proxmox\ntable inet k3s_proxmox \{/m);
    }
  });

  it.skipIf(!canCheckNft)("firewall.nft: nft accepts both rulesets (nft -c, nothing loaded)", () => {
    for (const name of ["firewall-server.nft", "firewall-agent.nft"]) {
      expect(() => execFileSync(NFT!, ["-c", "-f", path.join(out, name)], { encoding: "utf8", stdio: "pipe" }), name).not.toThrow();
    }
  });

  it("sysctl and modules-load files list every setting and module", () => {
    expect(rendered("sysctl.conf").split("\n").filter((l) => l && !l.startsWith("#"))).toEqual([
      "net.bridge.bridge-nf-call-ip6tables = 1",
      "net.bridge.bridge-nf-call-iptables = 1",
      "net.ipv4.ip_forward = 1",
    ]);
    expect(rendered("modules.conf").split("\n").filter((l) => l && !l.startsWith("#"))).toEqual(["br_netfilter", "overlay"]);
  });
});

describe.skipIf(!haveAnsible)("k3s_binary air-gap checksums evaluated by Ansible", () => {
  const result = (name: string) => JSON.parse(rendered(name));

  it("reads the binary's line from a sha256sum file beside it (scripts/build-k3s.sh's layout), and the images' lines", () => {
    expect(result("built.json")).toEqual({
      sha256: expected.sha("binary bytes"),
      sum_file: path.join(expected.built, "sha256sum"),
      images: ["echo.tar", "pause.tar"],
      image_sums: { k3s: expected.sha("binary bytes"), "pause.tar": expected.sha("pause image bytes"), "echo.tar": expected.sha("echo image bytes").toUpperCase() },
    });
  });

  it("reads a bare hex from <binary>.sha256", () => {
    expect(result("bare.json")).toMatchObject({ sha256: expected.sha("other bytes"), sum_file: path.join(expected.bare, "k3s-v1.sha256"), images: [], image_sums: {} });
  });

  it("prefers k3s_binary_airgap_checksum, without its sha256: prefix, lower-cased", () => {
    expect(result("pinned.json").sha256).toBe("abcdef");
  });

  it("without k3s_version, downloads a real K3s release (versions.env's K3S_VERSION) from K3s's releases, checked by its sha256sum file", () => {
    const release = readVersions().K3S_VERSION;
    expect(release).toMatch(/^v1\.\d+\.\d+\+k3s\d+$/); // a release tag, not a build of a commit
    const base = `https://github.com/k3s-io/k3s/releases/download/${release.replace("+", "%2B")}`;
    expect(result("default-download.json")).toEqual({ binary: `${base}/k3s`, checksum: `sha256:${base}/sha256sum-amd64.txt` });
  });

  it("downloads the binary and the images from <release URL>/<version, + as %2B>/, checked against the release's sha256sum-<arch>.txt", () => {
    const release = "http://mirror.lan:8089/k3s/v1.34.1%2Bk3s-857412ae-dirty";
    expect(result("download.json")).toEqual({
      binary: `${release}/k3s-arm64`,
      checksum: `sha256:${release}/sha256sum-arm64.txt`,
      images: `${release}/k3s-airgap-images-arm64.tar.zst`,
      images_checksum: `sha256:${release}/sha256sum-arm64.txt`,
      staged: "/var/lib/k3s-proxmox/k3s-v1.34.1+k3s-857412ae-dirty",
    });
  });

  it("gives an empty checksum when there is no checksum file (the role then fails with its message)", () => {
    expect(result("missing.json")).toMatchObject({ sha256: "", sum_file: "" });
  });
});
