/**
 * What stands behind a simulated VM. The API model decides what a VM is (its configuration, state and tasks);
 * the backend makes it exist: a real host (`hosts`: a systemd-nspawn Debian 12 machine booted by cloud-init from
 * the VM's cloud-init settings, see lab/hosts.sh) or nothing at all (`none`: API state only, for unit tests of the
 * API and for trying the API without root).
 */

/** The NoCloud seed PVE writes to a VM's cloud-init drive (qemu-server src/PVE/QemuServer/Cloudinit.pm generate_nocloud). */
export interface CloudInitSeed {
  readonly "user-data": string;
  readonly "meta-data": string;
  readonly "network-config": string;
  readonly "vendor-data": string;
}

export interface HostSpec {
  readonly vmid: number;
  readonly name: string;
  /** MAC of net0, which the host's NIC gets (cloud-init matches its network configuration by it). */
  readonly mac: string;
  /** vCPUs (cores x sockets): the host's CPU quota. */
  readonly cpus: number;
  /** The host's memory limit. */
  readonly memoryMiB: number;
  readonly seed: CloudInitSeed;
  /** The static IPv4 addresses of ipconfig0 (`10.0.0.5/24`), for a backend that answers for the guest agent itself. */
  readonly addresses: readonly string[];
}

/** An interface as the QEMU guest agent's `guest-network-get-interfaces` reports it (qga/qapi-schema.json). */
export interface AgentInterface {
  readonly name: string;
  readonly "hardware-address": string;
  readonly "ip-addresses": readonly { readonly "ip-address": string; readonly "ip-address-type": "ipv4" | "ipv6"; readonly prefix: number }[];
  readonly statistics: Readonly<Record<"rx-bytes" | "rx-dropped" | "rx-errs" | "rx-packets" | "tx-bytes" | "tx-dropped" | "tx-errs" | "tx-packets", number>>;
}

export interface HostBackend {
  /** One line for the log: what a VM is here. */
  readonly description: string;
  /** Boots the VM's host; resolves once it runs (not once it has booted), as `qm start` does. */
  start(spec: HostSpec): Promise<void>;
  /** Powers the host off: `graceful` like an ACPI shutdown, else at once like `qm stop`. */
  stop(vmid: number, graceful: boolean): Promise<void>;
  /** Deletes the host and its disk. */
  destroy(vmid: number): Promise<void>;
  /** Whether the host runs (after a simulator restart, or when it powered itself off). */
  isRunning(vmid: number): Promise<boolean>;
  /** The guest agent's answer, or undefined while no agent runs in the host (`QEMU guest agent is not running`). */
  agentInterfaces(vmid: number): Promise<AgentInterface[] | undefined>;
}

/**
 * No hosts: a VM is API state only and nothing boots. Its guest agent is absent, unless `agent` is set: then it
 * answers with the VM's net0 MAC and ipconfig0 address, as a running guest with the agent installed would (the log
 * says so) — so that tests of the API path do not wait for the provider's agent timeout on every read.
 */
export class NoHostBackend implements HostBackend {
  readonly description: string;
  readonly running = new Set<number>();
  /** What each VM's agent reports. */
  readonly agents = new Map<number, AgentInterface[]>();

  constructor(private readonly agent = false) {
    this.description = `no hosts: VMs exist only as API state (nothing boots)${agent ? "; the guest agent's answer is simulated from net0 and ipconfig0" : "; no guest agent"}`;
  }

  async start(spec: HostSpec): Promise<void> {
    this.running.add(spec.vmid);
    if (this.agent) {
      const stats = { "rx-bytes": 0, "rx-dropped": 0, "rx-errs": 0, "rx-packets": 0, "tx-bytes": 0, "tx-dropped": 0, "tx-errs": 0, "tx-packets": 0 };
      this.agents.set(spec.vmid, [
        { name: "lo", "hardware-address": "00:00:00:00:00:00", "ip-addresses": [{ "ip-address": "127.0.0.1", "ip-address-type": "ipv4", prefix: 8 }], statistics: stats },
        {
          name: "eth0",
          "hardware-address": spec.mac.toLowerCase(),
          "ip-addresses": spec.addresses.map((a) => ({ "ip-address": a.split("/")[0], "ip-address-type": "ipv4" as const, prefix: Number(a.split("/")[1]) })),
          statistics: stats,
        },
      ]);
    }
  }
  async stop(vmid: number): Promise<void> {
    this.running.delete(vmid);
  }
  async destroy(vmid: number): Promise<void> {
    this.running.delete(vmid);
    this.agents.delete(vmid);
  }
  async isRunning(vmid: number): Promise<boolean> {
    return this.running.has(vmid);
  }
  async agentInterfaces(vmid: number): Promise<AgentInterface[] | undefined> {
    return this.running.has(vmid) ? this.agents.get(vmid) : undefined;
  }
}
