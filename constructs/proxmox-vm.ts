/**
 * One K3s node: a Proxmox VM fully cloned from a cloud-init template, configured the way K3s wants it.
 */
import { Construct } from "constructs";
import type { ITerraformDependable } from "cdktn";
import { VirtualEnvironmentVm } from "../.gen/providers/proxmox/virtual-environment-vm";

export interface ProxmoxVmProps {
  /** VM name and hostname, e.g. `k3s-worker-1`. */
  readonly name: string;
  /** Proxmox node the VM runs on. */
  readonly node: string;
  /** VM id; Proxmox picks the next free one when absent. @default undefined */
  readonly vmId?: number;
  /** VM id of the cloud-init template to fully clone. */
  readonly templateVmId: number;
  /** vCPUs (CPU type `host`). @default 2 */
  readonly cores?: number;
  /** Memory in MiB. @default 4096 */
  readonly memoryMiB?: number;
  /** Size of the boot disk (`scsi0`) in GiB; the template's disk is grown to it. @default 32 */
  readonly diskGiB?: number;
  /** Datastore for the disk and the cloud-init drive. @default "local-lvm" */
  readonly datastore?: string;
  /** Bridge of the virtio NIC. @default "vmbr0" */
  readonly bridge?: string;
  /** Static address with prefix, e.g. `192.168.1.20/24`. */
  readonly ipv4: string;
  /** Default gateway. */
  readonly gateway: string;
  /** DNS servers given by cloud-init. */
  readonly dnsServers: readonly string[];
  /** User cloud-init creates. */
  readonly user: string;
  /** Public key installed for `user`. */
  readonly sshPublicKey: string;
  /** Proxmox tags. @default [] */
  readonly tags?: readonly string[];
  /** Resources the VM is created after. @default [] */
  readonly dependsOn?: readonly ITerraformDependable[];
}

/**
 * How long the provider waits for the guest agent to report addresses when it reads the VM.
 * The addresses are known from the configuration and the agent is only installed by `make provision`,
 * so the provider must not sit on its 15-minute default.
 */
export const AGENT_TIMEOUT = "15s";

export class ProxmoxVm extends Construct {
  readonly vm: VirtualEnvironmentVm;

  constructor(scope: Construct, id: string, props: ProxmoxVmProps) {
    super(scope, id);
    const datastore = props.datastore ?? "local-lvm";
    this.vm = new VirtualEnvironmentVm(this, "vm", {
      name: props.name,
      nodeName: props.node,
      dependsOn: props.dependsOn ? [...props.dependsOn] : undefined,
      vmId: props.vmId,
      description: "K3s node managed by k3s-proxmox (make apply). Changes made by hand are overwritten.",
      tags: [...(props.tags ?? [])].sort(),
      onBoot: true,
      started: true,
      stopOnDestroy: true,
      clone: { vmId: props.templateVmId, full: true, datastoreId: datastore },
      agent: { enabled: true, trim: true, timeout: AGENT_TIMEOUT },
      cpu: { cores: props.cores ?? 2, type: "host" },
      memory: { dedicated: props.memoryMiB ?? 4096 },
      operatingSystem: { type: "l26" },
      scsiHardware: "virtio-scsi-single",
      disk: [{ interface: "scsi0", datastoreId: datastore, size: props.diskGiB ?? 32, iothread: true, discard: "on" }],
      networkDevice: [{ bridge: props.bridge ?? "vmbr0", model: "virtio" }],
      serialDevice: [{ device: "socket" }],
      initialization: {
        datastoreId: datastore,
        ipConfig: [{ ipv4: { address: props.ipv4, gateway: props.gateway } }],
        dns: { servers: [...props.dnsServers] },
        userAccount: { username: props.user, keys: [props.sshPublicKey] },
      },
    });
    // `proxmox_virtual_environment_vm.k3s-worker-2` in plans and state, rather than a hashed path.
    this.vm.overrideLogicalId(props.name);
  }
}
