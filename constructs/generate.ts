/**
 * Writes the generated Ansible and Kubernetes manifests. Synth calls it after the stack.
 *
 * Files that do not depend on the configuration (roles, playbooks) are committed, and a test fails when
 * they drift from their generator. Files that do (the inventory's group_vars, manifests/) are written below
 * the output folder — the repository unless K3SPVE_OUTPUT_DIR names another (tests, e2e) — and ignored by git.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { ansibleFiles } from "./ansible";
import { MANIFESTS_DIR, manifestFiles } from "./k8s";
import type { ClusterConfig } from "./config";
import type { GeneratedFile } from "./generated-file";

export const REPO_ROOT = path.resolve(__dirname, "..");

/** Where configuration-dependent files go, for synth and apply alike. */
export function outputDir(): string {
  return path.resolve(process.env.K3SPVE_OUTPUT_DIR || REPO_ROOT);
}

export function generatedFiles(config: ClusterConfig): GeneratedFile[] {
  return [...ansibleFiles(config), ...manifestFiles(config)];
}

/** Folders below the output folder that hold nothing but generated files: stale ones there are deleted. */
const OWNED_DIRS = [MANIFESTS_DIR, `${MANIFESTS_DIR}/removed`];

/** Writes every generated file, touching only files whose content changed. */
export function writeGenerated(config: ClusterConfig, roots = { repo: REPO_ROOT, output: outputDir() }): void {
  const files = generatedFiles(config);
  const written = new Set(files.filter((f) => f.configDependent).map((f) => f.path));
  for (const dir of OWNED_DIRS) {
    // Created even when empty: the deploy looks for files in each.
    const full = path.join(roots.output, dir);
    fs.mkdirSync(full, { recursive: true });
    for (const name of fs.readdirSync(full).filter((n) => n.endsWith(".yaml"))) {
      if (!written.has(`${dir}/${name}`)) fs.rmSync(path.join(full, name));
    }
  }
  for (const file of files) {
    const target = path.join(file.configDependent ? roots.output : roots.repo, file.path);
    if (fs.existsSync(target) && fs.readFileSync(target, "utf8") === file.content) continue;
    fs.mkdirSync(path.dirname(target), { recursive: true });
    fs.writeFileSync(target, file.content);
  }
}
