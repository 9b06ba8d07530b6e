/**
 * The systemd side shared by the K3s server and agent roles: write the unit, restart it on change, start it,
 * and wait (bounded) until systemd reports it active, or until the API server answers /readyz.
 */
import { folded, Item, Task } from "../model";
import { RoleFile, writeFiles } from "./files";

/** K3s's configuration file, server and agent alike. */
export const K3S_CONFIG = "/etc/rancher/k3s/config.yaml";

/** `k3s` (server) or `k3s-agent`. */
export type K3sService = "k3s" | "k3s-agent";

/**
 * Writes K3s's config.yaml (0600, from `config.yaml.j2`: it holds the join token, hence no_log) and the unit (from
 * `<service>.service.j2`) in one call, and `extra.files` when `extra.when` holds (the hardened profile's policies);
 * restarts the service on a change (handler `Restart <service>`, after `restartReasonHandler`'s, which says which
 * files changed), then starts it. `prefix` is the role's, for the registered results.
 */
export function serviceStartTasks(
  service: K3sService,
  what: string,
  prefix: string,
  extra?: { readonly name: string; readonly files: readonly RoleFile[]; readonly when: string },
): Item[] {
  const register = `${prefix}_written`;
  const notify = [restartReason(service), `Restart ${service}`];
  return [
    writeFiles(
      `Write the K3s ${what} configuration and the ${service} systemd unit`,
      [
        { dest: K3S_CONFIG, template: "config.yaml.j2", mode: "0600" },
        { dest: `/etc/systemd/system/${service}.service`, template: `${service}.service.j2`, mode: "0644" },
      ],
      { no_log: true, notify, register },
    ),
    ...(extra ? [writeFiles(extra.name, extra.files, { notify, when: extra.when, register: `${register}_extra` })] : []),
    {
      name: `Restart ${service} now if its binary, configuration or unit changed`,
      module: "ansible.builtin.meta",
      args: "flush_handlers",
    },
    {
      name: `Enable and start ${service}`,
      module: "ansible.builtin.systemd_service",
      // no_block: a start waits for K3s's readiness signal with no timeout; the bounded wait below replaces it.
      args: { name: service, enabled: true, state: "started", no_block: true },
    },
  ];
}

const restartReason = (service: K3sService) => `Say why ${service} restarts`;

/**
 * The handler that names the files whose change restarts the service (k3s_files returns their names, never their
 * contents); the role lists it before `Restart <service>`, so the message comes first.
 */
export function restartReasonHandler(service: K3sService, prefix: string, extra: boolean): Task {
  const changed = [`${prefix}_written`, ...(extra ? [`${prefix}_written_extra`] : [])].map((r) => `${r}.changed_files | default([])`).join(" + ");
  return {
    name: restartReason(service),
    module: "ansible.builtin.debug",
    args: { msg: folded(`${service} on {{ inventory_hostname }} restarts now: {{ (${changed}) | join(', ') }} changed.`) },
  };
}

/** Polls systemd until the unit is active; `prefix` names the role's register and retry variables. */
export function serviceActiveWait(service: K3sService, title: string, prefix: string, retries: string, delay: string): Item {
  return {
    name: title,
    module: "ansible.builtin.systemd_service",
    args: { name: service, state: "started" },
    check_mode: true, // only read the unit's state: it is started above
    register: `${prefix}_active`,
    until: `${prefix}_active.status.ActiveState == 'active'`,
    retries: `{{ ${retries} }}`,
    delay: `{{ ${delay} }}`,
    changed_when: false,
  };
}

/**
 * HTTP codes by which a Kubernetes API server shows it is there, asked without credentials: /readyz answers 401
 * (or 403) to an anonymous client. Used where only the address is checked (the VIP, make status).
 */
export const API_ANSWERS = [200, 401, 403] as const;

/** Polls the local API server's /readyz until it answers (used by the server role and by restore.yml). */
export function readyzWait(name: string, binary: string, register: string, retries: string | number, delay: string | number): Task {
  return {
    name,
    module: "ansible.builtin.command",
    args: { argv: [binary, "kubectl", "get", "--raw", "/readyz"] },
    register,
    until: `${register}.rc == 0`,
    retries,
    delay,
    changed_when: false,
  };
}
