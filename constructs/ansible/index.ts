/**
 * The generated Ansible tree, from typed roles and plays: `ansibleFiles(config)` is the one entry point.
 *
 * Committed (configuration-independent, checked for drift): ansible.cfg, site.yml, and per role
 * tasks/handlers/defaults/vars/meta and the templates (copied verbatim from beside the role's source).
 * Not committed (written at synth time, beside the inventory): inventory/group_vars/all.yml, from the
 * configuration; Ansible loads it with the inventory, whichever folder that is in.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import type { ClusterConfig } from "../config";
import type { GeneratedFile } from "../generated-file";
import { ansibleCfg } from "./ansible-cfg";
import { APPS_SOURCE, appsDeployPlays, dashboardTokenPlays } from "./apps";
import { backupPlays, DAY2_SOURCE, removeNodesPlays, resetPlays, restorePlays } from "./day2";
import { groupVarsFile } from "./group-vars";
import { Role } from "./model";
import { argumentSpecsFile, defaultsFile, metaFile, playbookFile, taskFile, varsFile } from "./render";
import { base } from "./roles/base";
import { k3sApps } from "./roles/k3s_apps";
import { k3sBinary } from "./roles/k3s_binary";
import { k3sFirewall } from "./roles/k3s_firewall";
import { k3sMaster } from "./roles/k3s_master";
import { k3sPrereqs } from "./roles/k3s_prereqs";
import { k3sVip } from "./roles/k3s_vip";
import { k3sWorker } from "./roles/k3s_worker";
import { SITE_SOURCE, sitePlays } from "./site";
import { STATUS_SOURCE, statusPlays } from "./status";
import { UPGRADE_SOURCE, upgradePlays } from "./upgrade";

/** Every role: the node roles in the order site.yml applies them, then the apps role of apps-deploy.yml. */
export const ROLES: readonly Role[] = [base, k3sPrereqs, k3sFirewall, k3sBinary, k3sMaster, k3sVip, k3sWorker, k3sApps];

/** The folder of the generated tree, relative to the repository root. */
export const ANSIBLE_DIR = "ansible";

/** The files of one role (all configuration-independent). */
export function roleFiles(role: Role): GeneratedFile[] {
  const dir = `${ANSIBLE_DIR}/roles/${role.name}`;
  const file = (rel: string, content: string): GeneratedFile => ({ path: `${dir}/${rel}`, content, configDependent: false });
  const files = [
    file("tasks/main.yml", taskFile(role.source, role.tasks, `${role.name}: ${role.summary}`)),
    ...Object.entries(role.taskFiles ?? {}).map(([name, part]) =>
      file(`tasks/${name}.yml`, taskFile(role.source, part.tasks, `${role.name} tasks_from ${name}: ${part.summary}`)),
    ),
    file("defaults/main.yml", defaultsFile(role)),
    file("meta/argument_specs.yml", argumentSpecsFile(role)),
    file("meta/main.yml", metaFile(role)),
  ];
  if (role.handlers && role.handlers.length > 0) files.push(file("handlers/main.yml", taskFile(role.source, role.handlers)));
  if (role.derived && role.derived.length > 0) files.push(file("vars/main.yml", varsFile(role)));
  if (role.templatesDir) {
    for (const name of fs.readdirSync(role.templatesDir).filter((n) => n.endsWith(".j2")).sort()) {
      files.push(file(`templates/${name}`, fs.readFileSync(path.join(role.templatesDir, name), "utf8")));
    }
  }
  for (const name of role.modules ?? []) {
    files.push(file(`library/${name}.py`, fs.readFileSync(path.join(ROLE_MODULES_DIR, `${name}.py`), "utf8")));
  }
  return files;
}

/** The roles' own modules (constructs/ansible/modules/), each copied into the library/ of every role that uses it:
 *  a role then works from any playbook. */
const ROLE_MODULES_DIR = path.join(__dirname, "modules");

/** The project's own modules, copied verbatim into ansible/library/ (found there by the playbooks beside it). */
export function libraryFiles(): GeneratedFile[] {
  const dir = path.join(__dirname, "library");
  return fs
    .readdirSync(dir)
    .filter((name) => name.endsWith(".py"))
    .sort()
    .map((name) => ({ path: `${ANSIBLE_DIR}/library/${name}`, content: fs.readFileSync(path.join(dir, name), "utf8"), configDependent: false }));
}

/** Every generated Ansible file for this configuration. */
export function ansibleFiles(config: ClusterConfig): GeneratedFile[] {
  return [
    { path: `${ANSIBLE_DIR}/ansible.cfg`, content: ansibleCfg(), configDependent: false },
    {
      path: `${ANSIBLE_DIR}/site.yml`,
      content: playbookFile(SITE_SOURCE, sitePlays, "make provision: the OS roles and the K3s binary on every node, then the K3s servers, then the agents; a summary."),
      configDependent: false,
    },
    {
      path: `${ANSIBLE_DIR}/apps-deploy.yml`,
      content: playbookFile(APPS_SOURCE, appsDeployPlays, "make deploy-apps: the manifests of manifests/ applied to the cluster, disabled apps removed."),
      configDependent: false,
    },
    {
      path: `${ANSIBLE_DIR}/dashboard-token.yml`,
      content: playbookFile(APPS_SOURCE, dashboardTokenPlays, "make dashboard-token: a short-lived login token for the dashboard, printed once."),
      configDependent: false,
    },
    ...(
      [
        ["backup.yml", backupPlays, "make backup: an etcd snapshot on the first server, copied to backups/ on this machine."],
        ["restore.yml", restorePlays, "make restore SNAPSHOT=<file>: the cluster reset to an etcd snapshot (K3s's disaster-recovery flow)."],
        ["remove-nodes.yml", removeNodesPlays, "make remove-nodes (run by make apply first): drain and delete the nodes terraform.tfvars no longer lists."],
        ["reset.yml", resetPlays, "make reset: K3s uninstalled from every node, so make provision starts clean."],
      ] as const
    ).map(([name, plays, intro]) => ({ path: `${ANSIBLE_DIR}/${name}`, content: playbookFile(DAY2_SOURCE, plays, intro), configDependent: false })),
    {
      path: `${ANSIBLE_DIR}/status.yml`,
      content: playbookFile(
        STATUS_SOURCE,
        statusPlays,
        "make status: each server's k3s, API (/readyz), etcd member (/health) and virtual IP, then the verdict: fails when the API is unavailable.",
      ),
      configDependent: false,
    },
    {
      path: `${ANSIBLE_DIR}/upgrade.yml`,
      content: playbookFile(
        UPGRADE_SOURCE,
        upgradePlays,
        "make upgrade: K3s brought to k3s_version node by node (servers one at a time, then the agents k3s_upgrade_batch\n" +
          "at a time, default 1), each cordoned, drained, upgraded, waited for until Ready at the new version, and uncordoned.\n" +
          "Options (-e): k3s_upgrade_batch, k3s_upgrade_drain_timeout (seconds, default 300), k3s_upgrade_ready_retries\n" +
          "(1 s apart, default 300). A re-run continues where a failed one stopped; nodes already upgraded are skipped.",
      ),
      configDependent: false,
    },
    ...libraryFiles(),
    ...ROLES.flatMap(roleFiles),
    { path: `${ANSIBLE_DIR}/inventory/group_vars/all.yml`, content: groupVarsFile(config, ROLES), configDependent: true },
  ];
}
