/** The whole cluster as one stack: the Proxmox and local providers, the node pools and the inventory. */
import { Construct } from "constructs";
import { LocalBackend, TerraformOutput, TerraformStack, TerraformVariable } from "cdktn";
import * as path from "node:path";
import { LocalProvider } from "../.gen/providers/local/provider";
import { ProxmoxProvider } from "../.gen/providers/proxmox/provider";
import { apiAddressOf, type ClusterConfig } from "./config";
import { ConfigVariables } from "./config-variables";
import { INVENTORY_PATH, Inventory } from "./inventory";
import { NodePool } from "./node-pool";
import { TemplateCheck } from "./template-check";

export interface K3sClusterProps {
  /** The validated configuration. */
  readonly config: ClusterConfig;
  /** Default of the `output_dir` variable, below which `ansible/inventory/hosts.ini` is written, and the folder of the
   * Terraform state (`terraform.k3s.tfstate`). @default the current directory */
  readonly rootDir?: string;
}

export class K3sCluster extends TerraformStack {
  readonly masters: NodePool;
  readonly workers: NodePool;
  readonly inventory: Inventory;

  constructor(scope: Construct, id: string, props: K3sClusterProps) {
    super(scope, id);
    const { config } = props;
    const rootDir = path.resolve(props.rootDir ?? process.cwd());
    // The state beside the operator's other files (the repository, or a test's own folder), never in cdktf.out/.
    new LocalBackend(this, { path: path.join(rootDir, `terraform.${id}.tfstate`) });

    // Credentials are not set here: the provider reads PROXMOX_VE_API_TOKEN (or _USERNAME/_PASSWORD) from
    // the environment, so they never reach the synthesized JSON.
    new ProxmoxProvider(this, "proxmox", { endpoint: config.proxmox.endpoint, insecure: config.proxmox.insecure });
    new LocalProvider(this, "local");
    new ConfigVariables(this, "tfvars");

    const template = new TemplateCheck(this, "template", { node: config.proxmox.node, templateVmId: config.template.vmId, built: config.template.image !== undefined });
    this.masters = new NodePool(this, "masters", { config, nodes: config.masters, dependsOn: [template.check] });
    this.workers = new NodePool(this, "workers", { config, nodes: config.workers, dependsOn: [template.check] });

    // The files apply writes (the inventory) go below this folder: the repository, or a test's own folder.
    const outputDir = new TerraformVariable(this, "output_dir", {
      type: "string",
      default: rootDir,
      description: "Folder below which apply writes ansible/inventory/hosts.ini.",
    });
    outputDir.overrideLogicalId("output_dir");
    this.inventory = new Inventory(this, "inventory", { config, filename: `${outputDir.stringValue}/${INVENTORY_PATH}` });

    const nodes = [...config.masters, ...config.workers];
    new TerraformOutput(this, "node_addresses", {
      value: Object.fromEntries(nodes.map((n) => [n.name, n.ip])),
      description: "Address of every node, by name.",
    });
    new TerraformOutput(this, "kubernetes_api", {
      value: `https://${apiAddressOf(config)}:6443`,
      description: "URL of the Kubernetes API: the virtual IP (api_vip) when set, else the master's address.",
    });
    new TerraformOutput(this, "api_vip", {
      value: config.network.apiVip ?? "",
      description: "The API's virtual IP, held by a healthy master (empty: none configured). No VM is given this address.",
    });
  }
}
