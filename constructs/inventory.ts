/**
 * The Ansible inventory, `ansible/inventory/hosts.ini`, written by `terraform apply` as a `local_file`.
 * Its content comes from the configuration alone, so it is right before any VM reports anything.
 */
import { Construct } from "constructs";
import * as path from "node:path";
import { File } from "../.gen/providers/local/file";
import type { ClusterConfig, NodeSpec } from "./config";

export const INVENTORY_PATH = "ansible/inventory/hosts.ini";

/** The groups the playbooks target: `master`, `workers`, and `k3s_cluster` holding both. */
export function renderInventory(config: ClusterConfig): string {
  const hosts = (nodes: readonly NodeSpec[]) => nodes.map((n) => `${n.name} ansible_host=${n.ip}`);
  const sections: [string, string[]][] = [
    ["master", hosts(config.masters)],
    ["workers", hosts(config.workers)],
    ["k3s_cluster:children", ["master", "workers"]],
    [
      "k3s_cluster:vars",
      [`ansible_user=${config.access.sshUser}`, `ansible_ssh_private_key_file=${config.access.sshPrivateKeyFile}`],
    ],
  ];
  const header = "# Written by `make apply` from terraform.tfvars (constructs/inventory.ts). Do not edit: change the configuration.";
  return [header, ...sections.map(([name, lines]) => [`[${name}]`, ...lines].join("\n"))].join("\n\n") + "\n";
}

export interface InventoryProps {
  /** The cluster whose nodes are listed. */
  readonly config: ClusterConfig;
  /** Where the file is written. @default `ansible/inventory/hosts.ini` under the current directory */
  readonly filename?: string;
}

/** The `local_file` that writes the inventory. */
export class Inventory extends Construct {
  readonly file: File;

  constructor(scope: Construct, id: string, props: InventoryProps) {
    super(scope, id);
    this.file = new File(this, "hosts", {
      filename: props.filename ?? path.resolve(INVENTORY_PATH),
      content: renderInventory(props.config),
      filePermission: "0644",
      directoryPermission: "0755",
    });
    this.file.overrideLogicalId("inventory");
  }
}
