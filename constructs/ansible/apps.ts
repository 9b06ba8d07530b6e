/**
 * The day-2 playbooks around the apps: `apps-deploy.yml` (make deploy-apps) and `dashboard-token.yml`
 * (make dashboard-token, and with dashboard_admin=true make dashboard-admin-token).
 */
import { DASHBOARD_ACCOUNTS } from "../k8s";
import { folded, Play } from "./model";
import { K3S } from "./roles/k3s_binary";

export const APPS_SOURCE = "constructs/ansible/apps.ts";

export const appsDeployPlays: readonly Play[] = [
  {
    name: "Deploy the apps (manifests/) through the Kubernetes API",
    hosts: "localhost",
    connection: "local",
    gather_facts: false,
    roles: ["k3s_apps"],
  },
];

/** How long a dashboard token lives: short, since it is printed on a terminal. */
export const DASHBOARD_TOKEN_DURATION = "1h";

export const dashboardTokenPlays: readonly Play[] = [
  {
    name: `Print a ${DASHBOARD_TOKEN_DURATION} login token for the dashboard`,
    hosts: "master[0]",
    gather_facts: false,
    become: true,
    vars: {
      // group_vars' dashboard_login_account: the admin under the homelab profile, the read-only viewer under hardened.
      dashboard_admin: false,
      dashboard_token_account: `{{ '${DASHBOARD_ACCOUNTS.admin.serviceAccount}' if dashboard_admin | bool else dashboard_login_account | default('${DASHBOARD_ACCOUNTS.admin.serviceAccount}') }}`,
    },
    tasks: [
      {
        // A TokenRequest: the token is made for this request, stored nowhere, and expires by itself.
        name: `Create a token for the ServiceAccount ${DASHBOARD_ACCOUNTS.namespace}/{{ dashboard_token_account }}`,
        module: "ansible.builtin.command",
        args: {
          argv: [K3S, "kubectl", "--namespace", DASHBOARD_ACCOUNTS.namespace, "create", "token", "{{ dashboard_token_account }}", `--duration=${DASHBOARD_TOKEN_DURATION}`],
        },
        register: "dashboard_token",
        changed_when: false,
        no_log: true,
        failed_when: false,
      },
      {
        name: "Explain a failure",
        module: "ansible.builtin.fail",
        args: {
          msg: folded(`
            No token: {{ dashboard_token.stderr | default('the command failed') | trim }}.
            Is the dashboard deployed (dashboard_enabled = true, then make deploy-apps)?`),
        },
        when: "dashboard_token.rc != 0",
      },
      {
        name: "Print the token (paste it into the dashboard's login page; it is not stored anywhere)",
        module: "ansible.builtin.debug",
        args: { msg: "{{ dashboard_token.stdout }}" },
      },
    ],
  },
];
