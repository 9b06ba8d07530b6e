/**
 * The generated Ansible tree, parsed back from YAML and checked for the properties the roles promise:
 * FQCN modules, no_log wherever the token is touched, restarts only through handlers, idempotent commands,
 * config.yaml 0600, argument specs covering every default, and group_vars taken from the configuration.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { ansibleFiles, ROLES } from "../../../constructs/ansible";
import { Folded } from "../../../constructs/ansible/model";
import { groupVarsValues, PLAYBOOK_VARIABLES } from "../../../constructs/ansible/group-vars";
import { testConfig } from "../../helpers";

type Obj = Record<string, unknown>;

const config = testConfig();
const files = ansibleFiles(config);
const byPath = new Map(files.map((f) => [f.path, f]));
const read = (p: string): string => {
  const file = byPath.get(p);
  if (!file) throw new Error(`not generated: ${p}`);
  return file.content;
};
const yaml = (p: string): unknown => parse(read(p), { version: "1.1" });

/** Task keywords: everything else in a task is its action (module). */
const KEYWORDS = new Set([
  "name", "when", "become", "delegate_to", "no_log", "vars", "loop", "loop_control", "register", "changed_when",
  "failed_when", "until", "retries", "delay", "check_mode", "ignore_unreachable", "notify", "listen", "block",
  "rescue", "always", "any_errors_fatal", "run_once",
]);

/** Every task (blocks flattened) of a task list, with where it came from. */
function flatten(items: unknown, origin: string): { task: Obj; origin: string }[] {
  return ((items as Obj[]) ?? []).flatMap((item) =>
    "block" in item
      ? [...flatten(item.block, origin), ...flatten(item.rescue, origin), ...flatten(item.always, origin)]
      : [{ task: item, origin }],
  );
}

const action = (task: Obj): [string, unknown] => {
  const keys = Object.keys(task).filter((k) => !KEYWORDS.has(k));
  expect(keys, `task "${task.name}" has one action`).toHaveLength(1);
  return [keys[0], task[keys[0]]];
};

/** Every task of a role: tasks/main.yml, then its other task files (tasks_from entry points). */
const roleTasks = (role: string) =>
  files
    .filter((f) => f.path.startsWith(`ansible/roles/${role}/tasks/`))
    .sort((a, b) => Number(!a.path.endsWith("/main.yml")) - Number(!b.path.endsWith("/main.yml")))
    .flatMap((f) => flatten(yaml(f.path), `${role}/tasks`));
const roleHandlers = (role: string) =>
  byPath.has(`ansible/roles/${role}/handlers/main.yml`) ? flatten(yaml(`ansible/roles/${role}/handlers/main.yml`), `${role}/handlers`) : [];
const playbookTasks = (playbook: string) => flatten((yaml(`ansible/${playbook}`) as Obj[]).flatMap((play) => (play.tasks as Obj[]) ?? []), playbook);

const allTasks = [...ROLES.flatMap((r) => [...roleTasks(r.name), ...roleHandlers(r.name)]), ...playbookTasks("site.yml"), ...playbookTasks("upgrade.yml")];

/** The project's own modules: the playbooks' (ansible/library/), and the roles' (in the role's own library/, so the
 *  role works from any playbook). */
const PROJECT_MODULES = ["etcd_snapshot_check", "k3s_version_check"];
const ROLE_MODULES: Record<string, readonly string[]> = Object.fromEntries(ROLES.map((r) => [r.name, r.modules ?? []]));

describe("the file set", () => {
  it("has the playbook, the configuration, and tasks/defaults/argument specs/meta for every role", () => {
    for (const playbook of ["site.yml", "apps-deploy.yml", "dashboard-token.yml", "upgrade.yml", "status.yml"]) expect(byPath.has(`ansible/${playbook}`), playbook).toBe(true);
    for (const name of PROJECT_MODULES) expect(byPath.has(`ansible/library/${name}.py`), name).toBe(true);
    for (const [role, names] of Object.entries(ROLE_MODULES)) {
      for (const name of names) expect(byPath.has(`ansible/roles/${role}/library/${name}.py`), name).toBe(true);
    }
    expect(byPath.has("ansible/roles/k3s_binary/tasks/stage.yml")).toBe(true);
    expect(byPath.has("ansible/ansible.cfg")).toBe(true);
    expect(ROLES.map((r) => r.name)).toEqual(["base", "k3s_prereqs", "k3s_firewall", "k3s_binary", "k3s_master", "k3s_vip", "k3s_worker", "k3s_apps"]);
    for (const role of ROLES) {
      for (const part of ["tasks/main.yml", "defaults/main.yml", "meta/argument_specs.yml", "meta/main.yml"]) {
        expect(byPath.has(`ansible/roles/${role.name}/${part}`), `${role.name}/${part}`).toBe(true);
      }
    }
    expect(new Set(files.map((f) => f.path)).size).toBe(files.length);
  });

  it("marks only group_vars/all.yml as depending on the configuration", () => {
    expect(files.filter((f) => f.configDependent).map((f) => f.path)).toEqual(["ansible/inventory/group_vars/all.yml"]);
  });

  it("produces the same configuration-independent files for a different configuration", () => {
    const other = ansibleFiles(testConfig({ cluster_name: "lab", worker_count: 5, timezone: "UTC", first_ip: "192.168.1.100" }));
    const independent = (list: typeof files) => list.filter((f) => !f.configDependent).map((f) => [f.path, f.content]);
    expect(independent(other)).toEqual(independent(files));
  });

  it("heads every YAML file and ansible.cfg with the generated line naming the source", () => {
    for (const file of files.filter((f) => /\.(yml|cfg)$/.test(f.path))) {
      expect(file.content, file.path).toMatch(/^# generated — edit \S.*, then run make synth\n/);
    }
    for (const role of ROLES) {
      expect(read(`ansible/roles/${role.name}/tasks/main.yml`)).toMatch(new RegExp(`^# generated — edit ${role.source}, then`));
      expect(fs.existsSync(path.resolve(__dirname, "../../..", role.source)), role.source).toBe(true);
    }
  });

  it("writes YAML that parses, with a document start after the header", () => {
    for (const file of files.filter((f) => f.path.endsWith(".yml"))) {
      expect(file.content.split("\n")[1], file.path).toBe("---");
      expect(() => parse(file.content, { version: "1.1" }), file.path).not.toThrow();
    }
  });

  it("copies the Jinja templates verbatim from beside the role's source", () => {
    const templates = files.filter((f) => f.path.endsWith(".j2"));
    expect(templates.map((f) => f.path).sort()).toEqual([
      "ansible/roles/k3s_firewall/templates/firewall.nft.j2",
      "ansible/roles/k3s_master/templates/config.yaml.j2",
      "ansible/roles/k3s_master/templates/k3s.service.j2",
      "ansible/roles/k3s_master/templates/kubeconfig.j2",
      "ansible/roles/k3s_prereqs/templates/modules-load.conf.j2",
      "ansible/roles/k3s_prereqs/templates/sysctl.conf.j2",
      "ansible/roles/k3s_vip/templates/k3s-api-ready.j2",
      "ansible/roles/k3s_vip/templates/keepalived.conf.j2",
      "ansible/roles/k3s_worker/templates/config.yaml.j2",
      "ansible/roles/k3s_worker/templates/k3s-agent.service.j2",
    ]);
    for (const t of templates) {
      const source = path.resolve(__dirname, "../../../constructs", t.path.replace(/^ansible\//, "ansible/"));
      expect(t.content).toBe(fs.readFileSync(source, "utf8"));
    }
  });

  it("never hard-codes eth0", () => {
    for (const file of files) expect(file.content, file.path).not.toMatch(/\beth0\b/);
  });
});

describe("every task", () => {
  it("is named, starting with a capital letter", () => {
    for (const { task, origin } of allTasks) expect(task.name, origin).toMatch(/^[A-Z]/);
  });

  it("uses a fully qualified ansible.builtin module or one of the project's own; only the apps role talks to Kubernetes through kubernetes.core and makes certificates with community.crypto", () => {
    expect(allTasks.length).toBeGreaterThan(60);
    for (const { task, origin } of allTasks) {
      const module = action(task)[0];
      if (PROJECT_MODULES.includes(module)) {
        expect(origin, `${module} in a playbook, never in a role`).toMatch(/\.yml$/);
        continue;
      }
      const owners = Object.entries(ROLE_MODULES).filter(([, names]) => names.includes(module)).map(([role]) => role);
      if (owners.length > 0) {
        expect(owners, `${origin}: ${module} only in a role that carries it in its library/`).toContain(origin.split("/")[0]);
        continue;
      }
      const allowed = origin.includes("k3s_apps")
        ? /^(ansible\.builtin\.[a-z_]+|kubernetes\.core\.k8s(_info)?|community\.crypto\.(openssl_privatekey_pipe|openssl_csr_pipe|x509_certificate_pipe|x509_certificate_info))$/
        : /^ansible\.builtin\.[a-z_]+$/;
      expect(module, `${origin}: ${String(task.name)}`).toMatch(allowed);
    }
  });

  it("that touches the token has no_log", () => {
    const touching = allTasks.filter(({ task }) => /token/i.test(JSON.stringify(task)) && !/^Explain/.test(String(task.name)));
    expect(touching.map(({ task }) => task.name)).toEqual(
      expect.arrayContaining(["Read the join token from the first server", "Read the join token from the server"]),
    );
    for (const { task, origin } of touching) expect(task.no_log, `${origin}: ${task.name}`).toBe(true);
  });

  it("that writes a K3s config.yaml has no_log and mode 0600, and restarts through a handler", () => {
    const files = (task: Obj) => ((action(task)[1] as Obj)?.files as Obj[] | undefined) ?? [];
    for (const role of ["k3s_master", "k3s_worker"]) {
      const writes = roleTasks(role).filter(({ task }) => files(task).some((f) => f.dest === "/etc/rancher/k3s/config.yaml"));
      expect(writes, role).toHaveLength(1);
      const task = writes[0].task;
      expect(action(task)[0]).toBe("k3s_files");
      expect(files(task).find((f) => f.dest === "/etc/rancher/k3s/config.yaml")).toEqual({
        dest: "/etc/rancher/k3s/config.yaml",
        content: "{{ lookup('ansible.builtin.template', 'config.yaml.j2') }}",
        mode: "0600",
      });
      expect(task.no_log).toBe(true);
      const service = role === "k3s_master" ? "k3s" : "k3s-agent";
      expect(task.notify).toEqual([`Say why ${service} restarts`, `Restart ${service}`]);
      expect(roleHandlers(role).map(({ task: h }) => h.name)).toEqual(task.notify);
    }
  });

  it("runs a command only with changed_when or creates (idempotent by construction)", () => {
    const commands = allTasks.filter(({ task }) => ["ansible.builtin.command", "ansible.builtin.shell"].includes(action(task)[0]));
    expect(commands.length).toBeGreaterThan(3);
    for (const { task, origin } of commands) {
      const args = action(task)[1] as Obj;
      expect(task.changed_when !== undefined || args.creates !== undefined, `${origin}: ${task.name}`).toBe(true);
      expect(String(args.cmd ?? ""), "no secret on a command line").not.toMatch(/token/i);
    }
  });

  it("restarts services only in handlers", () => {
    for (const { task, origin } of allTasks.filter(({ origin }) => !origin.endsWith("/handlers"))) {
      const args = action(task)[1];
      const state = args && typeof args === "object" ? String((args as Obj).state ?? "") : "";
      expect(state, `${origin}: ${task.name}`).not.toMatch(/^(restarted|reloaded)$/);
    }
  });

  it("registers and sets only variables prefixed with its role's name", () => {
    for (const role of ROLES) {
      for (const { task } of roleTasks(role.name)) {
        if (task.register) expect(task.register, String(task.name)).toMatch(new RegExp(`^${role.name}_`));
        const [name, args] = action(task);
        if (name === "ansible.builtin.set_fact") for (const key of Object.keys(args as Obj)) expect(key).toMatch(new RegExp(`^${role.name}_`));
      }
    }
  });

  it("gives every file it writes an explicit mode", () => {
    for (const { task, origin } of allTasks) {
      const [name, args] = action(task);
      if (["ansible.builtin.template", "ansible.builtin.copy", "ansible.builtin.get_url"].includes(name)) {
        expect((args as Obj).mode, `${origin}: ${task.name}`).toMatch(/^0[0-7]{3}$/);
      }
      if (name === "k3s_files") for (const f of (args as Obj).files as Obj[]) expect(f.mode, `${origin}: ${String(f.dest)}`).toMatch(/^0[0-7]{3}$/);
    }
  });
});

describe("role variables", () => {
  for (const role of ROLES) {
    it(`${role.name}: argument_specs cover every default, with the same value, and every name has the role's prefix`, () => {
      const defaults = (yaml(`ansible/roles/${role.name}/defaults/main.yml`) ?? {}) as Obj;
      const spec = (yaml(`ansible/roles/${role.name}/meta/argument_specs.yml`) as Obj).argument_specs as Obj;
      const options = (spec.main as Obj).options as Record<string, Obj>;
      const required = Object.keys(options).filter((k) => options[k].required === true);
      expect(Object.keys(options).sort()).toEqual([...Object.keys(defaults), ...required].sort());
      for (const [name, value] of Object.entries(defaults)) {
        expect(options[name].default, name).toEqual(value);
        expect(options[name].description, name).toBeTruthy();
      }
      for (const name of Object.keys(options)) expect(name).toMatch(new RegExp(`^${role.name}_`));
      const vars = byPath.has(`ansible/roles/${role.name}/vars/main.yml`) ? (yaml(`ansible/roles/${role.name}/vars/main.yml`) as Obj) : {};
      for (const name of Object.keys(vars)) {
        expect(name).toMatch(new RegExp(`^${role.name}_`));
        expect(options[name], `${name} is derived, not an option`).toBeUndefined();
      }
    });
  }

  it("folds long expressions losslessly: vars/main.yml reads back exactly as written in the role's source", () => {
    for (const role of ROLES.filter((r) => r.derived)) {
      const vars = yaml(`ansible/roles/${role.name}/vars/main.yml`) as Obj;
      for (const d of role.derived!) {
        const value = d.value instanceof Folded ? d.value.text : d.value;
        expect(vars[d.name], `${role.name}: ${d.name}`).toEqual(value);
      }
    }
  });

  it("comments every default in defaults/main.yml", () => {
    for (const role of ROLES) {
      const text = read(`ansible/roles/${role.name}/defaults/main.yml`);
      for (const name of Object.keys((yaml(`ansible/roles/${role.name}/defaults/main.yml`) ?? {}) as Obj)) {
        expect(text, name).toMatch(new RegExp(`# [^\\n]+\\n(# [^\\n]+\\n)*${name}:`));
      }
    }
  });
});

describe("group_vars/all.yml", () => {
  const vars = yaml("ansible/inventory/group_vars/all.yml") as Obj;

  it("carries the cluster's values from the configuration", () => {
    expect(vars).toEqual({
      base_timezone: "Europe/Warsaw",
      k3s_binary_version: "v1.31.1+k3s1",
      k3s_master_cluster_name: "k3s",
      k3s_master_api_address: "192.168.1.10",
      k3s_master_cluster_cidr: "10.42.0.0/16",
      k3s_master_service_cidr: "10.43.0.0/16",
      k3s_master_snapshot_schedule: "0 */6 * * *",
      k3s_master_snapshot_retention: 10,
      k3s_master_etcd_s3: {},
      k3s_vip_address: "",
      k3s_vip_prefix_length: 24,
      k3s_vip_router_id: 51,
      k3s_worker_server_url: "https://192.168.1.10:6443",
      cluster_nodes: ["k3s-master-1", "k3s-worker-1", "k3s-worker-2"],
      dashboard_login_account: "headlamp-admin",
      k3s_apps_endpoints: expect.arrayContaining(["Whoami: http://192.168.1.10:30081/ — no login"]),
      k3s_apps_tls_names: ["IP:192.168.1.10", "IP:192.168.1.20", "IP:192.168.1.21"],
      k3s_apps_ca_common_name: "k3s cluster CA (k3s-proxmox)",
    });
  });

  it("follows the configuration", () => {
    const other = ansibleFiles(testConfig({ cluster_name: "lab", timezone: "UTC", master_ips: ["10.0.0.5"], node_cidr: "10.0.0.0/24", gateway: "10.0.0.1", dns_servers: ["10.0.0.1"], worker_ips: ["10.0.0.6", "10.0.0.7"], pod_cidr: "10.50.0.0/16", service_cidr: "10.51.0.0/16" }));
    const parsed = parse(other.find((f) => f.path === "ansible/inventory/group_vars/all.yml")!.content, { version: "1.1" });
    expect(parsed).toMatchObject({
      base_timezone: "UTC",
      k3s_master_cluster_name: "lab",
      k3s_master_api_address: "10.0.0.5",
      k3s_master_cluster_cidr: "10.50.0.0/16",
      k3s_master_service_cidr: "10.51.0.0/16",
      k3s_worker_server_url: "https://10.0.0.5:6443",
    });
  });

  it("points everything at the virtual IP when there is one: tls-san, joining servers, agents, kubeconfig, app URLs", () => {
    const ha = ansibleFiles(testConfig({ master_count: 3, api_vip: "192.168.1.9" }));
    const parsed = parse(ha.find((f) => f.path === "ansible/inventory/group_vars/all.yml")!.content, { version: "1.1" }) as Obj;
    expect(parsed).toMatchObject({
      k3s_master_api_address: "192.168.1.9",
      k3s_vip_address: "192.168.1.9",
      k3s_vip_prefix_length: 24,
      k3s_vip_router_id: 9,
      k3s_worker_server_url: "https://192.168.1.9:6443",
      cluster_nodes: ["k3s-master-1", "k3s-master-2", "k3s-master-3", "k3s-worker-1", "k3s-worker-2"],
    });
    expect(parsed.k3s_apps_endpoints).toEqual(expect.arrayContaining(["Whoami: http://192.168.1.9:30081/ — no login"]));
  });

  it("sets only variables some role declares (or a day-2 playbook reads), and every required one", () => {
    const declared = new Set([...ROLES.flatMap((r) => r.variables.map((v) => v.name)), ...Object.keys(PLAYBOOK_VARIABLES)]);
    for (const name of Object.keys(vars)) expect(declared.has(name), name).toBe(true);
    for (const role of ROLES) for (const v of role.variables.filter((v) => v.required)) expect(vars[v.name], v.name).toBeDefined();
  });
});

describe("site.yml", () => {
  const plays = yaml("ansible/site.yml") as Obj[];

  it("checks the inventory, reachability and the OS before any role, then runs the roles in order", () => {
    expect(plays.map((p) => [p.hosts, p.roles ?? null])).toEqual([
      ["localhost", null],
      ["k3s_cluster", null],
      ["k3s_cluster", ["base", "k3s_prereqs", "k3s_firewall"]], // and then the K3s binary's stage (below)
      ["master[0]", ["k3s_master", "k3s_vip"]],
      ["master[1:]", ["k3s_master", "k3s_vip"]],
      ["workers", ["k3s_worker"]],
      ["master[0]", null], // the summary
    ]);
    const fatal = flatten(plays[1].tasks, "site.yml").filter(({ task }) => task.any_errors_fatal).map(({ task }) => task.name);
    expect(fatal).toEqual([
      "Explain an unreachable node",
      "Explain facts that could not be gathered",
      "Check the operating system",
      "Read the installed K3s version",
      "Refuse to change the version of a running K3s",
    ]);
    expect(plays[4].serial).toBe(1);
    // Every node stages its binary while the OS is prepared, so the joins do not download after the servers are up.
    expect((plays[2].tasks as Obj[])[0]).toEqual({
      name: "Stage the verified K3s binary (and images)",
      "ansible.builtin.include_role": { name: "k3s_binary", tasks_from: "stage" },
    });
    const facts = flatten(plays[1].tasks, "site.yml").find(({ task }) => "ansible.builtin.setup" in task)!.task;
    expect(facts["ansible.builtin.setup"]).toEqual({ gather_subset: ["!all", "network"] });
    const preflight = flatten(plays[1].tasks, "site.yml");
    expect(preflight.find(({ task }) => task.ignore_unreachable)?.task.register).toBe("site_facts");
    const osCheck = preflight.find(({ task }) => task.name === "Check the operating system")!.task;
    expect(JSON.stringify(osCheck)).toContain("['Debian','RedHat']");
    expect(String((osCheck["ansible.builtin.assert"] as Obj).fail_msg)).toContain("{{ inventory_hostname }}");
    expect(String((flatten(plays[0].tasks, "")[0].task["ansible.builtin.assert"] as Obj).fail_msg)).toContain("make apply");
  });

  it("refuses, before any role, to change the version of a node that runs K3s, pointing at make upgrade; new nodes get the pinned one", () => {
    const preflight = flatten(plays[1].tasks, "site.yml").map(({ task }) => task);
    const read = preflight.find((t) => t.name === "Read the installed K3s version")!;
    expect(read).toMatchObject({ become: true, register: "site_k3s" });
    expect(read.k3s_version_check).toEqual({ binary: "{{ k3s_binary_install_path | default('/usr/local/bin/k3s') }}", version: "{{ k3s_binary_version }}", node: "{{ inventory_hostname }}" });
    const other = "site_k3s.installed | length > 0 and site_k3s.installed != k3s_binary_version";
    expect(preflight.find((t) => t.name === "Read the services")!.when).toBe(other);
    const refuse = preflight.find((t) => t.name === "Refuse to change the version of a running K3s")!;
    const assert = refuse["ansible.builtin.assert"] as Obj;
    expect(assert.that).toEqual([
      `not (${other}) or not (ansible_facts.services.get('k3s.service', {}).get('state') == 'running' or ansible_facts.services.get('k3s-agent.service', {}).get('state') == 'running')`,
    ]);
    expect(String(assert.fail_msg)).toMatch(/\{\{ inventory_hostname \}\} runs K3s \{\{ site_k3s\.installed \}\}, but terraform\.tfvars pins \{\{ k3s_binary_version \}\}.* Run make upgrade/);
    expect(preflight.indexOf(refuse)).toBe(preflight.length - 2); // then the progress line
  });

  it("prints one progress line per phase with the time since the start, and a summary of the nodes at the end", () => {
    const lines = plays.flatMap((p) => ((p.tasks as Obj[]) ?? []).filter((t) => String(t.name).startsWith("Progress: ")));
    expect(lines.map((t) => t.name)).toEqual(["Progress: checks", "Progress: nodes", "Progress: servers", "Progress: servers", "Progress: agents"]);
    for (const t of lines) {
      expect(t.run_once).toBe(true);
      expect(String((t["ansible.builtin.debug"] as Obj).msg)).toMatch(/^\w+: \{\{ .* \}\}\/\{\{ .* \}\} .* \(\{\{ \(\(now\(\)\.timestamp\(\) - hostvars\['localhost'\]\.site_started \| float\) \| round \| int\) \}\} s\)$/);
    }
    expect(flatten(plays[0].tasks, "").at(-1)!.task["ansible.builtin.set_fact"]).toEqual({ site_started: "{{ now().timestamp() }}" });
    const summary = String(((plays.at(-1)!.tasks as Obj[]).at(-1)!["ansible.builtin.debug"] as Obj).msg);
    for (const part of ["site_nodes.stdout_lines", "site_kubeconfig", "make deploy-apps", "make status"]) expect(summary).toContain(part);
  });

  it("puts the /etc/hosts block also into cloud-init's template of /etc/hosts, which it renders at every boot", () => {
    const tasks = roleTasks("base").map(({ task }) => task);
    const stat = tasks.find((t) => t.name === "Look for cloud-init's template of /etc/hosts")!;
    expect((stat["ansible.builtin.stat"] as Obj).path).toBe("{{ ('/etc/cloud/templates/hosts.' ~ ansible_facts.os_family | lower ~ '.tmpl') }}");
    const hosts = tasks.find((t) => "ansible.builtin.blockinfile" in t)!;
    expect((hosts["ansible.builtin.blockinfile"] as Obj).path).toBe("{{ item }}");
    expect(hosts.loop).toBe("{{ ['/etc/hosts'] + ([('/etc/cloud/templates/hosts.' ~ ansible_facts.os_family | lower ~ '.tmpl')] if base_hosts_template.stat.exists else []) }}");
  });

  it("becomes root in the role plays only", () => {
    expect(plays.map((p) => p.become ?? false)).toEqual([false, false, true, true, true, true, true]);
  });
});

describe("k3s roles", () => {
  it("make k3s_binary a dependency of the master and worker roles", () => {
    for (const role of ["k3s_master", "k3s_worker"]) {
      expect((yaml(`ansible/roles/${role}/meta/main.yml`) as Obj).dependencies).toEqual([{ role: "k3s_binary" }]);
    }
  });

  it("restart only their own service, on their own changes and on a changed binary", () => {
    const restart = (role: string) =>
      roleHandlers(role)
        .filter(({ task }) => "ansible.builtin.systemd_service" in task)
        .map(({ task }) => [task.name, (task["ansible.builtin.systemd_service"] as Obj).name, task.listen]);
    expect(restart("k3s_master")).toEqual([["Restart k3s", "k3s", "k3s binary changed"]]);
    expect(restart("k3s_worker")).toEqual([["Restart k3s-agent", "k3s-agent", "k3s binary changed"]]);
    const binaryNotifies = roleTasks("k3s_binary").filter(({ task }) => task.notify).map(({ task }) => [task.name, task.notify]);
    expect(binaryNotifies).toEqual([
      ["Install the staged binary", "k3s binary changed"],
      ["Restart K3s for new images", "k3s binary changed"],
    ]);
    for (const role of ["k3s_master", "k3s_worker"]) {
      const names = roleTasks(role).map(({ task }) => task.name);
      const flush = roleTasks(role).findIndex(({ task }) => task["ansible.builtin.meta"] === "flush_handlers");
      const start = names.findIndex((n) => String(n).startsWith("Enable and start"));
      expect(flush).toBeGreaterThan(0);
      expect(start).toBe(flush + 1);
    }
  });

  it("verify the binary: get_url against the release's sha256 file, or the air-gap file against its .sha256", () => {
    const tasks = roleTasks("k3s_binary").map(({ task }) => task);
    const download = tasks.find((t) => "ansible.builtin.get_url" in t)!;
    expect(download.name).toBe("Download the K3s binary, verified against the release's sha256");
    expect((download["ansible.builtin.get_url"] as Obj).checksum).toBe("{{ k3s_binary_download_checksum }}");
    const derived = yaml("ansible/roles/k3s_binary/vars/main.yml") as Obj;
    expect(String(derived.k3s_binary_download_checksum)).toContain("'sha256:' ~ k3s_binary_release_url");
    expect(String(derived.k3s_binary_download_checksum)).toContain("'/sha256sum-' ~ k3s_binary_release.arch ~ '.txt'");
    const copy = tasks.find((t) => t.name === "Copy the air-gap binary to the node")!;
    const names = tasks.map((t) => t.name);
    expect(names.indexOf("Verify the air-gap binary before copying it")).toBeLessThan(names.indexOf(copy.name as string));
    expect(names.indexOf("Verify the binary on the node")).toBeGreaterThan(names.indexOf(copy.name as string));
    expect(tasks.find((t) => t.name === "Look at the air-gap binary on this machine")).toMatchObject({ delegate_to: "localhost", become: false });
  });

  it("stage the binary apart from installing it: stage.yml gets and verifies it at a versioned path, restarting nothing", () => {
    const stage = flatten(yaml("ansible/roles/k3s_binary/tasks/stage.yml"), "stage").map(({ task }) => task);
    const main = yaml("ansible/roles/k3s_binary/tasks/main.yml") as Obj[];
    // Staged once per run: main.yml skips the stage when it ran already (site.yml stages in the play that prepares the OS).
    expect(main[0]).toEqual({
      name: "Stage the verified K3s binary (and images), unless this run did already",
      "ansible.builtin.include_tasks": { file: "stage.yml" },
      when: "k3s_binary_staged_version | default('') != k3s_binary_version",
    });
    expect(stage.at(-1)).toEqual({ name: "Note that this version is staged", "ansible.builtin.set_fact": { k3s_binary_staged_version: "{{ k3s_binary_version }}" } });
    for (const task of stage) {
      expect(task.notify, `${task.name} notifies nothing`).toBeUndefined();
      expect(JSON.stringify(action(task)[1]) ?? "", `${task.name} leaves the installed binary alone`).not.toContain("k3s_binary_install_path");
    }
    const derived = yaml("ansible/roles/k3s_binary/vars/main.yml") as Obj;
    expect(derived.k3s_binary_stage_dir).toBe("/var/lib/k3s-proxmox");
    expect(derived.k3s_binary_staged_path).toBe("{{ k3s_binary_stage_dir }}/k3s-{{ k3s_binary_version }}");
    const dests = (module: string) => stage.filter((t) => module in t).map((t) => (t[module] as Obj).dest);
    expect(dests("ansible.builtin.get_url")).toEqual(["{{ k3s_binary_staged_path }}", "{{ k3s_binary_images_path }}/{{ k3s_binary_release_images_url | basename }}"]);
    expect(dests("ansible.builtin.copy")).toEqual(["{{ k3s_binary_staged_path }}", "{{ k3s_binary_images_path }}/"]);
    const names = stage.map((t) => t.name);
    expect(names.indexOf("Check that the staged binary is the pinned version")).toBeGreaterThan(names.indexOf("Verify the binary on the node"));
    // The install: a copy on the node (a rename, so a running K3s keeps its binary until the handler restarts it).
    const install = main.find((t) => t.name === "Install the staged binary")!;
    expect(install["ansible.builtin.copy"]).toEqual({
      src: "{{ k3s_binary_staged_path }}",
      dest: "{{ k3s_binary_install_path }}",
      remote_src: true,
      owner: "root",
      group: "root",
      mode: "0755",
    });
    expect(install.notify).toBe("k3s binary changed");
    // Staged binaries of other versions go, the current one stays (a second run downloads nothing).
    const stale = main.find((t) => t.name === "Find staged binaries of other versions")!;
    expect(stale["ansible.builtin.find"]).toEqual({ paths: "{{ k3s_binary_stage_dir }}", patterns: ["k3s-*"], excludes: ["{{ k3s_binary_staged_path | basename }}"] });
    // A restart for new images from main.yml only, when stage.yml changed them.
    const images = main.find((t) => t.name === "Restart K3s for new images")!;
    expect(images.changed_when).toBe("k3s_binary_new_images | bool");
    expect(String((images.vars as Obj).k3s_binary_new_images)).toMatch(/k3s_binary_release_images_result .*is changed or .*k3s_binary_airgap_images_result .*is changed/);
  });

  it("describe stage.yml as an entry point of its own, with the same variables as main", () => {
    const specs = (yaml("ansible/roles/k3s_binary/meta/argument_specs.yml") as Obj).argument_specs as Record<string, Obj>;
    expect(Object.keys(specs)).toEqual(["main", "stage"]);
    expect(specs.stage.options).toEqual(specs.main.options);
    expect(String(specs.stage.short_description)).toMatch(/^Stage the K3s binary/);
    expect(specs.main.options).toMatchObject({
      k3s_binary_release_images: { type: "bool", default: false },
      k3s_binary_release_images_format: { type: "str", default: "tar.zst", choices: ["tar", "tar.gz", "tar.zst"] },
    });
  });

  it("download the release's images verified against the release's sha256 file, the version's + encoded", () => {
    const derived = yaml("ansible/roles/k3s_binary/vars/main.yml") as Obj;
    expect(derived.k3s_binary_release_images_url).toBe(
      "{{ k3s_binary_release_url ~ '/' ~ (k3s_binary_version | urlencode) ~ '/k3s-airgap-images-' ~ k3s_binary_release.arch ~ '.' ~ k3s_binary_release_images_format }}",
    );
    expect(derived.k3s_binary_release_images_checksum).toBe("sha256:{{ k3s_binary_release_url }}/{{ k3s_binary_version | urlencode }}/sha256sum-{{ k3s_binary_release.arch }}.txt");
    const block = (yaml("ansible/roles/k3s_binary/tasks/stage.yml") as Obj[]).find((t) => t.name === "Download the release's air-gap images")!;
    expect(block.when).toBe("k3s_binary_release_images");
    expect(((block.block as Obj[])[0]["ansible.builtin.get_url"] as Obj).checksum).toBe("{{ k3s_binary_release_images_checksum }}");
    expect(String(((block.rescue as Obj[])[0]["ansible.builtin.fail"] as Obj).msg)).toContain("The installed K3s binary was not touched and nothing was restarted");
  });

  it("explain a failed download or verification as changing nothing on the node", () => {
    const block = (yaml("ansible/roles/k3s_binary/tasks/stage.yml") as Obj[]).find((t) => t.name === "Download the K3s binary")!;
    const msg = String(((block.rescue as Obj[])[0]["ansible.builtin.fail"] as Obj).msg);
    expect(msg).toMatch(/^\{\{ inventory_hostname \}\} could not download and verify \{\{ k3s_binary_download_url \}\} against \{\{ k3s_binary_download_checksum \}\}/);
    expect(msg).toContain("Nothing on the node changed: the installed K3s binary was not touched and nothing was restarted.");
  });

  it("wait for the API and for node registration with bounded retries and an explanation", () => {
    const block = (role: string, name: string) => (yaml(`ansible/roles/${role}/tasks/main.yml`) as Obj[]).find((t) => t.name === name)!;
    for (const [role, name] of [["k3s_master", "Wait for the Kubernetes API"], ["k3s_worker", "Wait for the node to register"]]) {
      const b = block(role, name);
      for (const wait of b.block as Obj[]) {
        expect(wait.retries).toMatch(/^\{\{ k3s_(master_ready|worker_register)_retries \}\}$/);
        expect(wait.changed_when).toBe(false);
        expect(wait.until).toMatch(/(\.rc == 0|\.status\.ActiveState == 'active')$/);
      }
      expect(Object.keys((b.rescue as Obj[])[0])).toContain("ansible.builtin.fail");
    }
    const register = (block("k3s_worker", "Wait for the node to register").block as Obj[])[1];
    expect(register.delegate_to).toBe("{{ k3s_worker_server_host }}");
  });

  it("write the operator's kubeconfig 0600 at the repository root, never ~/.kube/config", () => {
    const task = roleTasks("k3s_master").find(({ task }) => task.name === "Write the kubeconfig on the operator's machine")!.task;
    expect(task).toMatchObject({ delegate_to: "localhost", become: false, no_log: true });
    expect((task["ansible.builtin.template"] as Obj).mode).toBe("0600");
    expect((yaml("ansible/roles/k3s_master/defaults/main.yml") as Obj).k3s_master_kubeconfig_path).toBe("{{ playbook_dir | dirname }}/kubeconfig");
    for (const { task, origin } of allTasks) expect(JSON.stringify(action(task)[1]) ?? "", `${origin}: ${task.name}`).not.toMatch(/\.kube\//);
  });

  it("start K3s from its own units with nothing secret on the command line", () => {
    for (const [file, mode] of [["k3s_master/templates/k3s.service.j2", "server"], ["k3s_worker/templates/k3s-agent.service.j2", "agent"]]) {
      const unit = read(`ansible/roles/${file}`);
      const exec = unit.split("\n").filter((l) => l.startsWith("ExecStart"));
      expect(exec).toEqual([`ExecStart={{ k3s_binary_install_path }} ${mode}`]);
      expect(unit).toMatch(/^Type=notify$/m);
      expect(unit).toMatch(/^KillMode=process$/m);
    }
  });

  it("configure the server as the design asks", () => {
    const server = read("ansible/roles/k3s_master/templates/config.yaml.j2");
    for (const key of ["'cluster-init': true", "'write-kubeconfig-mode': '0644'", "'tls-san'", "'node-ip'", "'flannel-iface': k3s_master_iface", "'cluster-cidr'", "'service-cidr'"]) {
      expect(server).toContain(key);
    }
    expect((yaml("ansible/roles/k3s_master/defaults/main.yml") as Obj).k3s_master_disable).toEqual(["traefik", "servicelb"]);
    const agent = read("ansible/roles/k3s_worker/templates/config.yaml.j2");
    for (const key of ["'server': k3s_worker_server_url", "'token'", "'flannel-iface': k3s_worker_iface"]) expect(agent).toContain(key);
  });

  it("find flannel's interface by the node address in the facts", () => {
    for (const role of ["k3s_master", "k3s_worker"]) {
      const derived = yaml(`ansible/roles/${role}/vars/main.yml`) as Obj;
      expect(String(derived[`${role}_detected_iface`])).toContain(`selectattr('ipv4.address', 'equalto', ${role}_node_ip)`);
      expect((yaml(`ansible/roles/${role}/defaults/main.yml`) as Obj)[`${role}_node_ip`]).toBe("{{ ansible_host }}");
    }
  });
});

describe("ansible.cfg", () => {
  it("points at the generated inventory and roles, pipelines SSH and forces handlers", () => {
    const cfg = read("ansible/ansible.cfg");
    for (const line of ["inventory = inventory/hosts.ini", "roles_path = roles", "force_handlers = True", "pipelining = True"]) {
      expect(cfg).toContain(`\n${line}\n`);
    }
    expect(cfg).toMatch(/\[defaults\][\s\S]*\[ssh_connection\]/);
  });
});

describe("security_profile in group_vars", () => {
  const values = (profile: string) => groupVarsValues(testConfig({ security_profile: profile }));

  it("homelab switches nothing on: the roles' defaults hold", () => {
    expect(Object.keys(values("homelab")).filter((k) => k.includes("hardened") || k === "k3s_prereqs_sysctl")).toEqual([]);
  });

  it("hardened switches both K3s roles on and has the nodes set the kernel values protect-kernel-defaults checks", () => {
    expect(values("hardened")).toMatchObject({
      k3s_master_hardened: true,
      k3s_worker_hardened: true,
      k3s_prereqs_sysctl: { "net.ipv4.ip_forward": 1, "vm.overcommit_memory": 1, "vm.panic_on_oom": 0, "kernel.panic": 10, "kernel.panic_on_oops": 1 },
      k3s_firewall_enabled: true,
      k3s_firewall_admin_cidrs: ["192.168.1.0/24"],
      k3s_firewall_vrrp: false,
    });
    expect(groupVarsValues(testConfig({ security_profile: "hardened", admin_cidrs: ["10.0.0.0/8", "192.168.1.5/32"], api_vip: "192.168.1.9" }))).toMatchObject({
      k3s_firewall_admin_cidrs: ["10.0.0.0/8", "192.168.1.5/32"],
      k3s_firewall_vrrp: true,
    });
  });

  it("writes the hardened policies only in the hardened profile, restarting k3s when they change and saying why", () => {
    const policies = roleTasks("k3s_master").find(({ task }) => String(task.name).startsWith("Write the Pod Security admission configuration"))!.task;
    expect(policies).toMatchObject({ when: "k3s_master_hardened", notify: ["Say why k3s restarts", "Restart k3s"] });
    const files = (policies.k3s_files as Obj).files as Obj[];
    expect(files.map((f) => [f.dest, f.mode])).toEqual([
      ["/etc/rancher/k3s/pod-security.yaml", "0600"],
      ["/etc/rancher/k3s/audit-policy.yaml", "0600"],
    ]);
    expect(parse(String(files[0].content))).toMatchObject({ kind: "AdmissionConfiguration", plugins: [{ name: "PodSecurity", configuration: { defaults: { enforce: "restricted" }, exemptions: { namespaces: ["kube-system"] } } }, { name: "EventRateLimit" }] });
  });
});

describe("a restart says why", () => {
  it("names, before the restart, the files whose change causes it", () => {
    const [reason, restart] = roleHandlers("k3s_master").map(({ task }) => task);
    expect(reason.name).toBe("Say why k3s restarts");
    expect(String((reason["ansible.builtin.debug"] as Obj).msg)).toBe(
      "k3s on {{ inventory_hostname }} restarts now: {{ (k3s_master_written.changed_files | default([]) + k3s_master_written_extra.changed_files | default([])) | join(', ') }} changed.",
    );
    expect(restart.name).toBe("Restart k3s");
  });
});

describe("the secrets-encryption key in hardened", () => {
  it("goes from the first server to the servers already in the cluster, before they restart with it, never logged or overwritten", () => {
    const tasks = roleTasks("k3s_master").map(({ task }) => task);
    const at = (prefix: string) => tasks.findIndex((t) => String(t.name).startsWith(prefix));
    const [read, cred, give, config] = [
      at("Read the first server's secrets-encryption key"),
      at("Check whether this server is already in the cluster"),
      at("Give a server already in the cluster"),
      at("Write the K3s server configuration"),
    ];
    expect([read, cred, give].every((i) => i >= 0 && i < config)).toBe(true);
    expect(tasks[read]).toMatchObject({ delegate_to: "{{ k3s_master_first }}", no_log: true, when: ["inventory_hostname != k3s_master_first", "k3s_master_hardened"] });
    expect(tasks[give]).toMatchObject({ no_log: true, "ansible.builtin.copy": { mode: "0600", force: false } });
    expect(tasks[give].when).toContain("k3s_master_cred_dir.stat.isdir | default(false)");
  });
});
