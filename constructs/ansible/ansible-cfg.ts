/** `ansible/ansible.cfg`: read when ansible-playbook runs in ansible/ (or with ANSIBLE_CONFIG pointing here). */
import { iniFile } from "./render";

export const ANSIBLE_CFG_SOURCE = "constructs/ansible/ansible-cfg.ts";

export function ansibleCfg(): string {
  return iniFile(ANSIBLE_CFG_SOURCE, {
    defaults: [
      ["inventory", "inventory/hosts.ini", "Written by make apply (terraform local_file); relative paths here are relative to this file."],
      ["roles_path", "roles"],
      ["interpreter_python", "auto_silent", "Use the node's python3 without a warning."],
      ["forks", "20"],
      ["timeout", "30", "SSH connect timeout, seconds."],
      [
        "force_handlers",
        "True",
        "Run notified handlers even when a later task fails, so a changed configuration is never left un-restarted.",
      ],
      ["callback_result_format", "yaml", "Task results (and errors) printed as YAML: readable multi-line messages."],
      ["nocows", "True"],
    ],
    ssh_connection: [
      ["pipelining", "True", "Fewer SSH round trips; needs no requiretty in sudoers (the default on current distributions)."],
      [
        "ssh_args",
        "-o ControlMaster=auto -o ControlPersist=60s -o StrictHostKeyChecking=accept-new",
        "Learn a new node's host key on first contact, refuse a changed one (after re-creating a VM: ssh-keygen -R <ip>).",
      ],
    ],
  });
}
