/**
 * The simulated Proxmox VE node: its VMs, storage and tasks, and the API methods that act on them. Every
 * behaviour is modelled on a PVE source named beside it (qemu-server src/PVE/API2/Qemu.pm unless said otherwise);
 * README.md lists them, and what is not modelled.
 */
import * as crypto from "node:crypto";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import type { AgentInterface, HostBackend } from "../backend";
import { loadSchema, ParamSchema, PveSchema, PveVersion } from "../schema";
import { formatSize, parseBoolean, parsePropertyString, parseSize, printPropertyString, PropertyFormat } from "../schema/property-string";
import { nocloudSeed, DnsDefaults } from "../model/cloudinit";
import { download, fileDigest, formatOf, head, virtualSize } from "../model/image";
import { PROPERTY_FORMATS } from "../schema/formats";
import { ConfigValue, State, StorageConfig, Task, Vm, VmConfig, Volume } from "../model/state";
import { ApiError, dieError, noConfig, paramError } from "./errors";
import { configKeyPrivileges, Principal, requirePrivileges } from "./permissions";

/** A template the simulator seeds at start, shaped as the README's `qm` recipe builds one. */
export interface TemplateSpec {
  readonly vmid: number;
  readonly name: string;
  readonly storage: string;
  readonly bridge: string;
  /** Size of the imported cloud image's disk, GiB. */
  readonly diskGiB: number;
}

export interface SimulatorOptions {
  readonly pveVersion: PveVersion;
  readonly node: string;
  readonly stateDir: string;
  /** Memory the node may hand out to running VMs, MiB: a start beyond it fails as QEMU's allocation would. */
  readonly nodeMemoryMiB: number;
  readonly nodeCpus: number;
  readonly storages: readonly StorageConfig[];
  readonly bridges: readonly string[];
  readonly dns: DnsDefaults;
  readonly templates: readonly TemplateSpec[];
  readonly backend: HostBackend;
  /** How long a full clone's copy takes, ms (a task that is `running` for a while, as PVE's do). */
  readonly cloneMs?: number;
  /** Log lines (requests, tasks, what was simulated). */
  readonly log: (line: string) => void;
}

/** The per-request context handlers get. */
export interface Call {
  readonly principal: Principal;
  /** Path and body/query parameters together (PVE merges them). */
  readonly params: Readonly<Record<string, string>>;
}

type Json = unknown;

/** PVE's MAC prefix when datacenter.cfg sets none (pve-cluster DataCenterConfig.pm $PROXMOX_OUI). */
const MAC_PREFIX = "BC:24:11";
/** Keys a running VM applies at once (qemu-server vmconfig_hotplug_pending: fast-plug options; network and disk
 * are in the default hotplug set). Everything else waits in [PENDING] for the next start. */
const FAST_PLUG = new Set(["name", "description", "onboot", "protection", "tags", "hookscript", "lock", "vmstatestorage"]);
const HOTPLUG = /^(net|scsi|virtio|sata|ide|unused)\d+$/;
/** Keys a clone does not copy (clone_vm). */
const NOT_CLONED = new Set(["template", "parent", "snaptime", "vmstate", "runningcpu", "runningmachine", "running-nets-host-mtu", "lock", "meta"]);

/** A random unicast, locally administered MAC with PVE's prefix (pve-common Tools.pm random_ether_addr). */
function randomMac(): string {
  const bytes = crypto.randomBytes(6);
  bytes[0] = (bytes[0] & 0xfe) | 0x02;
  const mac = [...bytes].map((b) => b.toString(16).toUpperCase().padStart(2, "0")).join(":");
  return MAC_PREFIX + mac.slice(MAC_PREFIX.length);
}

/** Thrown by a task's work to end it `WARNINGS: n` rather than `OK` (RESTEnvironment.pm counts the warnings it logged). */
class TaskWarnings extends Error {
  constructor(readonly count: number) {
    super(`${count} warning(s)`);
  }
}

const hex8 = (n: number) => (n >>> 0).toString(16).toUpperCase().padStart(8, "0");
const now = () => Math.floor(Date.now() / 1000);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** `[current=]4096` -> 4096 MiB. */
function memoryMiB(value: ConfigValue | undefined): number {
  if (value === undefined) return 512;
  const text = String(value);
  return Number(text.replace(/^current=/, "").split(",")[0]);
}

export class Simulator {
  readonly schema: PveSchema;
  readonly state: State;
  private taskCounter = 0;
  private readonly bootTime = now() - 3600;
  private readonly vmLocks = new Map<number, Promise<void>>();

  constructor(readonly options: SimulatorOptions) {
    this.schema = loadSchema(options.pveVersion);
    this.state = new State(options.stateDir);
    for (const template of options.templates) if (!this.state.vms.has(template.vmid)) this.seedTemplate(template);
    this.state.save();
  }

  get node(): string {
    return this.options.node;
  }

  /** The property-string format of a parameter (`net[n]`, `scsi[n]`, `ipconfig[n]`, ...) of the config update schema. */
  format(param: string): PropertyFormat {
    const format = this.schema.endpoints["PUT /nodes/{node}/qemu/{vmid}/config"].parameters[param]?.format;
    if (typeof format === "string" && PROPERTY_FORMATS[format]) return PROPERTY_FORMATS[format];
    if (typeof format !== "object") throw new Error(`no property-string format for ${param}`);
    return format;
  }

  private log(line: string): void {
    this.options.log(line);
  }

  // --- templates, as README.md's `qm create … qm template` recipe makes them -------------------------------
  private seedTemplate(t: TemplateSpec): void {
    const disk: Volume = { volid: `${t.storage}:base-${t.vmid}-disk-0`, storage: t.storage, vmid: t.vmid, size: t.diskGiB * 1024 ** 3, format: "raw", content: "images" };
    const cloudinit: Volume = { volid: `${t.storage}:vm-${t.vmid}-cloudinit`, storage: t.storage, vmid: t.vmid, size: 4 * 1024 ** 2, format: "raw", content: "images" };
    this.state.volumes.set(disk.volid, disk);
    this.state.volumes.set(cloudinit.volid, cloudinit);
    const vm: Vm = {
      vmid: t.vmid,
      status: "stopped",
      pending: {},
      pendingDelete: [],
      config: {
        name: t.name,
        memory: "2048",
        cores: 2,
        net0: `virtio=${randomMac()},bridge=${t.bridge}`,
        scsihw: "virtio-scsi-single",
        serial0: "socket",
        vga: "serial0",
        agent: "enabled=1",
        scsi0: `${disk.volid},discard=on,iothread=1,size=${formatSize(disk.size)}`,
        boot: "order=scsi0",
        ide2: `${cloudinit.volid},media=cdrom`,
        template: 1,
        meta: `creation-qemu=9.2.0,ctime=${now()}`,
        smbios1: `uuid=${crypto.randomUUID()}`,
        vmgenid: crypto.randomUUID(),
      },
    };
    this.state.vms.set(t.vmid, vm);
    this.log(`seeded template ${t.vmid} (${t.name}): scsi0 ${disk.volid} ${formatSize(disk.size)}, cloud-init drive ide2, agent, serial0 — it stands for the lab's Debian 12 root filesystem`);
  }

  // --- helpers ------------------------------------------------------------------------------------------------
  /** The node in the path must be this one; another name is proxied by PVE and fails its host lookup. */
  checkNode(node: string): void {
    if (node !== this.node) throw dieError(`hostname lookup '${node}' failed - failed to get address info for: ${node}: Name or service not known`);
  }

  vm(params: Readonly<Record<string, string>>): Vm {
    this.checkNode(params.node);
    const vm = this.state.vms.get(Number(params.vmid));
    if (!vm) throw noConfig(this.node, params.vmid);
    return vm;
  }

  private checkLock(vm: Vm): void {
    if (vm.lock) throw dieError(`VM is locked (${vm.lock})`);
  }

  /** Serializes changes to one VM's configuration (PVE's lock_config flock). */
  private async withVmLock<T>(vmid: number, fn: () => Promise<T> | T): Promise<T> {
    const previous = this.vmLocks.get(vmid) ?? Promise.resolve();
    let release: () => void = () => undefined;
    const mine = new Promise<void>((resolve) => (release = resolve));
    this.vmLocks.set(vmid, previous.then(() => mine));
    await previous;
    try {
      return await fn();
    } finally {
      release();
    }
  }

  private storage(id: string): StorageConfig {
    const storage = this.options.storages.find((s) => s.id === id);
    if (!storage) throw dieError(`storage '${id}' does not exist`);
    return storage;
  }

  /** A task: returns its UPID at once; `work` runs in the background and its outcome becomes the exit status. */
  task(call: Call, type: string, id: string, work: (log: (line: string) => void) => Promise<void>): string {
    this.taskCounter++;
    const pid = 100000 + this.taskCounter;
    const starttime = now();
    const pstart = (starttime - this.bootTime) * 100;
    const user = call.principal.id;
    const upid = `UPID:${this.node}:${hex8(pid)}:${hex8(pstart)}:${hex8(starttime)}:${type}:${id}:${user}:`;
    const task: Task = { upid, node: this.node, type, id, user, pid, pstart, starttime, status: "running", log: [] };
    this.state.tasks.set(upid, task);
    this.state.save();
    const log = (line: string) => task.log.push(line);
    void (async () => {
      try {
        await work(log);
        task.exitstatus = "OK";
        log("TASK OK");
      } catch (error) {
        if (error instanceof TaskWarnings) {
          task.exitstatus = `WARNINGS: ${error.count}`;
          log(`TASK WARNINGS: ${error.count}`);
        } else {
          const message = (error instanceof ApiError ? error.message : (error as Error).message).replace(/\n$/, "");
          task.exitstatus = message;
          log(`TASK ERROR: ${message}`);
          this.log(`task ${type} ${id} failed: ${message}`);
        }
      }
      task.status = "stopped";
      task.endtime = now();
      this.state.save();
    })();
    return upid;
  }

  // --- cluster, nodes, version --------------------------------------------------------------------------------
  version(): Json {
    const release = this.options.pveVersion;
    return { version: release === "8.4" ? "8.4.1" : "9.1.2", release, repoid: release === "8.4" ? "2a5fa54a" : "14a22df3" };
  }

  nodes(): Json {
    return [this.nodeEntry()];
  }

  private nodeEntry(): Record<string, Json> {
    const used = this.runningMemoryMiB() * 1024 ** 2;
    return {
      id: `node/${this.node}`,
      node: this.node,
      type: "node",
      status: "online",
      level: "",
      cpu: 0.05,
      maxcpu: this.options.nodeCpus,
      mem: used,
      maxmem: this.options.nodeMemoryMiB * 1024 ** 2,
      disk: 0,
      maxdisk: 100 * 1024 ** 3,
      uptime: now() - this.bootTime,
    };
  }

  nodeStatus(call: Call): Json {
    this.checkNode(call.params.node);
    return {
      cpu: 0.05,
      uptime: now() - this.bootTime,
      memory: { total: this.options.nodeMemoryMiB * 1024 ** 2, used: this.runningMemoryMiB() * 1024 ** 2, free: (this.options.nodeMemoryMiB - this.runningMemoryMiB()) * 1024 ** 2 },
      cpuinfo: { cpus: this.options.nodeCpus, sockets: 1, cores: this.options.nodeCpus, model: "simulated", mhz: "2000", hvm: "1", flags: "", user_hz: 100 },
      pveversion: `pve-manager/${(this.version() as { version: string }).version}/simulated`,
      kversion: "Linux (simulated node)",
    };
  }

  /** GET /cluster/nextid: the lowest free id from 100 (pve-manager API2/Cluster.pm nextid); the id as a string, as PVE's JSON has it. */
  nextid(call: Call): Json {
    if (call.params.vmid !== undefined) {
      const vmid = Number(call.params.vmid);
      if (this.state.vms.has(vmid)) throw paramError({ vmid: `VM ${vmid} already exists` });
      return String(vmid);
    }
    for (let id = 100; id < 1_000_000; id++) if (!this.state.vms.has(id)) return String(id);
    throw dieError("unable to get any free VMID in range [100, 1000000]");
  }

  /** GET /cluster/resources (pve-manager API2/Cluster.pm resources): guests need VM.Audit, storage Datastore.Audit. */
  resources(call: Call): Json {
    const type = call.params.type;
    const out: Json[] = [];
    if (!type || type === "vm") {
      if (call.principal.privileges.has("VM.Audit")) for (const vm of this.state.vms.values()) out.push(this.vmResource(vm));
    }
    if (!type || type === "node") out.push(this.nodeEntry());
    if (!type || type === "storage") {
      if (call.principal.privileges.has("Datastore.Audit"))
        for (const s of this.options.storages) out.push({ id: `storage/${this.node}/${s.id}`, type: "storage", storage: s.id, node: this.node, status: "available", plugintype: s.type, content: s.content.join(","), shared: 0, disk: this.storageUsed(s.id), maxdisk: s.totalGiB * 1024 ** 3 });
    }
    return out;
  }

  private vmResource(vm: Vm): Record<string, Json> {
    const config = this.state.view(vm);
    const running = vm.status === "running";
    return {
      id: `qemu/${vm.vmid}`,
      type: "qemu",
      vmid: vm.vmid,
      name: String(config.name ?? `VM ${vm.vmid}`),
      node: this.node,
      status: vm.status,
      template: Number(config.template ?? 0),
      maxcpu: this.cpus(config),
      maxmem: memoryMiB(config.memory) * 1024 ** 2,
      maxdisk: this.bootDiskSize(config),
      cpu: running ? 0.02 : 0,
      mem: running ? Math.floor(memoryMiB(config.memory) * 1024 ** 2 * 0.3) : 0,
      disk: 0,
      diskread: 0,
      diskwrite: 0,
      netin: 0,
      netout: 0,
      uptime: running && vm.startedAt ? now() - vm.startedAt : 0,
      ...(config.tags !== undefined ? { tags: String(config.tags) } : {}),
      ...(vm.lock ? { lock: vm.lock } : {}),
    };
  }

  // --- storage ------------------------------------------------------------------------------------------------
  private storageUsed(id: string): number {
    return [...this.state.volumes.values()].filter((v) => v.storage === id).reduce((sum, v) => sum + v.size, 0);
  }

  storages(call: Call): Json {
    this.checkNode(call.params.node);
    const content = call.params.content;
    return this.options.storages
      .filter((s) => !content || s.content.includes(content))
      .filter(() => call.principal.privileges.has("Datastore.Audit") || call.principal.privileges.has("Datastore.AllocateSpace"))
      .map((s) => ({ storage: s.id, type: s.type, content: s.content.join(","), active: 1, enabled: 1, shared: 0, total: s.totalGiB * 1024 ** 3, used: this.storageUsed(s.id), avail: s.totalGiB * 1024 ** 3 - this.storageUsed(s.id), used_fraction: this.storageUsed(s.id) / (s.totalGiB * 1024 ** 3) }));
  }

  storageContent(call: Call): Json {
    this.checkNode(call.params.node);
    const storage = this.storage(call.params.storage);
    return [...this.state.volumes.values()]
      .filter((v) => v.storage === storage.id && (!call.params.content || v.content === call.params.content) && (!call.params.vmid || v.vmid === Number(call.params.vmid)))
      .map((v) => ({ volid: v.volid, format: v.format, size: v.size, used: v.size, ...(v.vmid !== undefined ? { vmid: v.vmid } : {}), content: v.content, ctime: this.bootTime }));
  }

  /** GET .../content/{volume}: the volume's attributes (pve-storage API2/Storage/Content.pm info). */
  volumeInfo(call: Call): Json {
    this.checkNode(call.params.node);
    const storage = this.storage(call.params.storage);
    const volid = call.params.volume.includes(":") ? call.params.volume : `${storage.id}:${call.params.volume}`;
    const volume = this.state.volumes.get(volid);
    if (!volume) throw dieError(`volume '${volid}' does not exist`);
    requirePrivileges(call.principal, `/storage/${storage.id}`, ["Datastore.Audit", "Datastore.AllocateSpace"], true);
    return { path: this.volumePath(volume), format: volume.format, size: volume.virtualSize ?? volume.size, used: volume.size, notes: "" };
  }

  /** Where PVE keeps a volume: an LV, `images/<vmid>/` or the content's folder of the dir storage (pve-storage Plugin.pm get_subdir). */
  private volumePath(volume: Pick<Volume, "volid" | "storage" | "content" | "vmid">): string {
    const name = volume.volid.split(":")[1];
    if (this.storage(volume.storage).type === "lvmthin") return `/dev/pve/${name}`;
    if (volume.content === "images") return `/var/lib/vz/images/${volume.vmid}/${name}`;
    return `/var/lib/vz/${volume.content === "iso" || volume.content === "vztmpl" ? "template/" : ""}${name}`;
  }

  /** GET query-url-metadata (pve-manager API2/Nodes.pm): a HEAD of the URL; filename, size and type from its headers. */
  async queryUrlMetadata(call: Call): Promise<Json> {
    this.checkNode(call.params.node);
    const { url } = call.params;
    let answer: Awaited<ReturnType<typeof head>>;
    try {
      answer = await head(url, parseBoolean(call.params["verify-certificates"] ?? "1") !== 0);
    } catch (error) {
      throw dieError(`invalid server response: '500 Can't connect to ${new URL(url).host} (${(error as Error).message})'`);
    }
    if (answer.status !== 200) throw dieError(`invalid server response: '${answer.status} ${answer.statusText}'`);
    this.log(`query-url-metadata: HEAD ${url} -> ${answer.status} (a real request from the simulator)`);
    const disposition = /filename="?([^";]+)"?/.exec(String(answer.headers["content-disposition"] ?? ""))?.[1];
    const filename = disposition ?? decodeURIComponent(new URL(url).pathname.split("/").pop() ?? "");
    const size = answer.headers["content-length"];
    const mimetype = answer.headers["content-type"]?.split(";")[0].trim();
    return { ...(filename ? { filename } : {}), ...(size !== undefined ? { size: Number(size) } : {}), ...(mimetype ? { mimetype } : {}) };
  }

  /**
   * POST download-url (pve-storage API2/Storage/Status.pm download_url): the checks before the task, then a task
   * `download:<filename>` that fetches the URL for real (pve-common Tools.pm download_file_from_url), verifies the
   * checksum, checks the image and renames it into place. No partial file is left when it fails.
   */
  downloadUrl(call: Call): Json {
    this.checkNode(call.params.node);
    const { params } = call;
    const storage = this.storage(params.storage);
    if (storage.type !== "dir") throw dieError(`can't upload to storage type '${storage.type}', not a file based storage!`);
    if (!storage.content.includes(params.content)) throw dieError(`storage '${storage.id}' is not configured for content-type '${params.content}'`);
    const filename = params.filename.replace(/^.*[/\\]/, "").replace(/[^a-zA-Z0-9_.-]/g, "_");
    if (params.content === "iso" && !/\.(?:iso|img)/i.test(filename)) throw paramError({ filename: "wrong file extension" });
    if (params.content === "vztmpl" && !/\.tar\.(gz|xz|zst|bz2)$/i.test(filename)) throw paramError({ filename: "wrong file extension" });
    const format = formatOf(filename);
    if (params.content === "import" && (!format || !/^[A-Za-z0-9_.+-]+\.(ova|qcow2|raw|vmdk)$/.test(filename))) throw paramError({ filename: "invalid filename or wrong extension" });
    const subdir = params.content;
    const volid = `${storage.id}:${subdir}/${filename}`;
    const shown = this.volumePath({ volid, storage: storage.id, content: params.content });
    const dir = path.join(this.options.stateDir, "storage", storage.id, subdir);
    const file = path.join(dir, filename);
    const verify = parseBoolean(params["verify-certificates"] ?? "1") !== 0;
    const algorithm = params["checksum-algorithm"];
    const expected = params.checksum?.toLowerCase();
    return this.task(call, "download", filename, async (log) => {
      if (params.compression !== undefined && params.content !== "iso") throw new Error(`decompression not supported for ${params.content}`);
      log(`downloading ${params.url} to ${shown}`);
      if (fs.existsSync(file)) {
        if (!expected) throw new Error(`refusing to override existing file '${shown}'`);
        log("calculating checksum of existing file...");
        const got = await fileDigest(file, algorithm);
        if (got !== expected) throw new Error(`checksum mismatch: got '${got}' != expect '${expected}', aborting`);
        log("OK, got correct file already, no need to download");
        return;
      }
      fs.mkdirSync(dir, { recursive: true });
      const tmp = `${file}.tmp_dwnl.${process.pid}`;
      try {
        const bytes = await download(params.url, tmp, verify, log);
        this.log(`download-url: GET ${params.url} -> ${bytes} bytes into ${volid} (a real download by the simulator, kept in its state folder)`);
        if (expected) {
          const got = await fileDigest(tmp, algorithm);
          if (got !== expected) {
            log("calculating checksum...");
            log("");
            throw new Error(`checksum mismatch: got '${got}' != expect '${expected}'`);
          }
          log("calculating checksum...OK, checksum verified");
        }
        let size: number | undefined;
        if (format) {
          try {
            size = virtualSize(tmp, format);
          } catch (error) {
            throw new Error(`failed to verify file: ${(error as Error).message}`);
          }
        }
        fs.renameSync(tmp, file);
        this.state.volumes.set(volid, { volid, storage: storage.id, size: bytes, format: format ?? "raw", content: params.content, file, ...(size !== undefined ? { virtualSize: size } : {}) });
        this.state.save();
        log(`download of '${params.url}' to '${shown}' finished`);
      } finally {
        fs.rmSync(tmp, { force: true });
      }
    });
  }

  /**
   * DELETE .../content/{volume} (pve-storage API2/Storage/Content.pm delete): a file such as an import image needs
   * Datastore.Allocate on the storage; the work is a task `imgdel`. A missing file is a warning, not an error.
   */
  async deleteVolume(call: Call): Promise<Json> {
    this.checkNode(call.params.node);
    const storage = this.storage(call.params.storage);
    const given = call.params.volume;
    const [store, name] = given.includes(":") ? [given.slice(0, given.indexOf(":")), given.slice(given.indexOf(":") + 1)] : [storage.id, given];
    if (store !== storage.id) throw paramError({ volume: `storage ID mismatch (${store} != ${storage.id})` });
    const volid = `${store}:${name}`;
    const volume = this.state.volumes.get(volid);
    if (volume && volume.content === "images") throw dieError(`volume '${volid}' belongs to VM ${volume.vmid}: the simulator only deletes files (not modelled)`);
    requirePrivileges(call.principal, `/storage/${storage.id}`, ["Datastore.Allocate"]);
    const task = this.task(call, "imgdel", storage.id, async (log) => {
      if (!volume) {
        log(`WARN: disk image '${this.volumePath({ volid, storage: storage.id, content: name.split("/")[0] })}' does not exist`);
        throw new TaskWarnings(1);
      }
      if (volume.file) fs.rmSync(volume.file, { force: true });
      this.state.volumes.delete(volid);
      this.state.save();
      log(`Removed volume '${volid}'`);
    });
    const delay = call.params.delay !== undefined ? Number(call.params.delay) : 0;
    if (delay === 0) return task;
    const deadline = Date.now() + delay * 1000;
    const t = this.state.tasks.get(task)!;
    while (t.status === "running" && Date.now() < deadline) await sleep(100);
    if (t.status === "running") return task;
    if (t.exitstatus !== "OK") throw dieError(t.exitstatus ?? "unknown error");
    return null;
  }

  // --- qemu: list, config -------------------------------------------------------------------------------------
  qemuList(call: Call): Json {
    this.checkNode(call.params.node);
    if (!call.principal.privileges.has("VM.Audit")) return [];
    return [...this.state.vms.values()].map((vm) => {
      const config = this.state.view(vm);
      return {
        vmid: vm.vmid,
        name: String(config.name ?? `VM ${vm.vmid}`),
        status: vm.status,
        cpus: this.cpus(config),
        maxmem: memoryMiB(config.memory) * 1024 ** 2,
        maxdisk: this.bootDiskSize(config),
        uptime: vm.status === "running" && vm.startedAt ? now() - vm.startedAt : 0,
        ...(vm.status === "running" ? { pid: 200000 + vm.vmid } : {}),
        ...(config.template ? { template: 1 } : {}),
        ...(config.tags !== undefined ? { tags: String(config.tags) } : {}),
        ...(vm.lock ? { lock: vm.lock } : {}),
      };
    });
  }

  getConfig(call: Call): Json {
    const vm = this.vm(call.params);
    const config = this.state.view(vm, call.params.current === "1");
    if (config.cipassword !== undefined) config.cipassword = "**********";
    return { ...config, ...(vm.lock ? { lock: vm.lock } : {}), digest: this.state.digest(vm) };
  }

  private cpus(config: VmConfig): number {
    if (config.vcpus !== undefined) return Number(config.vcpus);
    return Number(config.cores ?? 1) * Number(config.sockets ?? 1);
  }

  private bootDiskSize(config: VmConfig): number {
    for (const key of Object.keys(config).filter((k) => /^(scsi|virtio|sata|ide)\d+$/.test(k))) {
      const drive = this.parseDrive(key, String(config[key]));
      if (drive.media !== "cdrom" && drive.size) return parseSize(drive.size) ?? 0;
    }
    return 0;
  }

  private parseDrive(key: string, value: string): Record<string, string> {
    const family = `${key.replace(/\d+$/, "")}[n]`;
    return parsePropertyString(this.format(family), value);
  }

  private printDrive(key: string, values: Record<string, string | number>): string {
    const family = `${key.replace(/\d+$/, "")}[n]`;
    return printPropertyString(this.format(family), values);
  }

  private isCloudInit(drive: Record<string, string>): boolean {
    return /(^|:)(vm-\d+-cloudinit|cloudinit)(\.\w+)?$/.test(drive.file ?? "");
  }

  /**
   * PUT (sync) and POST (task) config: $update_vm_api. Parameters are already schema-valid; here come the
   * checks PVE makes in the method (lock, digest, `delete` options, per-key privileges, SSH keys, storage) and
   * the changes (drives allocated, MACs generated, pending while running).
   */
  async updateConfig(call: Call, background: boolean): Promise<Json> {
    const vm = this.vm(call.params);
    const apply = () =>
      this.withVmLock(vm.vmid, async () => {
        this.checkLock(vm);
        const { params } = call;
        if (params.digest !== undefined && params.digest !== this.state.digest(vm)) throw dieError("checksum mismatch (file change by other user?)");
        const skip = new Set(["node", "vmid", "digest", "delete", "revert", "skiplock", "background_delay", "force"]);
        const changes = Object.entries(params).filter(([key]) => !skip.has(key));
        const deletes = params.delete !== undefined ? params.delete.split(/[,;\s]+/).filter(Boolean) : [];
        const errors: Record<string, string> = {};
        const known = this.schema.endpoints["PUT /nodes/{node}/qemu/{vmid}/config"].parameters;
        for (const key of deletes) {
          if (!(key in known) && !(`${key.replace(/\d+$/, "")}[n]` in known)) errors.delete = `unknown option '${key}'`;
          else if (params[key] !== undefined) errors.delete = `you can't use '-${key}' and -delete ${key}' at the same time`;
        }
        if (Object.keys(errors).length > 0) throw paramError(errors);
        if (changes.length === 0 && deletes.length === 0 && params.revert === undefined) throw dieError("no options specified");
        for (const key of [...deletes, ...changes.map(([k]) => k)]) this.checkKeyPrivileges(call, vm, key, params[key]);
        if (params.sshkeys !== undefined) this.validateSshKeys(params.sshkeys);

        const current = this.state.view(vm);
        const running = vm.status === "running";
        const set = (key: string, value: ConfigValue) => {
          if (!running || FAST_PLUG.has(key) || HOTPLUG.test(key)) {
            vm.config[key] = value;
            delete vm.pending[key];
          } else {
            vm.pending[key] = value;
          }
          vm.pendingDelete = vm.pendingDelete.filter((k) => k !== key);
        };
        for (const key of deletes) {
          if (current[key] === undefined) continue; // PVE only warns: "cannot delete 'x' - not set in current configuration!"
          if (/^(ide|sata|scsi|virtio)\d+$/.test(key)) this.detachDrive(vm, key, String(current[key]));
          if (!running || FAST_PLUG.has(key) || HOTPLUG.test(key)) {
            delete vm.config[key];
            delete vm.pending[key];
          } else if (!vm.pendingDelete.includes(key)) {
            vm.pendingDelete.push(key);
          }
        }
        for (const [key, value] of changes) set(key, this.storedValue(vm, key, value, known));
        this.state.save();
      });
    if (background) return this.task(call, "qmconfig", String(vm.vmid), async () => void (await apply()));
    await apply();
    return null;
  }

  /** The value as the configuration stores it: drives and NICs re-printed, booleans and integers as numbers. */
  private storedValue(vm: Vm, key: string, value: string, known: Readonly<Record<string, ParamSchema>>): ConfigValue {
    if (/^(ide|sata|scsi|virtio|efidisk|tpmstate)\d+$/.test(key)) return this.storeDrive(vm, key, value);
    if (/^net\d+$/.test(key)) {
      const values = parsePropertyString(this.format("net[n]"), value);
      values.macaddr ??= randomMac();
      return printPropertyString(this.format("net[n]"), values);
    }
    const schema = known[key] ?? known[`${key.replace(/\d+$/, "")}[n]`];
    if (schema?.type === "boolean") return parseBoolean(value) ?? Number(value);
    if (schema?.type === "integer") return Number(value);
    return value;
  }

  /** A drive value: `<storage>:<GiB>` allocates, `<storage>:cloudinit` makes the cloud-init volume, else the volume must exist. */
  private storeDrive(vm: Vm, key: string, value: string): string {
    const drive = this.parseDrive(key, value);
    const file = drive.file;
    const alloc = /^(([^/:\s]+):)?(\d+(\.\d+)?)$/.exec(file);
    if (alloc && drive["import-from"] === undefined) {
      const storage = this.storage(alloc[2] ?? "local-lvm");
      const volid = this.state.nextDiskName(storage.id, vm.vmid);
      const size = Math.trunc(Number(alloc[3]) * 1024 ** 3);
      this.state.volumes.set(volid, { volid, storage: storage.id, vmid: vm.vmid, size, format: "raw", content: "images" });
      drive.file = volid;
      drive.size = formatSize(size);
    } else if (/^[^/:\s]+:cloudinit$/.test(file)) {
      const storage = this.storage(file.split(":")[0]);
      const volid = `${storage.id}:vm-${vm.vmid}-cloudinit`;
      const other = Object.entries(this.state.view(vm)).find(([k, v]) => k !== key && /^(ide|sata|scsi)\d+$/.test(k) && String(v).startsWith(`${volid},`));
      if (other) throw paramError({ [key]: `${key} - cloud-init drive is already attached at '${other[0]}'` });
      this.state.volumes.set(volid, { volid, storage: storage.id, vmid: vm.vmid, size: 4 * 1024 ** 2, format: "raw", content: "images" });
      drive.file = volid;
      drive.media = "cdrom";
      delete drive.size;
    } else if (file !== "none" && file !== "cdrom" && !file.startsWith("/")) {
      const volume = this.state.volumes.get(file);
      if (!volume) throw dieError(`volume '${file}' does not exist`);
      if (drive.size !== undefined) drive.size = formatSize(parseSize(drive.size) ?? volume.size);
      else if (drive.media !== "cdrom") drive.size = formatSize(volume.size);
    }
    return this.printDrive(key, drive);
  }

  /** A drive taken out of the config: a cloud-init volume is deleted, a disk stays as unusedN (vmconfig_delete_or_detach_drive). */
  private detachDrive(vm: Vm, key: string, value: string): void {
    const drive = this.parseDrive(key, value);
    if (this.isCloudInit(drive)) {
      this.state.volumes.delete(drive.file);
    } else if (drive.media !== "cdrom" && this.state.volumes.has(drive.file)) {
      let n = 0;
      while (vm.config[`unused${n}`] !== undefined) n++;
      vm.config[`unused${n}`] = drive.file;
    }
  }

  /** In-method privilege checks per key ($check_vm_modify_config_perm, $check_drive_perms, check_bridge_access). */
  private checkKeyPrivileges(call: Call, vm: Vm, key: string, value: string | undefined): void {
    const path = `/vms/${vm.vmid}`;
    const need = configKeyPrivileges(key);
    if (need === "root") throw dieError(`only root can set '${key}' config`);
    if (need === "skip") {
      if (/^serial\d+$/.test(key)) {
        if (value !== undefined && value !== "socket") throw dieError(`only root can set '${key}' config for real devices`);
        requirePrivileges(call.principal, path, ["VM.Config.HWType"]);
      }
      if (key === "tags") requirePrivileges(call.principal, path, ["VM.Config.Options"]);
      return;
    }
    if (need === "drive") {
      const existing = this.state.view(vm)[key];
      const text = value ?? (existing !== undefined ? String(existing) : undefined);
      if (text === undefined) return;
      const drive = this.parseDrive(key === "cdrom" ? "ide2" : key, text);
      if (this.isCloudInit(drive)) requirePrivileges(call.principal, path, ["VM.Config.Cloudinit", "VM.Config.CDROM"]);
      else if (drive.media === "cdrom") requirePrivileges(call.principal, path, ["VM.Config.CDROM"]);
      else requirePrivileges(call.principal, path, ["VM.Config.Disk"]);
      const storage = /^([^/:\s]+):/.exec(drive.file)?.[1];
      if (value !== undefined && storage) requirePrivileges(call.principal, `/storage/${storage}`, ["Datastore.AllocateSpace"]);
      return;
    }
    requirePrivileges(call.principal, path, need.privs, need.any);
    if (/^net\d+$/.test(key) && value !== undefined) {
      const bridge = parsePropertyString(this.format("net[n]"), value).bridge;
      if (bridge) {
        if (!this.options.bridges.includes(bridge)) throw dieError(`bridge '${bridge}' does not exist`);
        requirePrivileges(call.principal, `/sdn/zones/localnetwork/${bridge}`, ["SDN.Use"]);
      }
    }
  }

  /** uri_unescape + validate_ssh_public_keys (pve-common Tools.pm): `ssh-keygen -l` must read every key. */
  private validateSshKeys(encoded: string): void {
    let keys: string;
    try {
      keys = decodeURIComponent(encoded);
    } catch {
      throw dieError("SSH public key validation error");
    }
    for (const key of keys.split("\n").filter((k) => /\S/.test(k))) {
      try {
        execFileSync("ssh-keygen", ["-l", "-f", "-"], { input: key, stdio: ["pipe", "ignore", "ignore"] });
      } catch {
        throw dieError("SSH public key validation error");
      }
    }
  }

  // --- create ---------------------------------------------------------------------------------------------------
  /**
   * POST /nodes/{node}/qemu (create_vm): the checks of the method in its order, then a task `qmcreate` that makes
   * the disks — `<storage>:<GiB>` allocated, `<storage>:cloudinit`, `<storage>:0,import-from=<volume>` copied from
   * the source at its virtual size (clone_disk) — and writes the configuration. `template=1` is stored as given:
   * imported disks stay `vm-<id>-disk-<n>` (only newly allocated ones become base volumes).
   */
  createVm(call: Call): Json {
    const { params } = call;
    this.checkNode(params.node);
    const vmid = Number(params.vmid);
    if (params.archive !== undefined) throw dieError("restoring a backup is not modelled by the simulator");
    if (params.storage !== undefined) requirePrivileges(call.principal, `/storage/${params.storage}`, ["Datastore.AllocateSpace"]);
    requirePrivileges(call.principal, params.pool !== undefined ? `/pool/${params.pool}` : `/vms/${vmid}`, ["VM.Allocate"]);
    const known = this.schema.endpoints["PUT /nodes/{node}/qemu/{vmid}/config"].parameters;
    const skip = new Set(["node", "vmid", "storage", "pool", "start", "unique", "force", "bwlimit", "live-restore", "import-working-storage", "archive"]);
    const keys = Object.keys(params).filter((k) => !skip.has(k));
    const drives = keys.filter((k) => /^(ide|sata|scsi|virtio|efidisk|tpmstate)\d+$/.test(k));
    // $check_storage_access: the source of an import, the target storage of a new disk.
    for (const key of drives) {
      const drive = this.parseDrive(key, params[key]);
      const source = drive["import-from"];
      if (source !== undefined) {
        if (source.startsWith("/")) throw dieError(`Only root can pass arbitrary filesystem paths. at /usr/share/perl5/PVE/Storage.pm line ${this.options.pveVersion === "8.4" ? 581 : 651}.`);
        const volume = this.state.volumes.get(source);
        const sourceStorage = source.split(":")[0];
        this.storage(sourceStorage);
        if (!volume) throw dieError(`volume '${source}' does not exist`);
        if (volume.content !== "images" && volume.content !== "import") throw paramError({ [key]: `${source} has wrong type '${volume.content}' - needs to be 'images' or 'import'` });
        if (volume.vmid !== undefined) requirePrivileges(call.principal, `/vms/${volume.vmid}`, ["VM.Clone"]);
        else if (!call.principal.privileges.has("Datastore.Allocate")) requirePrivileges(call.principal, `/storage/${sourceStorage}`, ["Datastore.AllocateSpace", "Datastore.Audit"], true);
      }
      const target = /^([^/:\s]+):/.exec(drive.file)?.[1];
      if (target && /^[^/:\s]+:\d+(\.\d+)?$/.test(drive.file)) {
        const storage = this.storage(target);
        requirePrivileges(call.principal, `/storage/${target}`, ["Datastore.AllocateSpace"]);
        if (!storage.content.includes("images")) throw paramError({ storage: `storage '${target}' does not support vm images` });
      }
    }
    const placeholder: Vm = { vmid, config: {}, pending: {}, pendingDelete: [], status: "stopped" };
    for (const key of keys) this.checkKeyPrivileges(call, placeholder, key, params[key]);
    if (params.sshkeys !== undefined) this.validateSshKeys(params.sshkeys);
    // $check_drive_param: an import needs the new-disk syntax with size 0.
    for (const key of drives) {
      const drive = this.parseDrive(key, params[key]);
      if (drive["import-from"] !== undefined && !/^[^/:\s]+:0$/.test(drive.file)) {
        throw paramError({ [key]: "'import-from' requires special syntax - use <storage ID>:0,import-from=<source>" });
      }
    }
    if (this.state.vms.has(vmid)) throw dieError(`unable to create VM ${vmid} - VM ${vmid} already exists on node '${this.node}'`);

    const vm: Vm = { vmid, config: {}, pending: {}, pendingDelete: [], status: "stopped", lock: "create" };
    this.state.vms.set(vmid, vm);
    this.state.save();
    return this.task(call, "qmcreate", String(vmid), async (log) => {
      try {
        const config: VmConfig = {};
        for (const key of keys.filter((k) => !drives.includes(k))) config[key] = this.storedValue(vm, key, params[key], known);
        for (const key of drives) {
          const drive = this.parseDrive(key, params[key]);
          const source = drive["import-from"];
          if (source === undefined) {
            config[key] = this.storeDrive(vm, key, params[key]);
            continue;
          }
          const from = this.state.volumes.get(source);
          if (!from) throw new Error(`unable to create VM ${vmid} - cannot import from '${source}' - volume does not exist`);
          let size = from.virtualSize ?? from.size;
          if (from.file) {
            try {
              size = virtualSize(from.file, from.format);
            } catch (error) {
              throw new Error(`unable to create VM ${vmid} - cannot import from '${source}' - ${(error as Error).message}`);
            }
          }
          const storage = drive.file.split(":")[0];
          const volid = this.state.nextDiskName(storage, vmid);
          this.state.volumes.set(volid, { volid, storage, vmid, size, format: "raw", content: "images" });
          const { "import-from": _, ...rest } = drive;
          config[key] = this.printDrive(key, { ...rest, file: volid, size: formatSize(size) });
          log(`transferred ${formatSize(size)} of ${formatSize(size)} (100.00%)`);
          log(`${key}: successfully created disk '${config[key]}'`);
          this.log(`VM ${vmid}: ${key} imported from ${source} as ${volid} (${formatSize(size)}): the image's bytes are not copied; a clone's host boots the lab's Debian 12 root filesystem`);
        }
        config.smbios1 ??= `uuid=${crypto.randomUUID()}`;
        config.vmgenid ??= crypto.randomUUID();
        config.meta = `creation-qemu=9.2.0,ctime=${now()}`;
        vm.config = config;
        await sleep(this.options.cloneMs ?? 1500);
      } catch (error) {
        for (const volume of [...this.state.volumes.values()].filter((v) => v.vmid === vmid)) this.state.volumes.delete(volume.volid);
        this.state.vms.delete(vmid);
        this.state.save();
        throw error;
      }
      delete vm.lock;
      this.state.save();
      if (parseBoolean(params.start ?? "0") === 1) await this.withVmLock(vmid, () => this.powerOn(vm, log));
    });
  }

  // --- clone, resize, template, delete ------------------------------------------------------------------------
  /** POST clone (clone_vm): a full copy under `newid`, locked `clone` while its disks are copied. */
  clone(call: Call): Json {
    const { params } = call;
    this.checkNode(params.node);
    const source = this.state.vms.get(Number(params.vmid));
    if (!source) throw dieError(`unable to find configuration file for VM ${params.vmid} on node '${this.node}'`);
    const newid = Number(params.newid);
    if (this.state.vms.has(newid)) throw dieError(`unable to create VM ${newid}: config file already exists`);
    if (params.target !== undefined && params.target !== this.node) this.checkNode(params.target);
    const sourceConfig = this.state.view(source);
    // Linked clones (full=0 of a template) are copied like full ones: the simulator models no thin snapshots.
    const disks = Object.entries(sourceConfig).filter(([k, v]) => /^(ide|sata|scsi|virtio|efidisk|tpmstate)\d+$/.test(k) && this.parseDrive(k, String(v)).media !== "cdrom");
    for (const [key, value] of disks) {
      const storage = params.storage ?? /^([^:]+):/.exec(this.parseDrive(key, String(value)).file)?.[1];
      if (storage) requirePrivileges(call.principal, `/storage/${storage}`, ["Datastore.AllocateSpace"]);
    }
    for (const [, value] of Object.entries(sourceConfig).filter(([k]) => /^net\d+$/.test(k))) {
      const bridge = parsePropertyString(this.format("net[n]"), String(value)).bridge;
      if (bridge) requirePrivileges(call.principal, `/sdn/zones/localnetwork/${bridge}`, ["SDN.Use"]);
    }
    const config: VmConfig = {};
    for (const [key, value] of Object.entries(sourceConfig)) if (!NOT_CLONED.has(key) && !/^unused\d+$/.test(key)) config[key] = value;
    config.name = params.name ?? `Copy-of-VM-${sourceConfig.name ?? source.vmid}`;
    if (params.description !== undefined) config.description = params.description;
    else delete config.description;
    if (config.smbios1 !== undefined) {
      const smbios = parsePropertyString(PROPERTY_FORMATS["pve-qm-smbios1"], String(config.smbios1));
      config.smbios1 = printPropertyString(PROPERTY_FORMATS["pve-qm-smbios1"], { ...smbios, uuid: crypto.randomUUID() });
    }
    if (config.vmgenid !== undefined) config.vmgenid = crypto.randomUUID();
    for (const key of Object.keys(config).filter((k) => /^net\d+$/.test(k))) {
      const values = parsePropertyString(this.format("net[n]"), String(config[key]));
      const model = values.model;
      values.macaddr = randomMac();
      config[key] = printPropertyString(this.format("net[n]"), { ...values, model });
    }
    const vm: Vm = { vmid: newid, config, pending: {}, pendingDelete: [], status: "stopped", lock: "clone" };
    this.state.vms.set(newid, vm);
    this.state.save();
    return this.task(call, "qmclone", String(source.vmid), async (log) => {
      log(`create full clone of drive(s) of VM ${source.vmid} to ${newid}`);
      for (const key of Object.keys(config).filter((k) => /^(ide|sata|scsi|virtio|efidisk|tpmstate)\d+$/.test(k))) {
        const drive = this.parseDrive(key, String(config[key]));
        const from = this.state.volumes.get(drive.file);
        const storage = params.storage ?? drive.file.split(":")[0];
        if (this.isCloudInit(drive)) {
          const volid = `${storage}:vm-${newid}-cloudinit`;
          this.state.volumes.set(volid, { volid, storage, vmid: newid, size: 4 * 1024 ** 2, format: "raw", content: "images" });
          config[key] = this.printDrive(key, { ...drive, file: volid });
        } else if (drive.media !== "cdrom" && from) {
          const volid = this.state.nextDiskName(storage, newid);
          this.state.volumes.set(volid, { volid, storage, vmid: newid, size: from.size, format: from.format, content: "images" });
          config[key] = this.printDrive(key, { ...drive, file: volid, size: formatSize(from.size) });
          log(`drive '${key}': ${from.volid} -> ${volid} (${formatSize(from.size)})`);
        }
      }
      await sleep(this.options.cloneMs ?? 1500);
      delete vm.lock;
      this.state.save();
    });
  }

  /** PUT resize (resize_vm): grows a disk; the work (and its errors) happen in the task. */
  resize(call: Call): Json {
    const vm = this.vm(call.params);
    const { disk, size } = call.params;
    return this.task(call, "resize", String(vm.vmid), async () =>
      this.withVmLock(vm.vmid, () => {
        this.checkLock(vm);
        const config = this.state.view(vm);
        if (config[disk] === undefined) throw new Error(`disk '${disk}' does not exist`);
        const drive = this.parseDrive(disk, String(config[disk]));
        if (drive.media === "cdrom") throw new Error("you can't resize a cdrom");
        const volume = this.state.volumes.get(drive.file);
        if (!volume) throw new Error(`volume '${drive.file}' does not exist`);
        requirePrivileges(call.principal, `/storage/${volume.storage}`, ["Datastore.AllocateSpace"]);
        const grow = size.startsWith("+");
        const bytes = parseSize(grow ? size.slice(1) : size) ?? 0;
        const target = grow ? volume.size + bytes : bytes;
        if (target < volume.size) throw new Error("shrinking disks is not supported");
        volume.size = target;
        const printed = this.printDrive(disk, { ...drive, size: formatSize(target) });
        if (vm.pending[disk] !== undefined) vm.pending[disk] = printed;
        else vm.config[disk] = printed;
        this.state.save();
      }),
    );
  }

  /** POST template: a stopped VM becomes a template; its disks become base volumes (template_create). */
  template(call: Call): Json {
    const vm = this.vm(call.params);
    this.checkLock(vm);
    if (Number(this.state.view(vm).template ?? 0) === 1) throw dieError("you can't convert a template to a template");
    if (vm.status === "running") throw dieError("you can't convert a VM to template if VM is running");
    return this.task(call, "qmtemplate", String(vm.vmid), async () =>
      this.withVmLock(vm.vmid, () => {
        for (const key of Object.keys(vm.config).filter((k) => /^(ide|sata|scsi|virtio|efidisk|tpmstate)\d+$/.test(k))) {
          const drive = this.parseDrive(key, String(vm.config[key]));
          const volume = this.state.volumes.get(drive.file);
          if (!volume || this.isCloudInit(drive) || drive.media === "cdrom") continue;
          const base = drive.file.replace(/:vm-/, ":base-");
          this.state.volumes.delete(volume.volid);
          this.state.volumes.set(base, { ...volume, volid: base });
          vm.config[key] = this.printDrive(key, { ...drive, file: base });
        }
        vm.config.template = 1;
        this.state.save();
      }),
    );
  }

  /** DELETE (destroy_vm): a stopped, unlocked VM and its disks go; the host with them. */
  destroy(call: Call): Json {
    const vm = this.vm(call.params);
    if (vm.status === "running") throw dieError(`VM ${vm.vmid} is running - destroy failed`);
    if (Number(this.state.view(vm).protection ?? 0) === 1) throw dieError(`can't remove VM ${vm.vmid} - protection mode enabled`);
    return this.task(call, "qmdestroy", String(vm.vmid), async (log) => {
      await this.withVmLock(vm.vmid, async () => {
        this.checkLock(vm);
        vm.lock = "destroyed";
        for (const volume of [...this.state.volumes.values()].filter((v) => v.vmid === vm.vmid)) {
          log(`  Logical volume "${volume.volid.split(":")[1]}" successfully removed.`);
          this.state.volumes.delete(volume.volid);
        }
        await this.options.backend.destroy(vm.vmid);
        this.state.vms.delete(vm.vmid);
        this.state.save();
        this.log(`VM ${vm.vmid} destroyed (its host is gone)`);
      });
    });
  }

  // --- power --------------------------------------------------------------------------------------------------
  private runningMemoryMiB(except?: number): number {
    return [...this.state.vms.values()].filter((v) => v.status === "running" && v.vmid !== except).reduce((sum, v) => sum + memoryMiB(this.state.view(v).memory), 0);
  }

  status(call: Call): Json {
    const vm = this.vm(call.params);
    const config = this.state.view(vm);
    const running = vm.status === "running";
    const maxmem = memoryMiB(config.memory) * 1024 ** 2;
    return {
      vmid: vm.vmid,
      name: String(config.name ?? `VM ${vm.vmid}`),
      status: vm.status,
      qmpstatus: vm.status,
      cpus: this.cpus(config),
      maxmem,
      maxdisk: this.bootDiskSize(config),
      uptime: running && vm.startedAt ? now() - vm.startedAt : 0,
      cpu: running ? 0.02 : 0,
      mem: running ? Math.floor(maxmem * 0.3) : 0,
      disk: 0,
      diskread: 0,
      diskwrite: 0,
      netin: 0,
      netout: 0,
      ha: { managed: 0 },
      ...(running ? { pid: 200000 + vm.vmid, "running-machine": "pc-i440fx-9.2+pve1", "running-qemu": "9.2.0" } : {}),
      ...(config.agent !== undefined && /(^|,)(enabled=)?1(,|$)/.test(String(config.agent)) ? { agent: 1 } : {}),
      ...(config.template ? { template: 1 } : {}),
      ...(config.tags !== undefined ? { tags: String(config.tags) } : {}),
      ...(vm.lock ? { lock: vm.lock } : {}),
    };
  }

  /** Applies [PENDING] (a stopped VM's next start does, vmconfig_apply_pending). */
  private applyPending(vm: Vm): void {
    Object.assign(vm.config, vm.pending);
    for (const key of vm.pendingDelete) delete vm.config[key];
    vm.pending = {};
    vm.pendingDelete = [];
  }

  /** vm_start: the checks PVE makes in the start task, then the host boots with the VM's cloud-init seed. */
  private async powerOn(vm: Vm, log: (line: string) => void): Promise<void> {
    this.checkLock(vm);
    if (vm.status === "running") throw new Error(`VM ${vm.vmid} already running`);
    this.applyPending(vm);
    const config = vm.config;
    if (Number(config.template ?? 0) === 1) throw new Error("you can't start a vm if it's a template");
    const memory = memoryMiB(config.memory);
    const free = this.options.nodeMemoryMiB - this.runningMemoryMiB(vm.vmid);
    if (memory > free) {
      log(`kvm: cannot set up guest memory 'pc.ram': Cannot allocate memory (${memory} MiB asked, ${free} MiB free of the node's ${this.options.nodeMemoryMiB} MiB)`);
      throw new Error("start failed: QEMU exited with code 1");
    }
    const net0 = config.net0 !== undefined ? parsePropertyString(this.format("net[n]"), String(config.net0)) : undefined;
    if (net0?.bridge && !this.options.bridges.includes(net0.bridge)) throw new Error(`bridge '${net0.bridge}' does not exist`);
    const hasCloudInit = Object.entries(config).some(([k, v]) => /^(ide|sata|scsi)\d+$/.test(k) && this.isCloudInit(this.parseDrive(k, String(v))));
    const seed = hasCloudInit ? nocloudSeed(config, vm.vmid, this.format("net[n]"), this.format("ipconfig[n]"), this.options.dns) : { "user-data": "", "meta-data": `instance-id: ${vm.vmid}\n`, "network-config": "version: 1\nconfig: []\n", "vendor-data": "" };
    if (hasCloudInit) log("generating cloud-init ISO");
    const ip0 = config.ipconfig0 !== undefined ? parsePropertyString(this.format("ipconfig[n]"), String(config.ipconfig0)).ip : undefined;
    const addresses = ip0 && ip0.includes("/") ? [ip0] : [];
    await this.options.backend.start({ vmid: vm.vmid, name: String(config.name ?? `VM${vm.vmid}`), mac: net0?.macaddr ?? randomMac(), cpus: this.cpus(config), memoryMiB: memory, seed, addresses });
    vm.status = "running";
    vm.startedAt = now();
    this.state.save();
    this.log(`VM ${vm.vmid} (${config.name}) started: ${this.options.backend.description}`);
  }

  private async powerOff(vm: Vm, graceful: boolean): Promise<void> {
    if (vm.status !== "running") return; // _do_vm_stop returns early: TASK OK
    await this.options.backend.stop(vm.vmid, graceful);
    vm.status = "stopped";
    delete vm.startedAt;
    this.state.save();
    this.log(`VM ${vm.vmid} ${graceful ? "shut down" : "stopped"}`);
  }

  start(call: Call): Json {
    const vm = this.vm(call.params);
    return this.task(call, "qmstart", String(vm.vmid), (log) => this.withVmLock(vm.vmid, () => this.powerOn(vm, log)));
  }

  stop(call: Call): Json {
    return this.powerOffTask(call, "qmstop", false);
  }

  shutdown(call: Call): Json {
    return this.powerOffTask(call, "qmshutdown", true);
  }

  /** stop (at once) and shutdown (orderly): a locked running VM refuses, a stopped one is OK at once. */
  private powerOffTask(call: Call, type: string, graceful: boolean): Json {
    const vm = this.vm(call.params);
    return this.task(call, type, String(vm.vmid), () =>
      this.withVmLock(vm.vmid, async () => {
        if (vm.lock && vm.status === "running") this.checkLock(vm);
        await this.powerOff(vm, graceful);
      }),
    );
  }

  reboot(call: Call): Json {
    const vm = this.vm(call.params);
    if (vm.status !== "running") throw dieError(`VM ${vm.vmid} not running`);
    return this.task(call, "qmreboot", String(vm.vmid), (log) =>
      this.withVmLock(vm.vmid, async () => {
        await this.powerOff(vm, true);
        await this.powerOn(vm, log);
      }),
    );
  }

  /** GET agent/network-get-interfaces: the VM's host answers once qemu-guest-agent is installed in it. */
  async agentNetwork(call: Call): Promise<Json> {
    const vm = this.vm(call.params);
    const agent = this.state.view(vm).agent;
    if (agent === undefined) throw dieError("No QEMU guest agent configured");
    if (vm.status !== "running") throw dieError(`VM ${vm.vmid} is not running`);
    const interfaces: AgentInterface[] | undefined = await this.options.backend.agentInterfaces(vm.vmid);
    if (!interfaces) throw dieError("QEMU guest agent is not running");
    return { result: interfaces };
  }

  // --- tasks --------------------------------------------------------------------------------------------------
  private findTask(call: Call): Task {
    this.checkNode(call.params.node);
    const upid = call.params.upid;
    if (!/^UPID:[^:]+:[0-9A-F]{8}:[0-9A-F]{8,}:[0-9A-F]{8}:[^:]*:[^:]*:[^:]+:$/.test(upid)) throw paramError({ upid: "unable to parse worker upid" });
    const task = this.state.tasks.get(upid);
    if (!task) throw paramError({ upid: "no such task" });
    if (task.user !== call.principal.id && task.user !== call.principal.userid) requirePrivileges(call.principal, `/nodes/${this.node}`, ["Sys.Audit"]);
    return task;
  }

  taskStatus(call: Call): Json {
    const t = this.findTask(call);
    return { upid: t.upid, node: t.node, pid: t.pid, pstart: t.pstart, starttime: t.starttime, type: t.type, id: t.id, user: t.user, status: t.status, ...(t.exitstatus !== undefined ? { exitstatus: t.exitstatus } : {}) };
  }

  /** DELETE a task (pve-manager API2/Tasks.pm stop_task): a running one would be killed; a finished one is left as it is. */
  taskStop(call: Call): Json {
    const t = this.findTask(call);
    if (t.user !== call.principal.id && t.user !== call.principal.userid) requirePrivileges(call.principal, `/nodes/${this.node}`, ["Sys.Modify"]);
    if (t.status === "running") throw dieError("stopping a running task is not modelled by the simulator");
    return null;
  }

  taskLog(call: Call): Json {
    const t = this.findTask(call);
    const start = Number(call.params.start ?? 0);
    const limit = Number(call.params.limit ?? 50);
    return t.log.slice(start, start + limit).map((line, i) => ({ n: start + i + 1, t: line }));
  }

  // --- access -------------------------------------------------------------------------------------------------
  permissions(call: Call): Json {
    return { "/": Object.fromEntries([...call.principal.privileges].sort().map((p) => [p, 1])) };
  }

}
