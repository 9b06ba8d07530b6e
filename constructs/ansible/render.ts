/**
 * Typed Ansible -> YAML text, through the `yaml` library's document model (never string concatenation):
 * tasks get a fixed key order (name, action, keywords, then block/rescue/always, as ansible-lint's
 * key-order wants), a blank line between tasks, comments above role variables, and long Jinja
 * expressions written as folded blocks.
 *
 * Documents are made with the YAML 1.1 schema, the one Ansible's parser uses, so strings such as
 * "yes", "on" or "0644" come out quoted and are read back as strings.
 */
import { Document, isMap, Pair, Scalar, YAMLMap, YAMLSeq } from "yaml";
import { Folded, isBlock, Item, Literal, Play, Role, RoleVariable, Task } from "./model";

/** Lines longer than this are folded (losslessly: YAML reads a fold as one space). */
export const LINE_WIDTH = 120;

/** The first line of every generated file. */
export function header(source: string): string {
  return `# generated — edit ${source}, then run make synth`;
}

type Comments = Readonly<Record<string, string>>;

/** A YAML file: the header line, `---`, then the value. `comments` go above top-level keys of a map. */
export function yamlFile(source: string, value: unknown, comments: Comments = {}, intro?: string): string {
  const doc = new Document(null, { version: "1.1" });
  const node = toNode(doc, value);
  if (isMap(node)) {
    for (const pair of node.items) {
      const key = pair.key as Scalar;
      const comment = comments[String(key.value)];
      if (comment) key.commentBefore = comment.split("\n").map((line) => ` ${line}`.trimEnd()).join("\n");
    }
    node.items.forEach((pair, i) => {
      if (i > 0 && Object.keys(comments).length > 0) (pair.key as Scalar).spaceBefore = true;
    });
  }
  doc.contents = node as typeof doc.contents;
  if (intro) doc.commentBefore = intro.split("\n").map((line) => ` ${line}`.trimEnd()).join("\n");
  const body = doc.toString({ lineWidth: LINE_WIDTH, minContentWidth: 40, indentSeq: true });
  return `${header(source)}\n---\n${body}`;
}

/** Plain values -> yaml nodes, honouring Folded/Literal and separating tasks with blank lines. */
function toNode(doc: Document, value: unknown, separateItems = false): unknown {
  if (value instanceof Folded) {
    const scalar = new Scalar(value.text);
    scalar.type = Scalar.BLOCK_FOLDED;
    return scalar;
  }
  if (value instanceof Literal) {
    const scalar = new Scalar(value.text);
    scalar.type = Scalar.BLOCK_LITERAL;
    return scalar;
  }
  if (Array.isArray(value)) {
    const seq = new YAMLSeq();
    value.forEach((item, i) => {
      const node = toNode(doc, item) as YAMLMap;
      if (separateItems && i > 0 && isMap(node)) node.spaceBefore = true;
      seq.items.push(node);
    });
    return seq;
  }
  if (value !== null && typeof value === "object") {
    const map = new YAMLMap();
    for (const [key, item] of Object.entries(value as Record<string, unknown>)) {
      if (item === undefined) continue;
      const separate = key === "tasks" || key === "block" || key === "rescue" || key === "always" || key === "handlers";
      map.items.push(new Pair(new Scalar(key), toNode(doc, item, separate)));
    }
    return map;
  }
  return doc.createNode(value);
}

/** A task or block as the plain object Ansible reads, keys in a fixed order. */
export function itemObject(item: Item): Record<string, unknown> {
  const common = {
    when: item.when,
    become: item.become,
    delegate_to: item.delegate_to,
    no_log: item.no_log,
    vars: item.vars,
    any_errors_fatal: item.any_errors_fatal,
    run_once: item.run_once,
  };
  if (isBlock(item)) {
    return {
      name: item.name,
      ...common,
      block: item.block.map(itemObject),
      rescue: item.rescue?.map(itemObject),
      always: item.always?.map(itemObject),
    };
  }
  const task: Task = item;
  return {
    name: task.name,
    [task.module]: task.args,
    ...common,
    loop: task.loop,
    loop_control: task.loop_control,
    register: task.register,
    changed_when: task.changed_when,
    failed_when: task.failed_when,
    until: task.until,
    retries: task.retries,
    delay: task.delay,
    check_mode: task.check_mode,
    ignore_unreachable: task.ignore_unreachable,
    notify: task.notify,
    listen: task.listen,
  };
}

/** A task file (tasks/main.yml, handlers/main.yml): a list of tasks separated by blank lines. */
export function taskFile(source: string, items: readonly Item[], intro?: string): string {
  return yamlFileOfSeq(source, items.map(itemObject), intro);
}

function yamlFileOfSeq(source: string, items: readonly unknown[], intro?: string): string {
  const doc = new Document(null, { version: "1.1" });
  doc.contents = toNode(doc, items, true) as typeof doc.contents;
  if (intro) doc.commentBefore = intro.split("\n").map((line) => ` ${line}`.trimEnd()).join("\n");
  return `${header(source)}\n---\n${doc.toString({ lineWidth: LINE_WIDTH, minContentWidth: 40, indentSeq: true })}`;
}

/** A playbook: plays separated by blank lines. */
export function playbookFile(source: string, plays: readonly Play[], intro?: string): string {
  const objects = plays.map((play) => ({
    name: play.name,
    hosts: play.hosts,
    connection: play.connection,
    gather_facts: play.gather_facts,
    become: play.become,
    serial: play.serial,
    max_fail_percentage: play.max_fail_percentage,
    any_errors_fatal: play.any_errors_fatal,
    vars: play.vars,
    roles: play.roles,
    tasks: play.tasks?.map(itemObject),
  }));
  return yamlFileOfSeq(source, objects, intro);
}

/** Wraps a description into comment lines of at most `width` characters. */
export function wrap(text: string, width = 110): string {
  const lines: string[] = [];
  let line = "";
  for (const word of text.split(/\s+/).filter(Boolean)) {
    if (line && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else {
      line = line ? `${line} ${word}` : word;
    }
  }
  if (line) lines.push(line);
  return lines.join("\n");
}

/** defaults/main.yml: every variable that has a default, each with its description as a comment. */
export function defaultsFile(role: Role): string {
  const withDefaults = role.variables.filter((v) => !v.required);
  const values = Object.fromEntries(withDefaults.map((v) => [v.name, v.default]));
  const comments = Object.fromEntries(withDefaults.map((v) => [v.name, wrap(v.description)]));
  const required = role.variables.filter((v) => v.required).map((v) => v.name);
  const intro = [
    `Defaults of the ${role.name} role. ${role.summary}`,
    ...(required.length > 0 ? [`Required, no default (set in inventory/group_vars/all.yml by make synth): ${required.join(", ")}.`] : []),
  ].join("\n");
  return yamlFile(role.source, values, comments, wrap(intro));
}

function specOf(variable: RoleVariable): Record<string, unknown> {
  return {
    type: variable.type,
    elements: variable.elements,
    required: variable.required ? true : undefined,
    default: variable.required ? undefined : variable.default,
    choices: variable.choices,
    description: variable.description,
  };
}

/**
 * meta/argument_specs.yml: every variable, so a wrong type or a missing value fails as the role starts; one entry
 * point per task file (main, and each of taskFiles), all with the role's variables.
 */
export function argumentSpecsFile(role: Role): string {
  const options = () => Object.fromEntries(role.variables.map((v) => [v.name, specOf(v)]));
  const entries = [
    ["main", role.summary] as const,
    ...Object.entries(role.taskFiles ?? {}).map(([name, file]) => [name, file.summary] as const),
  ].map(([name, summary]) => [name, { short_description: summary, description: [...role.description], options: options() }]);
  const spec = { argument_specs: Object.fromEntries(entries) };
  return yamlFile(role.source, spec);
}

/** meta/main.yml: galaxy_info (what ansible-lint's meta rules ask for) and the role's dependencies. */
export function metaFile(role: Role): string {
  const meta = {
    galaxy_info: {
      role_name: role.name,
      author: "k3s-proxmox",
      description: role.summary,
      license: "Apache-2.0",
      min_ansible_version: "2.17",
      platforms: [
        { name: "Debian", versions: ["bookworm"] },
        { name: "Ubuntu", versions: ["jammy", "noble"] },
        { name: "EL", versions: ["9"] },
      ],
      galaxy_tags: ["k3s", "kubernetes", "proxmox"],
    },
    dependencies: (role.dependencies ?? []).map((name) => ({ role: name })),
  };
  return yamlFile(role.source, meta);
}

/** vars/main.yml: values derived from the variables, each with a comment. */
export function varsFile(role: Role): string {
  const derived = role.derived ?? [];
  return yamlFile(
    role.source,
    Object.fromEntries(derived.map((d) => [d.name, d.value])),
    Object.fromEntries(derived.map((d) => [d.name, wrap(d.comment)])),
    `Derived values of the ${role.name} role, computed from its variables: set those, not these.`,
  );
}

/** An INI file (ansible.cfg) from sections of key/value pairs, each pair with an optional comment. */
export function iniFile(source: string, sections: Readonly<Record<string, readonly (readonly [string, string, string?])[]>>): string {
  const blocks = Object.entries(sections).map(([section, entries]) =>
    [`[${section}]`, ...entries.flatMap(([key, value, comment]) => [...(comment ? wrap(comment).split("\n").map((l) => `# ${l}`) : []), `${key} = ${value}`])].join("\n"),
  );
  return `${header(source)}\n${blocks.join("\n\n")}\n`;
}
