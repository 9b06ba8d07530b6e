/** Shared test fixtures: a valid configuration built from the committed test key. */
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll } from "vitest";
import { buildConfig, ClusterConfig } from "../constructs/config";

export const FIXTURES = path.resolve(__dirname, "terraform", "fixtures");
export const REPO = path.resolve(__dirname, "..");

/** The bin/ of the Python venv `make setup` creates (keyed by requirements.txt, like scripts/setup-python.sh). */
const requirementsHash = crypto.createHash("sha256").update(fs.readFileSync(path.join(REPO, "requirements.txt"))).digest("hex").slice(0, 12);
export const VENV_BIN = path.join(process.env.K3SPVE_CACHE || path.join(os.homedir(), ".cache/k3s-proxmox"), `venv-${requirementsHash}`, "bin");

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

/** A scratch directory for one test file, made on first use and removed after the file's tests. */
export function tempDir(prefix: string): () => string {
  let dir: string | undefined;
  afterAll(() => {
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });
  return () => (dir ??= fs.mkdtempSync(path.join(os.tmpdir(), prefix)));
}

/** The environment for running ansible-playbook from a test: the venv's Python, no ansible.cfg, JSON output, all
 * of Ansible's scratch files in `dir`. */
export function ansibleTestEnv(dir: string): NodeJS.ProcessEnv {
  return {
    ...process.env,
    ANSIBLE_CONFIG: "",
    ANSIBLE_STDOUT_CALLBACK: "json",
    ANSIBLE_LOCALHOST_WARNING: "0",
    ANSIBLE_PYTHON_INTERPRETER: path.join(VENV_BIN, "python"),
    ANSIBLE_LOCAL_TEMP: dir,
    ANSIBLE_HOME: dir,
  };
}
