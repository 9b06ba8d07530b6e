/**
 * PVE's named formats: the rules behind `format: "pve-vmid"`, `"pve-qm-ipconfig"`, `"address-list"`, ... in the
 * schema files. The API schema only names them; the rules live in PVE's Perl sources, written down here:
 *   pve-common   src/PVE/JSONSchema.pm (pve_verify_*, parse_size, split_list in PVE/Tools.pm / PVE/ParseUtils.pm)
 *   qemu-server  src/PVE/QemuServer.pm, QemuServer/Network.pm, QemuServer/Drive.pm, QemuServer/CPUConfig.pm
 *   pve-storage  src/PVE/Storage/Plugin.pm (parse_volume_id, verify_content)
 *   pve-access-control  src/PVE/AccessControl.pm, src/PVE/Auth/Plugin.pm
 * The error texts are PVE's (`invalid format - <text>` in a 400 answer). Where 8.4 and 9.x differ, `version` decides.
 */
import * as net from "node:net";
import type { ParamSchema, PveVersion } from "./index";
import { PropertyFormat } from "./property-string";

/** A format check: undefined when the value is fine, else PVE's error text (without the trailing newline). */
export type FormatCheck = (value: string, version: PveVersion) => string | undefined;

const regex =
  (re: RegExp, error: (value: string) => string): FormatCheck =>
  (value) =>
    re.test(value) ? undefined : error(value);

const IPV4 = /^(?:(?:25[0-5]|(?:2[0-4]|1[0-9]|[1-9])?[0-9])\.){3}(?:25[0-5]|(?:2[0-4]|1[0-9]|[1-9])?[0-9])$/;
const isIpv4 = (v: string) => IPV4.test(v);
const isIpv6 = (v: string) => net.isIPv6(v);
const DNS_NAME = /^(([a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?)\.)*([a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?)$/;
const VOLUME_ID = /^([a-z][a-z0-9\-_.]*[a-z0-9]):(.+)$/i;

function cidr(value: string, v6: boolean): boolean {
  const [ip, prefix, ...rest] = value.split("/");
  if (rest.length > 0 || prefix === undefined || !/^\d+$/.test(prefix)) return false;
  const bits = Number(prefix);
  return v6 ? isIpv6(ip) && bits > 7 && bits <= 128 : isIpv4(ip) && bits > 7 && bits <= 32;
}

/** pve-common split_list: `,` and `;` are separators like white space (a NUL splits instead when present). */
export function splitList(value: string): string[] {
  if (value.includes("\0")) return value.split("\0").filter((v) => v !== "");
  return value.replace(/[,;]/g, " ").split(/\s+/).filter((v) => v !== "");
}

/** CPU models qemu-server 8.4 knows (CPUConfig.pm $cpu_vendor_list + builtin models); 9.x reads its list from
 * pve-qemu at run time, so the simulator uses the same list there. */
const CPU_MODELS = new Set(
  ("486 pentium pentium2 pentium3 coreduo core2duo Conroe Penryn Nehalem Nehalem-IBRS Westmere Westmere-IBRS SandyBridge " +
    "SandyBridge-IBRS IvyBridge IvyBridge-IBRS Haswell Haswell-IBRS Haswell-noTSX Haswell-noTSX-IBRS Broadwell Broadwell-IBRS " +
    "Broadwell-noTSX Broadwell-noTSX-IBRS Skylake-Client Skylake-Client-IBRS Skylake-Client-noTSX-IBRS Skylake-Client-v4 " +
    "Skylake-Server Skylake-Server-IBRS Skylake-Server-noTSX-IBRS Skylake-Server-v4 Skylake-Server-v5 Cascadelake-Server " +
    "Cascadelake-Server-v2 Cascadelake-Server-noTSX Cascadelake-Server-v4 Cascadelake-Server-v5 Cooperlake Cooperlake-v2 " +
    "KnightsMill Icelake-Client Icelake-Client-noTSX Icelake-Server Icelake-Server-noTSX Icelake-Server-v3 Icelake-Server-v4 " +
    "Icelake-Server-v5 Icelake-Server-v6 SapphireRapids SapphireRapids-v2 GraniteRapids athlon phenom Opteron_G1 Opteron_G2 " +
    "Opteron_G3 Opteron_G4 Opteron_G5 EPYC EPYC-IBPB EPYC-v3 EPYC-v4 EPYC-Rome EPYC-Rome-v2 EPYC-Rome-v3 EPYC-Rome-v4 EPYC-Milan " +
    "EPYC-Milan-v2 EPYC-Genoa host kvm32 kvm64 qemu32 qemu64 max x86-64-v2 x86-64-v2-AES x86-64-v3 x86-64-v4").split(" "),
);
/** VM-specific CPU flags (qemu-server CPUConfig.pm / CPUFlags.pm). */
const CPU_FLAGS: Record<PveVersion, readonly string[]> = {
  "8.4": ["pcid", "spec-ctrl", "ibpb", "ssbd", "virt-ssbd", "amd-ssbd", "amd-no-ssb", "pdpe1gb", "md-clear", "hv-tlbflush", "hv-evmcs", "aes"],
  "9.1": ["nested-virt", "md-clear", "pcid", "spec-ctrl", "ssbd", "ibpb", "virt-ssbd", "amd-ssbd", "amd-no-ssb", "pdpe1gb", "hv-tlbflush", "hv-evmcs", "aes"],
};

const S = (schema: ParamSchema): ParamSchema => schema;
const opt = (schema: ParamSchema): ParamSchema => ({ ...schema, optional: 1 });

/**
 * The named formats that are property strings. Their sub-schemas are not in the API viewer data (it shows only
 * the name), so they are written down from qemu-server (the `$..._fmt` hashes named beside each).
 */
export const PROPERTY_FORMATS: Readonly<Record<string, PropertyFormat>> = {
  // Network.pm / QemuServer.pm $ipconfig_fmt
  "pve-qm-ipconfig": {
    ip: opt({ type: "string", format: "pve-ipv4-config" }),
    gw: opt({ type: "string", format: "ipv4", requires: "ip" }),
    ip6: opt({ type: "string", format: "pve-ipv6-config" }),
    gw6: opt({ type: "string", format: "ipv6", requires: "ip6" }),
  },
  // CPUConfig.pm $cpu_fmt (validated further by validate_vm_cpu_conf, below)
  "pve-vm-cpu-conf": {
    cputype: opt({ type: "string", default_key: 1 }),
    flags: opt({ type: "string", pattern: "[+-][a-zA-Z0-9\\-_.]+(;[+-][a-zA-Z0-9\\-_.]+)*" }),
    hidden: opt({ type: "boolean" }),
    "hv-vendor-id": opt({ type: "string", pattern: "[a-zA-Z0-9]{1,12}" }),
    "phys-bits": opt({ type: "string", format: "pve-phys-bits" }),
    "reported-model": opt({ type: "string" }),
    "guest-phys-bits": opt({ type: "integer", minimum: 32, maximum: 64 }),
  },
  // QemuServer.pm $boot_fmt
  "pve-qm-boot": {
    legacy: opt({ type: "string", pattern: "[acdn]{1,4}", default_key: 1 }),
    order: opt({ type: "string", format: "pve-qm-bootdev-list" }),
  },
  // QemuServer.pm $watchdog_fmt
  "pve-qm-watchdog": {
    model: opt({ type: "string", enum: ["i6300esb", "ib700"], default_key: 1 }),
    action: opt({ type: "string", enum: ["reset", "shutdown", "poweroff", "pause", "debug", "none"] }),
  },
  // QemuServer.pm $smbios1_fmt
  "pve-qm-smbios1": {
    uuid: opt({ type: "string", pattern: "[a-fA-F0-9]{8}(?:-[a-fA-F0-9]{4}){3}-[a-fA-F0-9]{12}" }),
    ...Object.fromEntries(["version", "serial", "manufacturer", "product", "sku", "family"].map((k) => [k, opt({ type: "string", pattern: "[A-Za-z0-9+/]+={0,2}" })])),
    base64: opt({ type: "boolean" }),
  },
  // QemuServer.pm $cicustom_fmt
  "pve-qm-cicustom": Object.fromEntries(["meta", "network", "user", "vendor"].map((k) => [k, opt({ type: "string", format: "pve-volume-id" })])),
  // QemuServer/RNG.pm
  "pve-qm-rng": {
    source: S({ type: "string", enum: ["/dev/urandom", "/dev/random", "/dev/hwrng"], default_key: 1 }),
    max_bytes: opt({ type: "integer" }),
    period: opt({ type: "integer" }),
  },
  // QemuServer/PCI.pm $hostpci_fmt
  "pve-qm-hostpci": {
    host: opt({ type: "string", pattern: "(?:(?:[a-f0-9]{4,}:)?[a-f0-9]{2}:[a-f0-9]{2}(?:\\.[a-f0-9])?)(?:;(?:(?:[a-f0-9]{4,}:)?[a-f0-9]{2}:[a-f0-9]{2}(?:\\.[a-f0-9])?))*", default_key: 1 }),
    mapping: opt({ type: "string", format: "pve-configid" }),
    rombar: opt({ type: "boolean" }),
    romfile: opt({ type: "string" }),
    pcie: opt({ type: "boolean" }),
    "x-vga": opt({ type: "boolean" }),
    "legacy-igd": opt({ type: "boolean" }),
    mdev: opt({ type: "string", format: "pve-configid" }),
    ...Object.fromEntries(["vendor-id", "device-id", "sub-vendor-id", "sub-device-id"].map((k) => [k, opt({ type: "string", pattern: "^0x[0-9a-fA-F]{4}$" })])),
    driver: opt({ type: "string", enum: ["vfio", "keep"] }),
  },
  // CPUConfig.pm $sev_fmt
  "pve-qemu-sev-fmt": {
    type: S({ type: "string", enum: ["std", "es", "snp"], default_key: 1 }),
    "no-debug": opt({ type: "boolean" }),
    "no-key-sharing": opt({ type: "boolean" }),
    "allow-smt": opt({ type: "boolean" }),
    "kernel-hashes": opt({ type: "boolean" }),
  },
  // CPUConfig.pm $tdx_fmt (9.x)
  "pve-qemu-tdx-fmt": {
    type: S({ type: "string", enum: ["tdx"], default_key: 1 }),
    attestation: opt({ type: "boolean" }),
    "vsock-cid": opt({ type: "integer" }),
    "vsock-port": opt({ type: "integer" }),
  },
};

/** Extra checks a property-string format runs after its keys are valid (qemu-server validate_vm_cpu_conf). */
export const PROPERTY_VALIDATORS: Readonly<Record<string, (values: Record<string, string>, version: PveVersion) => string | undefined>> = {
  "pve-vm-cpu-conf": (values, version) => {
    const cputype = values.cputype ?? "kvm64";
    if (!cputype.startsWith("custom-") && !CPU_MODELS.has(cputype)) return `Built-in cputype '${cputype}' is not defined (missing 'custom-' prefix?)`;
    if (values["reported-model"] !== undefined) return "Property 'reported-model' not allowed in VM-specific CPU config.";
    const allowed = CPU_FLAGS[version];
    const flags = values.flags ? values.flags.split(";").map((f) => f.slice(1)) : [];
    if (flags.some((f) => !allowed.includes(f))) return `VM-specific CPU flags must be a subset of: ${allowed.join(", ")}`;
    if (version === "8.4" && values["guest-phys-bits"] !== undefined) return "invalid key in comma-separated list property: guest-phys-bits";
    return undefined;
  },
};

/** The code formats (not property strings), by name. */
export const FORMATS: Readonly<Record<string, FormatCheck>> = {
  "pve-node": regex(/^([a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?)$/, () => "value does not look like a valid node name"),
  "pve-vmid": regex(/^[1-9][0-9]{2,8}$/, () => "value does not look like a valid VM ID"),
  "pve-storage-id": (value, version) => {
    if (version !== "8.4" && value.length < 2) return `storage ID '${value}' cannot be shorter than 2 characters`;
    return /^[a-z][a-z0-9\-_.]*[a-z0-9]$/i.test(value) ? undefined : `storage ID '${value}' contains illegal characters`;
  },
  "pve-configid": regex(/^[a-z][a-z0-9_-]+$/i, (v) => `invalid configuration ID '${v}'`),
  "pve-bridge-id": regex(/^[-_.\w\d]+$/, (v) => `invalid bridge ID '${v}'`),
  "mac-addr": regex(/^[a-f0-9][02468ace](?::[a-f0-9]{2}){5}$/i, () => "value does not look like a valid unicast MAC address"),
  urlencoded: regex(/^[-%a-zA-Z0-9_.!~*'()]*$/, (v) => `invalid urlencoded string: ${v}`),
  "dns-name": regex(DNS_NAME, () => "value does not look like a valid DNS name"),
  ipv4: (v) => (isIpv4(v) ? undefined : "value does not look like a valid IPv4 address"),
  ipv6: (v) => (isIpv6(v) ? undefined : "value does not look like a valid IPv6 address"),
  ip: (v) => (isIpv4(v) || isIpv6(v) ? undefined : "value does not look like a valid IP address"),
  address: (v) => (isIpv4(v) || isIpv6(v) || DNS_NAME.test(v) ? undefined : `value does not look like a valid address: ${v}`),
  CIDR: (v) => (cidr(v, false) || cidr(v, true) ? undefined : "value does not look like a valid CIDR network"),
  "pve-ipv4-config": (v) => (v === "dhcp" || v === "manual" || cidr(v, false) ? undefined : "value does not look like a valid ipv4 network configuration"),
  "pve-ipv6-config": (v) =>
    v === "auto" || v === "dhcp" || v === "manual" || cidr(v, true) ? undefined : "value does not look like a valid ipv6 network configuration",
  "disk-size": regex(/^(\d+(\.\d+)?)([KMGT](?:iB)?)?$/, (v) => `value does not look like a valid disk size: ${v}`),
  "pve-startup-order": (v) => {
    const parts = v.split(",").filter((p) => !/^\s*$/.test(p));
    const ok = v !== "" && v !== "0" && parts.every((p) => /^(order=)?\d+$|^up=\d+$|^down=\d+$/.test(p));
    return ok ? undefined : "unable to parse startup options";
  },
  "pve-tag": regex(/^[a-z0-9_][a-z0-9_\-+.]*$/i, () => "invalid characters in tag"),
  "pve-hotplug-features": (v) => {
    if (v === "0" || v === "1") return undefined;
    const bad = splitList(v).find((f) => !["network", "disk", "cpu", "memory", "usb", "cloudinit"].includes(f));
    return bad === undefined ? undefined : `invalid hotplug feature '${bad}'`;
  },
  "pve-qm-bootdisk": regex(/^(ide[0-3]|scsi([0-9]|[12][0-9]|30)|virtio([0-9]|1[0-5])|sata[0-5]|efidisk0|tpmstate0)$/, (v) => `invalid boot disk '${v}'`),
  "pve-qm-bootdev": regex(
    /^(ide[0-3]|scsi([0-9]|[12][0-9]|30)|virtio([0-9]|1[0-5])|sata[0-5]|net([0-9]|[12][0-9]|3[01])|usb([0-9]|1[0-3])|hostpci([0-9]|1[0-5]))$/,
    (v) => `invalid boot device '${v}'`,
  ),
  "pve-volume-id": regex(VOLUME_ID, (v) => `unable to parse volume ID '${v}'`),
  "pve-volume-id-or-qm-path": (v) => (v === "none" || v === "cdrom" || v.startsWith("/") || VOLUME_ID.test(v) ? undefined : `unable to parse volume ID '${v}'`),
  "pve-volume-id-or-absolute-path": (v) => (v.startsWith("/") || VOLUME_ID.test(v) ? undefined : `unable to parse volume ID '${v}'`),
  "pve-storage-content": regex(/^(images|rootdir|vztmpl|iso|backup|snippets|none|import)$/, (v) => `invalid content type '${v}'`),
  "storage-pair-list": (v) => {
    const ids = splitList(v).flatMap((entry) => (entry === "1" ? [] : entry.split(":")));
    const bad = ids.find((id) => !/^[a-z][a-z0-9\-_.]*[a-z0-9]$/i.test(id));
    return bad === undefined ? undefined : `entry '${bad}' contains invalid ID - storage ID '${bad}' contains illegal characters`;
  },
  "pve-cpuset": (v) => {
    if (!/^\s*\d+(?:-\d+)?\s*(?:,\s*\d+(?:-\d+)?\s*)*$/.test(v)) return "unable to parse cpuset option";
    const bad = v.split(",").some((part) => {
      const [a, b] = part.trim().split("-").map(Number);
      return b !== undefined && b < a;
    });
    return bad ? "unable to parse cpuset option" : undefined;
  },
  "pve-poolid": (v) => {
    if (!/^[A-Za-z0-9.\-_]+(?:\/[A-Za-z0-9.\-_]+)*$/.test(v)) return `pool name '${v}' contains invalid characters`;
    return v.split("/").length > 3 ? `pool name '${v}' nested too deeply (max levels = 3)` : undefined;
  },
  "pve-realm": regex(/^[A-Za-z][A-Za-z0-9.\-_]+$/, () => "value does not look like a valid realm"),
  "pve-phys-bits": (v) => (v === "host" || (/^\d{1,2}$/.test(v) && Number(v) >= 8 && Number(v) <= 64) ? undefined : "value must be an integer between 8 and 64 or 'host'"),
};

/** `pve-priv-list` needs the version's privilege names; the validator passes them in. */
export function privilegeCheck(privileges: readonly string[]): FormatCheck {
  const known = new Set(privileges);
  return (value) => {
    const bad = splitList(value).find((p) => !known.has(p));
    return bad === undefined ? undefined : `invalid privilege '${bad}'`;
  };
}

/** The property-string formats referenced by name whose keys are a drive format of the schema (cdrom = ide). */
export const DRIVE_FORMAT_ALIASES: Readonly<Record<string, string>> = { "pve-qm-ide": "ide[n]" };
