/** One file the generators write: the shape shared by the Ansible and manifest generators and the writer. */
export interface GeneratedFile {
  /** Path relative to the repository root, e.g. `ansible/roles/base/tasks/main.yml`. */
  readonly path: string;
  readonly content: string;
  /** True when the content depends on the configuration (not committed). */
  readonly configDependent: boolean;
}
