/**
 * Files a role writes, in one call of the project's module k3s_files (constructs/ansible/modules/) instead of a
 * template task per file: ansible.builtin.template makes two or three module calls per file even when nothing
 * changes, and on a no-op `make provision` those calls are most of the time. The contents are rendered on the
 * controller by the template lookup, from the role's templates/ folder, exactly as the template module would.
 */
import { Task, TaskKeywords } from "../model";

/** One file: from a template of the role (`template`) or a Jinja string (`content`), with its octal mode. */
export type RoleFile = { readonly dest: string; readonly mode: string } & ({ readonly template: string } | { readonly content: string });

export function writeFiles(name: string, files: readonly RoleFile[], keywords: TaskKeywords & { notify?: string | readonly string[]; register?: string } = {}): Task {
  return {
    name,
    module: "k3s_files",
    args: {
      files: files.map((f) => ({
        dest: f.dest,
        content: "template" in f ? `{{ lookup('ansible.builtin.template', '${f.template}') }}` : f.content,
        mode: f.mode,
      })),
    },
    ...keywords,
  };
}
