import { Testing } from "cdktn";
import { afterEach, describe, expect, it } from "vitest";
import { K3sCluster } from "../../constructs/k3s-cluster";
import { renderInventory } from "../../constructs/inventory";
import { tempDir, testConfig } from "../helpers";

const scratch = tempDir("cdktf.outdir.");
type Json = Record<string, any>;

function synth(overrides: Record<string, unknown> = {}): Json {
  const config = testConfig(overrides);
  const app = Testing.app({ outdir: scratch() });
  const stack = new K3sCluster(app, "k3s", { config, rootDir: "/srv/k3s-proxmox" });
  return JSON.parse(Testing.synth(stack));
}

const vms = (json: Json): Record<string, Json> => json.resource.proxmox_virtual_environment_vm;

describe("K3sCluster", () => {
  afterEach(() => {
    delete process.env.PROXMOX_VE_API_TOKEN;
  });

  it("creates the design document's three VMs and one inventory file", () => {
    const json = synth();
    expect(Object.keys(vms(json))).toEqual(["k3s-master-1", "k3s-worker-1", "k3s-worker-2"]);
    expect(Object.keys(json.resource.local_file)).toEqual(["inventory"]);
  });

  it("adds exactly one VM per extra worker, keeping the others' addresses", () => {
    const json = synth({ worker_count: 3 });
    expect(Object.keys(vms(json))).toEqual(["k3s-master-1", "k3s-worker-1", "k3s-worker-2", "k3s-worker-3"]);
    expect(vms(json)["k3s-worker-2"]).toEqual(vms(synth())["k3s-worker-2"]);
  });

  it("clones each VM fully from the template with virtio, iothread, CPU host and cloud-init", () => {
    const vm = vms(synth({ vm_id_base: 700, worker_cores: 4, worker_memory_mib: 8192, worker_disk_gib: 64 }))["k3s-worker-2"];
    expect(vm).toMatchObject({
      name: "k3s-worker-2",
      node_name: "pve",
      vm_id: 711,
      on_boot: true,
      started: true,
      stop_on_destroy: true,
      tags: ["k3s", "worker"],
      clone: { vm_id: 9000, full: true, datastore_id: "local-lvm" },
      cpu: { cores: 4, type: "host" },
      memory: { dedicated: 8192 },
      scsi_hardware: "virtio-scsi-single",
      disk: [{ interface: "scsi0", datastore_id: "local-lvm", size: 64, iothread: true }],
      network_device: [{ bridge: "vmbr0", model: "virtio" }],
      initialization: {
        datastore_id: "local-lvm",
        ip_config: [{ ipv4: { address: "192.168.1.21/24", gateway: "192.168.1.1" } }],
        dns: { servers: ["192.168.1.1"] },
        user_account: { username: "debian", keys: [expect.stringMatching(/^ssh-ed25519 AAAA/)] },
      },
    });
  });

  it("gives no VM the API's virtual IP and puts it in the outputs: the API URL follows it", () => {
    const json = synth({ master_count: 3, api_vip: "192.168.1.9" });
    const addresses = Object.values(vms(json)).map((vm) => vm.initialization.ip_config[0].ipv4.address);
    expect(addresses).toHaveLength(5);
    expect(addresses).not.toContain("192.168.1.9/24");
    expect(json.output.api_vip.value).toBe("192.168.1.9");
    expect(json.output.kubernetes_api.value).toBe("https://192.168.1.9:6443");
    expect(synth().output).toMatchObject({ api_vip: { value: "" }, kubernetes_api: { value: "https://192.168.1.10:6443" } });
  });

  it("enables the guest agent without letting apply wait 15 minutes for it", () => {
    const vm = vms(synth())["k3s-master-1"];
    expect(vm.agent).toEqual({ enabled: true, trim: true, timeout: "15s" });
  });

  it("writes the inventory computed from the configuration, mode 0644, below output_dir", () => {
    const json = synth({ worker_count: 3 });
    expect(json.variable.output_dir.default).toBe("/srv/k3s-proxmox");
    expect(json.resource.local_file.inventory).toMatchObject({
      filename: "${var.output_dir}/ansible/inventory/hosts.ini",
      content: renderInventory(testConfig({ worker_count: 3 })),
      file_permission: "0644",
    });
  });

  it("keeps the Proxmox credentials out of the synthesized JSON", () => {
    process.env.PROXMOX_VE_API_TOKEN = "root@pam!leak=5ecret-50-5ecret";
    const text = JSON.stringify(synth());
    expect(text).not.toContain("5ecret");
    const provider = JSON.parse(text).provider.proxmox[0];
    expect(provider).toEqual({ endpoint: "https://192.168.1.2:8006/", insecure: false });
  });
});
