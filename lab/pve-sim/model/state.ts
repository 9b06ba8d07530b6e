/**
 * The simulated node's state: VMs (their configuration as PVE stores it), storage volumes and tasks. Persisted as
 * one JSON file in the state folder after every change, so a restarted simulator carries on where it stopped.
 */
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";

/** A configuration value as PVE returns it in GET config: numbers for integer and boolean keys, else strings. */
export type ConfigValue = string | number;
export type VmConfig = Record<string, ConfigValue>;

export interface Vm {
  readonly vmid: number;
  /** The configuration file's keys, as PVE prints them. */
  config: VmConfig;
  /** Changes made while the VM runs that take effect at its next start (`[PENDING]` in the config file). */
  pending: VmConfig;
  /** Keys deleted while running, applied at the next start. */
  pendingDelete: string[];
  status: "running" | "stopped";
  /** Unix seconds of the last start. */
  startedAt?: number;
  /** What the VM is doing that forbids other changes (`clone`, `create`, ...), as the config's `lock` key. */
  lock?: string;
}

export interface Volume {
  /** `local-lvm:vm-710-disk-0`. */
  readonly volid: string;
  readonly storage: string;
  /** Owner VM; none for files such as `local:import/<file>`. */
  readonly vmid?: number;
  /** Bytes: the disk's size, or the file's. */
  size: number;
  readonly format: "raw" | "qcow2" | "vmdk";
  /** `images` (disks), `iso`, `import`, ... */
  readonly content: string;
  /** A downloaded file: where its bytes are (below the state folder), and its disk's virtual size. */
  readonly file?: string;
  readonly virtualSize?: number;
}

export interface Task {
  readonly upid: string;
  readonly node: string;
  readonly type: string;
  readonly id: string;
  readonly user: string;
  readonly pid: number;
  readonly pstart: number;
  readonly starttime: number;
  status: "running" | "stopped";
  /** `OK`, `WARNINGS: n`, or the error message. */
  exitstatus?: string;
  endtime?: number;
  log: string[];
}

export interface StorageConfig {
  readonly id: string;
  /** `lvmthin` (block, raw volumes) or `dir` (files). */
  readonly type: "lvmthin" | "dir";
  readonly content: readonly string[];
  /** Capacity in GiB reported by status/content calls. */
  readonly totalGiB: number;
}

interface Persisted {
  vms: Vm[];
  volumes: Volume[];
  tasks: Task[];
}

/** Finished tasks kept for status/log reads (PVE keeps its task index much longer; nobody reads old ones here). */
const KEEP_TASKS = 500;

export class State {
  readonly vms = new Map<number, Vm>();
  readonly volumes = new Map<string, Volume>();
  readonly tasks = new Map<string, Task>();
  private readonly file: string;

  constructor(stateDir: string) {
    this.file = path.join(stateDir, "state.json");
    if (fs.existsSync(this.file)) {
      const saved = JSON.parse(fs.readFileSync(this.file, "utf8")) as Persisted;
      for (const vm of saved.vms) this.vms.set(vm.vmid, vm);
      for (const volume of saved.volumes) this.volumes.set(volume.volid, volume);
      for (const task of saved.tasks) this.tasks.set(task.upid, task);
    }
  }

  /** Writes the state (atomically: a crash never leaves half a file). */
  save(): void {
    const finished = [...this.tasks.values()].filter((t) => t.status === "stopped");
    for (const old of finished.slice(0, Math.max(0, finished.length - KEEP_TASKS))) this.tasks.delete(old.upid);
    const data: Persisted = { vms: [...this.vms.values()], volumes: [...this.volumes.values()], tasks: [...this.tasks.values()] };
    fs.writeFileSync(`${this.file}.tmp`, JSON.stringify(data));
    fs.renameSync(`${this.file}.tmp`, this.file);
  }

  /** The configuration as GET config shows it: pending changes applied (unless `current`). */
  view(vm: Vm, current = false): VmConfig {
    if (current) return { ...vm.config };
    const merged: VmConfig = { ...vm.config, ...vm.pending };
    for (const key of vm.pendingDelete) delete merged[key];
    return merged;
  }

  /** The config file's SHA-1, which PVE returns as `digest` and compares when a request sends one. */
  digest(vm: Vm): string {
    const text = Object.entries({ ...vm.config, ...(vm.lock ? { lock: vm.lock } : {}) })
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([k, v]) => `${k}: ${v}`)
      .join("\n");
    const pending = Object.entries(vm.pending).map(([k, v]) => `${k}: ${v}`).join("\n");
    return crypto.createHash("sha1").update(`${text}\n[PENDING]\n${pending}\ndelete: ${vm.pendingDelete.join(",")}\n`).digest("hex");
  }

  /** The next free disk name on a storage for a VM: `vm-<id>-disk-<n>` with the first free n (pve-storage get_next_vm_diskname). */
  nextDiskName(storage: string, vmid: number, prefix = "vm"): string {
    for (let n = 0; ; n++) {
      const volid = `${storage}:${prefix}-${vmid}-disk-${n}`;
      if (!this.volumes.has(volid)) return volid;
    }
  }
}
