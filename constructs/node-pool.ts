/** The VMs of one role (masters or workers), all alike but for name, id and address. */
import { Construct } from "constructs";
import type { ITerraformDependable } from "cdktn";
import type { ClusterConfig, NodeSpec } from "./config";
import { ProxmoxVm } from "./proxmox-vm";

export interface NodePoolProps {
  /** The cluster configuration (Proxmox target, network, access). */
  readonly config: ClusterConfig;
  /** The nodes of this pool, from `config.masters` or `config.workers`. */
  readonly nodes: readonly NodeSpec[];
  /** What every VM waits for (the template check). @default [] */
  readonly dependsOn?: readonly ITerraformDependable[];
}

export class NodePool extends Construct {
  readonly vms: readonly ProxmoxVm[];

  constructor(scope: Construct, id: string, props: NodePoolProps) {
    super(scope, id);
    const { config } = props;
    this.vms = props.nodes.map(
      (node) =>
        // The construct id is the VM name, so raising a count adds resources and never renames existing ones.
        new ProxmoxVm(this, node.name, {
          name: node.name,
          node: config.proxmox.node,
          vmId: node.vmId,
          templateVmId: config.template.vmId,
          cores: node.cores,
          memoryMiB: node.memoryMiB,
          diskGiB: node.diskGiB,
          datastore: config.proxmox.datastore,
          bridge: config.proxmox.bridge,
          ipv4: `${node.ip}/${config.network.prefixLength}`,
          gateway: config.network.gateway,
          dnsServers: config.network.dnsServers,
          user: config.access.sshUser,
          sshPublicKey: config.access.sshPublicKey,
          tags: [config.clusterName, node.role],
          dependsOn: props.dependsOn,
        }),
    );
  }
}
