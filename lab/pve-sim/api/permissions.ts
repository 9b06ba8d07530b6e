/**
 * Privileges and permission checks, as pve-access-control evaluates them (src/PVE/RPCEnvironment.pm:
 * check_api2_permissions, exec_api2_perm_check; src/PVE/Exception.pm raise_perm_exc) — for the one ACL the
 * simulator models: each user (and privilege-separated token) has one role on `/`, propagated to every path.
 */
import type { PermCheck } from "../schema";

/** Whoever made the request: a user (ticket) or an API token, with the privileges it holds on `/`. */
export interface Principal {
  /** `terraform@pve`, or for a token `terraform@pve!k3s`. */
  readonly id: string;
  /** The user a token belongs to (tasks it starts run as `user@realm!token`). */
  readonly userid: string;
  readonly isToken: boolean;
  readonly privileges: ReadonlySet<string>;
}

/** A 403 with PVE's reason text, e.g. `Permission check failed (/vms/100, VM.Allocate)`. */
export class PermissionError extends Error {}

/** Fills `{vmid}`, `{node}`, `{storage}`, `{newid}`, `{pool}` from the request's parameters. */
function templatePath(path: string, params: Readonly<Record<string, string>>): string {
  return path.replace(/\{([a-z]+)\}/g, (_, name: string) => params[name] ?? `{${name}}`);
}

/** Options after the fixed elements of a check array, e.g. `"any", 1, "require_param", "pool"`. */
function options(check: PermCheck, from: number): Record<string, unknown> {
  const result: Record<string, unknown> = {};
  for (let i = from; i + 1 < check.length; i += 2) result[String(check[i])] = check[i + 1];
  return result;
}

/** Evaluates one check array; throws PermissionError with PVE's message when it fails. */
export function evaluate(check: PermCheck, principal: Principal, params: Readonly<Record<string, string>>): void {
  const kind = check[0];
  if (kind === "perm") {
    const path = templatePath(String(check[1]), params);
    const privs = check[2] as readonly string[];
    const opts = options(check, 3);
    if (typeof opts.require_param === "string" && params[opts.require_param] === undefined) throw new PermissionError("Permission check failed");
    if (opts.any) {
      if (!privs.some((p) => principal.privileges.has(p))) throw new PermissionError(`Permission check failed (${path}, ${privs.join("|")})`);
    } else {
      const missing = privs.find((p) => !principal.privileges.has(p));
      if (missing) throw new PermissionError(`Permission check failed (${path}, ${missing})`);
    }
    return;
  }
  if (kind === "and") {
    for (const sub of check.slice(1)) evaluate(sub as PermCheck, principal, params);
    return;
  }
  if (kind === "or") {
    for (const sub of check.slice(1)) {
      try {
        evaluate(sub as PermCheck, principal, params);
        return;
      } catch (error) {
        if (!(error instanceof PermissionError)) throw error;
      }
    }
    throw new PermissionError("Permission check failed");
  }
  if (kind === "userid-param" || kind === "userid-group") return; // access-control endpoints: the method filters
  throw new Error(`permission check kind '${String(kind)}' is not modelled`);
}

/** `require(principal, path, privs)`: an in-method check (all of `privs`, or any of them with `any`). */
export function requirePrivileges(principal: Principal, path: string, privs: readonly string[], any = false): void {
  evaluate(any ? ["perm", path, privs, "any", 1] : ["perm", path, privs], principal, {});
}

/**
 * The privilege a config key needs (qemu-server src/PVE/API2/Qemu.pm $check_vm_modify_config_perm and the option
 * hashes beside it: $cpuoptions, $memoryoptions, $hwtypeoptions, $generaloptions, $vmpoweroptions, $diskoptions,
 * $cloudinitoptions). Drives, serial ports and tags are checked separately (see the handlers). `any` marks the
 * keys for which one of several privileges suffices.
 */
export function configKeyPrivileges(key: string): { privs: readonly string[]; any?: boolean } | "drive" | "root" | "skip" {
  const base = key.replace(/\d+$/, "");
  if (["cores", "cpu", "runningcpu", "cpulimit", "cpuunits", "numa", "smp", "sockets", "vcpus"].includes(key) || /^numa\d+$/.test(key)) return { privs: ["VM.Config.CPU"] };
  if (["memory", "balloon", "shares", "allow-ksm"].includes(key)) return { privs: ["VM.Config.Memory"] };
  if (["acpi", "hotplug", "kvm", "machine", "runningmachine", "scsihw", "smbios1", "tablet", "vga", "watchdog", "audio0", "rng0"].includes(key)) return { privs: ["VM.Config.HWType"] };
  if (
    ["agent", "autostart", "bios", "description", "keyboard", "localtime", "migrate_downtime", "migrate_speed", "name", "onboot", "ostype", "protection", "reboot", "startdate", "startup", "tdf", "template"].includes(key)
  )
    return { privs: ["VM.Config.Options"] };
  if (key === "freeze") return { privs: ["VM.PowerMgmt"] };
  if (["boot", "bootdisk", "vmstatestorage"].includes(key)) return { privs: ["VM.Config.Disk"] };
  if (base === "net" || key === "running-nets-host-mtu") return { privs: ["VM.Config.Network"] };
  if (["cicustom", "cipassword", "citype", "ciuser", "ciupgrade", "nameserver", "searchdomain", "sshkeys"].includes(key) || base === "ipconfig")
    return { privs: ["VM.Config.Cloudinit", "VM.Config.Network"], any: true };
  if (key === "vmstate") return { privs: ["VM.Config.Disk", "VM.PowerMgmt"] };
  if (["ide", "sata", "scsi", "virtio", "unused", "efidisk", "tpmstate"].includes(base) || key === "cdrom") return "drive";
  if (["serial", "usb", "hostpci", "virtiofs", "parallel"].includes(base) || key === "tags") return "skip";
  if (key === "digest" || key === "delete" || key === "revert" || key === "skiplock" || key === "background_delay" || key === "force" || key === "node" || key === "vmid") return "skip";
  return "root";
}
