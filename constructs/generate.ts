/**
 * Writes the generated Ansible (and, later, manifests) to the repository. Synth calls it after the stack.
 *
 * Files that do not depend on the configuration (roles, playbooks) are committed, and a test fails when
 * they drift from their generator; files that do (group_vars) are written at synth time and ignored by git.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { ansibleFiles } from "./ansible";
import type { ClusterConfig } from "./config";

export interface GeneratedFile {
  /** Path relative to the repository root, e.g. `ansible/roles/base/tasks/main.yml`. */
  readonly path: string;
  readonly content: string;
  /** True when the content depends on the configuration (not committed). */
  readonly configDependent: boolean;
}

export const REPO_ROOT = path.resolve(__dirname, "..");

export function generatedFiles(config: ClusterConfig): GeneratedFile[] {
  return [...ansibleFiles(config)];
}

/** Writes every generated file under `root`, touching only files whose content changed. */
export function writeGenerated(config: ClusterConfig, root = REPO_ROOT): void {
  for (const file of generatedFiles(config)) {
    const target = path.join(root, file.path);
    if (fs.existsSync(target) && fs.readFileSync(target, "utf8") === file.content) continue;
    fs.mkdirSync(path.dirname(target), { recursive: true });
    fs.writeFileSync(target, file.content);
  }
}
