/**
 * The Proxmox VE API simulator's command line (lab/lab.sh runs it; see README.md):
 *   main.ts init --dir DIR [options]   write DIR/config.json and DIR/token (both 0600) for a lab
 *   main.ts serve --config FILE        serve the API until SIGTERM
 *   main.ts image --out FILE [--gib N] write an empty qcow2 of N GiB (default 3): a stand-in cloud image for make template
 */
import { execFileSync } from "node:child_process";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { TERRAFORM_ROLE_PRIVILEGES } from "../../constructs/proxmox-role";
import { HostBackend, NoHostBackend } from "./backend";
import { HostsBackend } from "./backend/hosts";
import { Simulator, SimulatorOptions } from "./api/simulator";
import { writeEmptyQcow2 } from "./model/image";
import { PVE_VERSIONS, PveVersion } from "./schema";
import { makeCertificate, PveApiServer, UserSpec } from "./server";

/** The configuration file `init` writes: the simulator's options that are data, plus where it listens and who may call. */
export interface SimulatorConfig
  extends Pick<SimulatorOptions, "pveVersion" | "node" | "stateDir" | "nodeMemoryMiB" | "nodeCpus" | "storages" | "bridges" | "templates"> {
  readonly listen: string;
  readonly port: number;
  /** The node's own DNS servers (what a VM without `nameserver` gets). */
  readonly nameservers: readonly string[];
  readonly users: readonly UserSpec[];
  /** `hosts`: VMs are lab/hosts.sh machines (root); `none`: API state only. */
  readonly backend: { readonly type: "hosts"; readonly script: string; readonly env: Record<string, string> } | { readonly type: "none"; readonly agent?: boolean };
}

function fail(message: string): never {
  console.error(`[pve-sim] ERROR: ${message}`);
  process.exit(2);
}

/** `--name value` options. */
function options(args: readonly string[]): Record<string, string> {
  const result: Record<string, string> = {};
  for (let i = 0; i < args.length; i++) {
    if (!args[i].startsWith("--")) fail(`unexpected argument '${args[i]}'`);
    const name = args[i].slice(2);
    if (args[i + 1] === undefined || args[i + 1].startsWith("--")) result[name] = "1";
    else result[name] = args[++i];
  }
  return result;
}

/** The machine's own DNS servers (not a loopback stub), which PVE gives a VM that sets no nameserver. */
function hostNameservers(): string[] {
  for (const file of ["/etc/resolv.conf", "/run/systemd/resolve/resolv.conf"]) {
    if (!fs.existsSync(file)) continue;
    const found = [...fs.readFileSync(file, "utf8").matchAll(/^nameserver\s+([0-9.]+)\s*$/gm)].map((m) => m[1]).filter((ip) => !ip.startsWith("127."));
    if (found.length > 0) return found;
  }
  return [];
}

/**
 * `init`: one node `pve` with the storages a default PVE install has (local-lvm for disks, local for files), the
 * bridge vmbr0, the template of `--template-id` (`none`: no template; make template builds one), and the user terraform@pve whose token `k3s` holds exactly the
 * privileges README.md lists for the simulated version. The node may hand out the machine's memory to VMs.
 */
function init(opts: Record<string, string>): void {
  const dir = opts.dir ?? fail("init: --dir DIR is required");
  const version = (opts["pve-version"] ?? "9.1") as PveVersion;
  if (!PVE_VERSIONS.includes(version)) fail(`--pve-version ${version}: must be one of ${PVE_VERSIONS.join(", ")}`);
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const tokenFile = path.join(dir, "token");
  if (!fs.existsSync(tokenFile)) fs.writeFileSync(tokenFile, `terraform@pve!k3s=${crypto.randomUUID()}\n`, { mode: 0o600 });
  const secret = fs.readFileSync(tokenFile, "utf8").trim().split("=")[1];
  const memTotalKiB = Number(/^MemTotal:\s+(\d+)/m.exec(fs.readFileSync("/proc/meminfo", "utf8"))?.[1] ?? 8 * 1024 ** 2);
  const backend: SimulatorConfig["backend"] =
    opts.backend === "none"
      ? { type: "none", agent: opts.agent === "1" }
      : {
          type: "hosts",
          script: path.resolve(__dirname, "..", "hosts.sh"),
          env: Object.fromEntries(Object.entries(process.env).filter(([k]) => /^(LAB_|K3SPVE_CACHE$|DEBIAN_)/.test(k)) as [string, string][]),
        };
  const config: SimulatorConfig = {
    listen: opts.listen ?? "127.0.0.1",
    port: Number(opts.port ?? 8006),
    pveVersion: version,
    node: "pve",
    stateDir: path.join(dir, "state"),
    nodeMemoryMiB: Number(opts["node-memory-mib"] ?? Math.floor(memTotalKiB / 1024)),
    nodeCpus: os.cpus().length,
    storages: [
      { id: "local-lvm", type: "lvmthin", content: ["images", "rootdir"], totalGiB: 500 },
      { id: "local", type: "dir", content: ["iso", "vztmpl", "backup", "import", "snippets"], totalGiB: 100 },
    ],
    bridges: ["vmbr0"],
    nameservers: hostNameservers(),
    templates: opts["template-id"] === "none" ? [] : [{ vmid: Number(opts["template-id"] ?? 9000), name: "debian12-cloud", storage: "local-lvm", bridge: "vmbr0", diskGiB: 3 }],
    users: [{ userid: "terraform@pve", privileges: TERRAFORM_ROLE_PRIVILEGES[version === "8.4" ? "8" : "9"], tokens: [{ id: "k3s", secret, privsep: false }] }],
    backend,
  };
  fs.writeFileSync(path.join(dir, "config.json"), JSON.stringify(config, null, 1), { mode: 0o600 });
}

async function serve(file: string | undefined): Promise<void> {
  if (!file) fail("usage: main.ts serve --config <file.json> (main.ts init writes it)");
  let config: SimulatorConfig;
  try {
    config = JSON.parse(fs.readFileSync(file, "utf8")) as SimulatorConfig;
  } catch (error) {
    fail(`cannot read ${file}: ${(error as Error).message}`);
  }
  if (!PVE_VERSIONS.includes(config.pveVersion)) fail(`pveVersion = ${JSON.stringify(config.pveVersion)}: must be one of ${PVE_VERSIONS.join(", ")}`);
  fs.mkdirSync(config.stateDir, { recursive: true, mode: 0o700 });
  const logFile = fs.openSync(path.join(config.stateDir, "pve-sim.log"), "a");
  const log = (line: string) => {
    const text = `[pve-sim ${new Date().toISOString().slice(11, 19)}] ${line}\n`;
    fs.writeSync(logFile, text);
  };
  const backend: HostBackend = config.backend.type === "hosts" ? new HostsBackend(config.backend.script, path.join(config.stateDir, "cloudinit"), config.backend.env) : new NoHostBackend(config.backend.agent);
  const sim = new Simulator({
    pveVersion: config.pveVersion,
    node: config.node,
    stateDir: config.stateDir,
    nodeMemoryMiB: config.nodeMemoryMiB,
    nodeCpus: config.nodeCpus,
    storages: config.storages,
    bridges: config.bridges,
    dns: { nameservers: config.nameservers, searchdomains: [] },
    templates: config.templates,
    backend,
    log,
  });
  // VMs that ran before a restart: their hosts may have stopped meanwhile.
  for (const vm of sim.state.vms.values()) if (vm.status === "running" && !(await backend.isRunning(vm.vmid))) vm.status = "stopped";
  sim.state.save();
  let server: PveApiServer;
  try {
    server = new PveApiServer(sim, { users: config.users, statsFile: path.join(config.stateDir, "stats.json") });
  } catch (error) {
    fail((error as Error).message);
  }
  const cert = makeCertificate(config.stateDir, config.listen, config.node, (cmd, args) => execFileSync(cmd, args, { stdio: "ignore" }));
  await server.listen(config.listen, config.port, cert);
  const banner =
    `Proxmox VE API SIMULATOR (not Proxmox VE): PVE ${config.pveVersion} API schema, node '${config.node}', ` +
    `https://${config.listen}:${config.port}/ ; VMs: ${backend.description}`;
  log(banner);
  console.log(`[pve-sim] ${banner}`);
  const stop = () => {
    log("stopping (the hosts keep running until lab/lab.sh down)");
    process.exit(0);
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
}

const [command, ...rest] = process.argv.slice(2);
if (command === "init") init(options(rest));
else if (command === "image") {
  const opts = options(rest);
  writeEmptyQcow2(opts.out ?? fail("image: --out FILE is required"), Number(opts.gib ?? 3) * 1024 ** 3);
} else if (command === "serve") void serve(options(rest).config).catch((error: unknown) => fail((error as Error).stack ?? String(error)));
else fail("usage: main.ts init --dir DIR [--listen IP] [--port N] [--pve-version 8.4|9.1] [--backend hosts|none] [--agent] [--template-id N|none] [--node-memory-mib M] | main.ts serve --config FILE | main.ts image --out FILE [--gib N]");
