/**
 * Typed Ansible: the shapes the roles and playbooks are written in. `render.ts` turns them into YAML.
 *
 * Module names are a closed union of fully qualified `ansible.builtin.*` names, so a typo or a short
 * name (`apt:` instead of `ansible.builtin.apt:`) does not compile. The playbooks use ansible.builtin only:
 * ansible-core is the whole dependency, and no collection has to be fetched from anywhere.
 */

/** Every module the roles use. Add a name here before using it. */
export type Module =
  | "ansible.builtin.apt"
  | "ansible.builtin.assert"
  | "ansible.builtin.blockinfile"
  | "ansible.builtin.command"
  | "ansible.builtin.copy"
  | "ansible.builtin.debug"
  | "ansible.builtin.dnf"
  | "ansible.builtin.fetch"
  | "ansible.builtin.find"
  | "ansible.builtin.fail"
  | "ansible.builtin.file"
  | "ansible.builtin.get_url"
  | "ansible.builtin.hostname"
  | "ansible.builtin.include_role"
  | "ansible.builtin.include_tasks"
  | "ansible.builtin.lineinfile"
  | "ansible.builtin.meta"
  | "ansible.builtin.package"
  | "ansible.builtin.pause"
  | "ansible.builtin.ping"
  | "ansible.builtin.replace"
  | "ansible.builtin.set_fact"
  | "ansible.builtin.service_facts"
  | "ansible.builtin.setup"
  | "ansible.builtin.shell"
  | "ansible.builtin.slurp"
  | "ansible.builtin.stat"
  | "ansible.builtin.systemd_service"
  | "ansible.builtin.template"
  | "ansible.builtin.uri"
  | "kubernetes.core.k8s"
  | "kubernetes.core.k8s_info"
  /** The apps role's certificates, made on the operator's machine (the `ansible` package brings the collection). */
  | "community.crypto.openssl_csr_pipe"
  | "community.crypto.openssl_privatekey_pipe"
  | "community.crypto.x509_certificate_info"
  | "community.crypto.x509_certificate_pipe"
  /** The project's own modules: the playbooks' (ansible/library/, from constructs/ansible/library/) and the roles'
   *  (ansible/roles/<role>/library/, from constructs/ansible/modules/). */
  | "etcd_snapshot_check"
  | RoleModule
  | "k3s_version_check";

/** The modules roles carry in their own library/ (constructs/ansible/modules/). */
export type RoleModule = "k3s_files" | "k3s_firewall" | "k3s_kernel";

/** A Jinja condition (without braces) or a list of them, all of which must hold. */
export type Condition = string | boolean | readonly string[];

/** Keywords a task, handler or block may carry besides its action. */
export interface TaskKeywords {
  readonly when?: Condition;
  readonly become?: boolean;
  readonly delegate_to?: string;
  readonly no_log?: boolean;
  readonly vars?: Readonly<Record<string, unknown>>;
  /** A failure of this task on any host stops the whole run. */
  readonly any_errors_fatal?: boolean;
  /** Run once for the whole batch (on its first host), the result shared by every host. */
  readonly run_once?: boolean;
}

/** One task (or handler): a name, one module with its arguments, and keywords. */
export interface Task extends TaskKeywords {
  readonly name: string;
  readonly module: Module;
  /** Module arguments; a string only for `ansible.builtin.meta`. */
  readonly args: Readonly<Record<string, unknown>> | string;
  readonly register?: string;
  readonly loop?: string | Folded | readonly unknown[];
  readonly loop_control?: Readonly<{ label?: string; loop_var?: string }>;
  readonly notify?: string | readonly string[];
  /** Handlers only: extra topics this handler answers to. */
  readonly listen?: string | readonly string[];
  readonly changed_when?: Condition;
  readonly failed_when?: Condition;
  readonly until?: Condition;
  readonly retries?: number | string;
  readonly delay?: number | string;
  readonly check_mode?: boolean;
  readonly ignore_unreachable?: boolean;
}

/** A block: tasks that share keywords, with an optional rescue that explains a failure. */
export interface Block extends TaskKeywords {
  readonly name: string;
  readonly block: readonly Item[];
  readonly rescue?: readonly Item[];
  readonly always?: readonly Item[];
}

export type Item = Task | Block;

export function isBlock(item: Item): item is Block {
  return "block" in item;
}

/** Argument spec types, as `meta/argument_specs.yml` names them. */
export type ArgType = "str" | "int" | "bool" | "list" | "dict" | "path" | "raw";

/** One role variable: its default (in defaults/main.yml) and its spec (in meta/argument_specs.yml). */
export interface RoleVariable {
  /** Prefixed with the role's name (ansible-lint's var-naming[no-role-prefix]). */
  readonly name: string;
  /** One or two sentences: the comment above the default and the spec's description. */
  readonly description: string;
  readonly type: ArgType;
  /** For lists: the type of the elements. */
  readonly elements?: ArgType;
  readonly choices?: readonly unknown[];
  /** The default; leave out for a required variable (set by the generated inventory/group_vars/all.yml). */
  readonly default?: unknown;
  readonly required?: boolean;
}

/** A role: everything under `ansible/roles/<name>/`. */
export interface Role {
  readonly name: string;
  /** The TypeScript file the role is written in, relative to the repository root (for the file headers). */
  readonly source: string;
  /** One line: argument_specs short_description and meta description. */
  readonly summary: string;
  /** Paragraphs for argument_specs' description. */
  readonly description: readonly string[];
  readonly variables: readonly RoleVariable[];
  /** Values derived from the variables (vars/main.yml), each with a comment. Not meant to be overridden. */
  readonly derived?: readonly { readonly name: string; readonly comment: string; readonly value: unknown }[];
  readonly tasks: readonly Item[];
  /**
   * Further task files (tasks/<name>.yml), each also an argument_specs entry point described by its one-line
   * summary, so a playbook can run that part of the role alone (`include_role` with `tasks_from: <name>`).
   */
  readonly taskFiles?: Readonly<Record<string, { readonly summary: string; readonly tasks: readonly Item[] }>>;
  readonly handlers?: readonly Task[];
  /** Roles that must run first on the same hosts (meta/main.yml dependencies). */
  readonly dependencies?: readonly string[];
  /** Absolute path of the folder holding the role's `*.j2` templates (copied verbatim). */
  readonly templatesDir?: string;
  /** The project's modules the role uses (constructs/ansible/modules/<name>.py, copied verbatim to its library/). */
  readonly modules?: readonly RoleModule[];
}

/** One play of a playbook. */
export interface Play {
  readonly name: string;
  readonly hosts: string;
  readonly connection?: "local";
  readonly gather_facts: boolean;
  readonly become?: boolean;
  readonly serial?: number | string;
  /** With serial: 0 ends the run when any host of a batch fails (the later batches do not start). */
  readonly max_fail_percentage?: number;
  readonly any_errors_fatal?: boolean;
  readonly vars?: Readonly<Record<string, unknown>>;
  readonly tasks?: readonly Item[];
  readonly roles?: readonly string[];
}

/** A Jinja expression that the renderer writes as a folded block (`>-`) so it stays readable. */
export class Folded {
  constructor(readonly text: string) {}
}

/** Text the renderer writes as a literal block (`|`), e.g. a multi-line file body. */
export class Literal {
  constructor(readonly text: string) {}
}

/**
 * A long expression or message, written as a folded block (`>-`) wrapped at the renderer's line width.
 * Write it over as many source lines as reads well: the lines are joined with single spaces.
 */
export function folded(text: string): Folded {
  return new Folded(
    text
      .split("\n")
      .map((line) => line.trim())
      .filter((line) => line.length > 0)
      .join(" "),
  );
}
