/** Shared test fixtures: a valid configuration built from the committed test key. */
import * as path from "node:path";
import { buildConfig, ClusterConfig } from "../constructs/config";

export const FIXTURES = path.resolve(__dirname, "terraform", "fixtures");

export function testConfig(overrides: Record<string, unknown> = {}): ClusterConfig {
  return buildConfig(
    {
      proxmox_endpoint: "https://192.168.1.2:8006/",
      template_vm_id: 9000,
      ssh_public_key_file: "id_ed25519.pub",
      ssh_private_key_file: "/home/operator/.ssh/id_ed25519",
      k3s_version: "v1.31.1+k3s1",
      ...overrides,
    },
    { baseDir: FIXTURES },
  );
}
