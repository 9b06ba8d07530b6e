/**
 * The NoCloud seed of a VM's cloud-init drive, generated from its configuration the way qemu-server does
 * (src/PVE/QemuServer/Cloudinit.pm: cloudinit_userdata, nocloud_network, nocloud_gen_metadata, generate_nocloud).
 */
import * as crypto from "node:crypto";
import type { CloudInitSeed } from "../backend";
import { PropertyFormat, parsePropertyString } from "../schema/property-string";
import type { VmConfig } from "./state";

export interface DnsDefaults {
  /** The node's own resolv.conf servers, used when the VM sets no `nameserver` (get_dns_conf). */
  readonly nameservers: readonly string[];
  readonly searchdomains: readonly string[];
}

/** `10.0.0.5/24` -> [`10.0.0.5`, `255.255.255.0`] (split_ip4). */
function splitIp4(cidr: string): [string, string] {
  const [addr, prefix] = cidr.split("/");
  const bits = Number(prefix);
  const mask = bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
  return [addr, [24, 16, 8, 0].map((shift) => (mask >>> shift) & 255).join(".")];
}

export function userData(config: VmConfig, vmid: number): string {
  const name = String(config.name ?? `VM${vmid}`);
  const search = config.searchdomain !== undefined ? String(config.searchdomain) : undefined;
  const hostname = name.replace(/\..*$/, "");
  const fqdn = name.includes(".") ? name : search ? `${hostname}.${search}` : hostname;
  let content = `#cloud-config\nhostname: ${hostname}\nmanage_etc_hosts: true\nfqdn: ${fqdn}\n`;
  const user = config.ciuser !== undefined ? String(config.ciuser) : undefined;
  if (user !== undefined) content += `user: ${user}\n`;
  if (user === "root") content += "disable_root: False\n";
  if (config.cipassword !== undefined) content += `password: ${config.cipassword}\n`;
  if (config.sshkeys !== undefined) {
    const keys = decodeURIComponent(String(config.sshkeys))
      .split("\n")
      .map((k) => k.replace(/\r$/, ""))
      .filter((k) => /\S/.test(k));
    content += "ssh_authorized_keys:\n" + keys.map((k) => `  - ${k}\n`).join("");
  }
  content += "chpasswd:\n  expire: False\n";
  if (user !== "root") content += "users:\n  - default\n";
  if (config.ciupgrade === undefined || Number(config.ciupgrade) === 1) content += "package_upgrade: true\n";
  return content;
}

export function networkConfig(config: VmConfig, netFormat: PropertyFormat, ipconfigFormat: PropertyFormat, dns: DnsDefaults): string {
  let content = "version: 1\nconfig:\n";
  const ifaces = Object.keys(config).filter((k) => /^net\d+$/.test(k)).sort();
  for (const iface of ifaces) {
    const id = iface.slice(3);
    const ipconfig = config[`ipconfig${id}`];
    if (!ipconfig) continue;
    const netDev = parsePropertyString(netFormat, String(config[iface]));
    const ip = parsePropertyString(ipconfigFormat, String(ipconfig));
    const mac = (netDev.macaddr ?? "").toLowerCase();
    if (!mac) throw new Error(`network interface '${iface}' has no mac address`);
    let i = "    ";
    content += `${i}- type: physical\n${i}  name: eth${id}\n${i}  mac_address: '${mac}'\n${i}  subnets:\n`;
    i += "  ";
    if (ip.ip !== undefined) {
      if (ip.ip === "dhcp") content += `${i}- type: dhcp4\n`;
      else {
        const [addr, mask] = splitIp4(ip.ip);
        content += `${i}- type: static\n${i}  address: '${addr}'\n${i}  netmask: '${mask}'\n`;
        if (ip.gw !== undefined) content += `${i}  gateway: '${ip.gw}'\n`;
      }
    }
    if (ip.ip6 !== undefined) {
      if (ip.ip6 === "dhcp") content += `${i}- type: dhcp6\n`;
      else if (ip.ip6 === "auto") content += `${i}- type: ipv6_slaac\n`;
      else {
        content += `${i}- type: static6\n${i}  address: '${ip.ip6}'\n`;
        if (ip.gw6 !== undefined) content += `${i}  gateway: '${ip.gw6}'\n`;
      }
    }
  }
  const i = "    ";
  const search = config.searchdomain !== undefined ? String(config.searchdomain).split(/\s+/).filter(Boolean) : dns.searchdomains;
  const servers = config.nameserver !== undefined ? String(config.nameserver).split(/\s+/).filter(Boolean) : dns.nameservers;
  content += `${i}- type: nameserver\n`;
  if (servers.length > 0) content += `${i}  address:\n` + servers.map((s) => `${i}  - '${s}'\n`).join("");
  if (search.length > 0) content += `${i}  search:\n` + search.map((s) => `${i}  - '${s}'\n`).join("");
  return content;
}

export function nocloudSeed(config: VmConfig, vmid: number, netFormat: PropertyFormat, ipconfigFormat: PropertyFormat, dns: DnsDefaults): CloudInitSeed {
  const user = userData(config, vmid);
  const network = networkConfig(config, netFormat, ipconfigFormat, dns);
  const instanceId = crypto.createHash("sha1").update(user + network).digest("hex");
  return { "user-data": user, "network-config": network, "meta-data": `instance-id: ${instanceId}\n`, "vendor-data": "" };
}
