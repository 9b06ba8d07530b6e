import { Testing } from "cdktn";
import { describe, expect, it } from "vitest";
import { TemplateStack } from "../../constructs/template-stack";
import { K3sCluster } from "../../constructs/k3s-cluster";
import { tempDir, testConfig } from "../helpers";

const scratch = tempDir("cdktf.outdir.");
type Json = Record<string, any>;

function synth(overrides: Record<string, unknown> = {}): Json {
  const config = testConfig(overrides);
  const app = Testing.app({ outdir: scratch() });
  const stack = new TemplateStack(app, "template", { config, image: config.template.image!, rootDir: "/srv/k3s-proxmox" });
  return JSON.parse(Testing.synth(stack));
}

const CHECKSUM = "ab".repeat(32);
const CUSTOM = { template_image: "custom", template_image_url: "http://mirror.lan/noble-server-cloudimg-amd64.img", template_image_checksum: `sha256:${CHECKSUM}` };

describe("TemplateStack", () => {
  it("has its own state, beside the cluster's, so that make destroy of the cluster leaves it", () => {
    expect(synth().terraform.backend.local.path).toBe("/srv/k3s-proxmox/terraform.template.tfstate");
  });

  it("downloads the image onto the node's import storage, verified by the published checksum", () => {
    expect(synth(CUSTOM).resource.proxmox_virtual_environment_download_file.image).toMatchObject({
      node_name: "pve",
      datastore_id: "local",
      content_type: "import",
      url: "http://mirror.lan/noble-server-cloudimg-amd64.img",
      file_name: "noble-server-cloudimg-amd64.qcow2",
      checksum: CHECKSUM,
      checksum_algorithm: "sha256",
    });
    expect(synth().resource.proxmox_virtual_environment_download_file.image).toMatchObject({ checksum_algorithm: "sha512", file_name: expect.stringMatching(/^debian-12-genericcloud-amd64-.*\.qcow2$/) });
  });

  it("creates the template with the image imported on scsi0, a cloud-init drive, the serial console and the agent", () => {
    const vm = synth({ ...CUSTOM, template_vm_id: 9100, template_name: "noble", template_disk_gib: 10, datastore: "fast", bridge: "vmbr1" }).resource.proxmox_virtual_environment_vm.template;
    expect(vm).toMatchObject({
      vm_id: 9100,
      name: "noble",
      template: true,
      started: false,
      on_boot: false,
      agent: { enabled: true },
      scsi_hardware: "virtio-scsi-single",
      disk: [{ interface: "scsi0", datastore_id: "fast", import_from: "${proxmox_virtual_environment_download_file.image.id}", size: 10, iothread: true, discard: "on" }],
      boot_order: ["scsi0"],
      initialization: { datastore_id: "fast" },
      serial_device: [{ device: "socket" }],
      vga: { type: "serial0" },
      network_device: [{ bridge: "vmbr1", model: "virtio" }],
    });
    expect(vm.clone).toBeUndefined();
  });

  it("gives the presets a disk at least their image's size", () => {
    expect(synth().resource.proxmox_virtual_environment_vm.template.disk[0].size).toBe(3);
    expect(synth({ template_image: "ubuntu-24.04" }).resource.proxmox_virtual_environment_vm.template.disk[0].size).toBe(4);
  });

  it("holds no credential: the provider reads the token from the environment", () => {
    process.env.PROXMOX_VE_API_TOKEN = "terraform@pve!k3s=do-not-leak-5d2f";
    try {
      expect(JSON.stringify(synth())).not.toContain("do-not-leak-5d2f");
    } finally {
      delete process.env.PROXMOX_VE_API_TOKEN;
    }
  });
});

describe("the cluster stack's template check", () => {
  const check = (overrides: Record<string, unknown>) => {
    const app = Testing.app({ outdir: scratch() });
    const json = JSON.parse(Testing.synth(new K3sCluster(app, "k3s", { config: testConfig(overrides), rootDir: "/srv" })));
    return json.resource.terraform_data.template_check.lifecycle.precondition[0].error_message as string;
  };

  it("says make apply builds the template when the stack does, and how to make one when it is prebuilt", () => {
    expect(check({})).toContain("make apply builds it first (make template)");
    expect(check({ template_image: "prebuilt" })).toContain('Build it (README.md, "A template made by hand")');
  });
});
