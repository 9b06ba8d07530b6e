/**
 * The cloud-init template, built through the Proxmox API: the Proxmox node downloads the cloud image (verified by
 * its published checksum) to a file storage, and a VM template is created with that image imported as its disk.
 *
 * A stack of its own, with its own state (`terraform.template.tfstate`), so that it outlives `make destroy` of the
 * cluster: `make template` (and `make apply`, first) builds it, `make template-destroy` removes it.
 */
import { Construct } from "constructs";
import { LocalBackend, TerraformOutput, TerraformStack } from "cdktn";
import * as path from "node:path";
import { ProxmoxProvider } from "../.gen/providers/proxmox/provider";
import { VirtualEnvironmentDownloadFile } from "../.gen/providers/proxmox/virtual-environment-download-file";
import { VirtualEnvironmentVm } from "../.gen/providers/proxmox/virtual-environment-vm";
import type { ClusterConfig, TemplateImage } from "./config";

export interface TemplateStackProps {
  readonly config: ClusterConfig;
  /** The image; the stack exists only when something builds the template. */
  readonly image: TemplateImage;
  /** Folder of the Terraform state (`terraform.template.tfstate`). @default the current directory */
  readonly rootDir?: string;
}

/** How long the Proxmox node may take to download the image: a cloud image is 300-700 MB. */
export const DOWNLOAD_TIMEOUT_S = 1800;

export class TemplateStack extends TerraformStack {
  readonly image: VirtualEnvironmentDownloadFile;
  readonly template: VirtualEnvironmentVm;

  constructor(scope: Construct, id: string, props: TemplateStackProps) {
    super(scope, id);
    const { config, image } = props;
    const rootDir = path.resolve(props.rootDir ?? process.cwd());
    new LocalBackend(this, { path: path.join(rootDir, `terraform.${id}.tfstate`) });
    // The token comes from PROXMOX_VE_API_TOKEN, as for the cluster stack.
    new ProxmoxProvider(this, "proxmox", { endpoint: config.proxmox.endpoint, insecure: config.proxmox.insecure });

    const { node, datastore, bridge } = config.proxmox;
    this.image = new VirtualEnvironmentDownloadFile(this, "image", {
      nodeName: node,
      datastoreId: config.template.imageDatastore,
      contentType: "import",
      url: image.url,
      fileName: image.fileName,
      checksum: image.checksum,
      checksumAlgorithm: image.checksumAlgorithm,
      uploadTimeout: DOWNLOAD_TIMEOUT_S,
    });
    this.image.overrideLogicalId("image");

    this.template = new VirtualEnvironmentVm(this, "template", {
      name: config.template.name,
      nodeName: node,
      vmId: config.template.vmId,
      description: `Cloud-init template built by k3s-proxmox (make template) from ${image.url}. make template-destroy removes it.`,
      tags: ["k3s-proxmox", "template"],
      template: true,
      started: false,
      onBoot: false,
      agent: { enabled: true },
      cpu: { cores: 2, type: "host" },
      memory: { dedicated: 2048 },
      operatingSystem: { type: "l26" },
      scsiHardware: "virtio-scsi-single",
      disk: [{ interface: "scsi0", datastoreId: datastore, importFromAttribute: this.image.id, size: image.diskGiB, iothread: true, discard: "on" }],
      bootOrder: ["scsi0"],
      networkDevice: [{ bridge, model: "virtio" }],
      serialDevice: [{ device: "socket" }],
      vga: { type: "serial0" },
      // The cloud-init drive: each clone gets its own user, key and address from the cluster stack.
      initialization: { datastoreId: datastore },
    });
    this.template.overrideLogicalId("template");

    new TerraformOutput(this, "template_vm_id", { value: config.template.vmId, description: "VM id of the template the cluster's VMs are cloned from." });
    new TerraformOutput(this, "image_volume", { value: this.image.id, description: "The downloaded cloud image on the Proxmox node's storage." });
  }
}
