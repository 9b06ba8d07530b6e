/**
 * VMs as real hosts: each VM is a systemd-nspawn Debian 12 machine made and run by lab/hosts.sh (its `vm-*`
 * commands), booted by the real cloud-init from the NoCloud seed PVE would write to the VM's cloud-init drive.
 * Needs root on Linux.
 */
import { execFile } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { promisify } from "node:util";
import type { AgentInterface, HostBackend, HostSpec } from "./index";

const run = promisify(execFile);

/** `ip -j -s addr show` output (iproute2), the part the agent answer needs. */
interface IpAddr {
  readonly ifname: string;
  readonly address?: string;
  readonly addr_info?: readonly { readonly family: string; readonly local: string; readonly prefixlen: number }[];
  readonly stats64?: Readonly<Record<"rx" | "tx", { readonly bytes: number; readonly packets: number; readonly errors: number; readonly dropped: number }>>;
}

export class HostsBackend implements HostBackend {
  readonly description: string;

  /**
   * @param script lab/hosts.sh
   * @param seedRoot folder for the cloud-init seeds, one subfolder per VM (what PVE keeps in /run/pve/cloudinit/<vmid>/)
   * @param env the environment hosts.sh reads (E2E_RUN_DIR, E2E_SUBNET, E2E_BRIDGE, ...)
   */
  constructor(
    private readonly script: string,
    private readonly seedRoot: string,
    private readonly env: Readonly<Record<string, string>>,
  ) {
    this.description = `real hosts: systemd-nspawn Debian 12 machines booted by cloud-init (${script}, lab folder ${env.LAB_DIR ?? "/tmp/k3spve-lab"})`;
  }

  private async hosts(args: readonly string[]): Promise<string> {
    try {
      const { stdout } = await run("bash", [this.script, ...args], { env: { ...process.env, ...this.env }, maxBuffer: 16 * 1024 * 1024 });
      return stdout;
    } catch (error) {
      const e = error as { stderr?: string; code?: number; message: string };
      const detail = (e.stderr ?? "").trim().split("\n").slice(-3).join(" / ");
      throw Object.assign(new Error(`hosts.sh ${args[0]} failed: ${detail || e.message}`), { code: e.code });
    }
  }

  async start(spec: HostSpec): Promise<void> {
    const seed = path.join(this.seedRoot, String(spec.vmid));
    fs.rmSync(seed, { recursive: true, force: true });
    fs.mkdirSync(seed, { recursive: true, mode: 0o700 });
    for (const [name, content] of Object.entries(spec.seed)) fs.writeFileSync(path.join(seed, name), content, { mode: 0o600 });
    await this.hosts(["vm-start", String(spec.vmid), "--name", spec.name, "--mac", spec.mac, "--cpus", String(spec.cpus), "--memory-mib", String(spec.memoryMiB), "--seed", seed]);
  }

  async stop(vmid: number, graceful: boolean): Promise<void> {
    await this.hosts(["vm-stop", String(vmid), ...(graceful ? ["--graceful"] : [])]);
  }

  async destroy(vmid: number): Promise<void> {
    await this.hosts(["vm-destroy", String(vmid)]);
    fs.rmSync(path.join(this.seedRoot, String(vmid)), { recursive: true, force: true });
  }

  async isRunning(vmid: number): Promise<boolean> {
    return (await this.hosts(["vm-status", String(vmid)])).trim() === "running";
  }

  async agentInterfaces(vmid: number): Promise<AgentInterface[] | undefined> {
    let out: string;
    try {
      out = await this.hosts(["vm-agent", String(vmid)]);
    } catch (error) {
      if ((error as { code?: number }).code === 3) return undefined; // no qemu-guest-agent in the host, or not running
      throw error;
    }
    const links = JSON.parse(out) as IpAddr[];
    return links.map((link) => ({
      name: link.ifname,
      "hardware-address": link.address ?? "00:00:00:00:00:00",
      "ip-addresses": (link.addr_info ?? [])
        .filter((a) => a.family === "inet" || a.family === "inet6")
        .map((a) => ({ "ip-address": a.local, "ip-address-type": a.family === "inet" ? ("ipv4" as const) : ("ipv6" as const), prefix: a.prefixlen })),
      statistics: {
        "rx-bytes": link.stats64?.rx.bytes ?? 0,
        "rx-dropped": link.stats64?.rx.dropped ?? 0,
        "rx-errs": link.stats64?.rx.errors ?? 0,
        "rx-packets": link.stats64?.rx.packets ?? 0,
        "tx-bytes": link.stats64?.tx.bytes ?? 0,
        "tx-dropped": link.stats64?.tx.dropped ?? 0,
        "tx-errs": link.stats64?.tx.errors ?? 0,
        "tx-packets": link.stats64?.tx.packets ?? 0,
      },
    }));
  }
}
