#!/usr/bin/python
# Source: constructs/ansible/modules/k3s_firewall.py (copied verbatim by make synth into the library/ of each role that uses it).
"""Ansible module: the node's nftables table, checked, written, loaded now and at boot, in one round trip."""

import ipaddress
import os
import shutil
import subprocess
import tempfile

from ansible.module_utils.basic import AnsibleModule

DOCUMENTATION = r"""
module: k3s_firewall
short_description: One nftables table of the node, loaded now and by a systemd unit at boot
description:
  - C(state=present) first refuses a C(controller) address (where Ansible runs, as the node sees it) outside
    C(admin_cidrs): the table would shut that machine out of SSH. Then C(nft -c) checks the ruleset, which is
    written to C(path) (0600) when it differs, and loaded with C(nft -f) when it changed or the table is not
    loaded (a reboot without the unit, a flush). The ruleset replaces only its own table (it starts with
    C(table ...; delete table ...)), never K3s's iptables rules. The unit C(unit) loads it at boot, before K3s.
  - C(state=absent) deletes the table and removes the unit and the ruleset file, where they exist.
  - Check mode reports what would change.
options:
  state: {description: present or absent., type: str, choices: [present, absent], default: present}
  ruleset: {description: The whole nft file (rendered on the controller); required with state=present., type: str, default: ''}
  table: {description: The ruleset's table, family inet., type: str, required: true}
  path: {description: Where the ruleset is kept., type: path, required: true}
  unit: {description: Name of the systemd unit that loads it at boot., type: str, required: true}
  admin_cidrs: {description: The networks SSH is open to., type: list, elements: str, default: []}
  controller: {description: The address Ansible connects from, as the node sees it; empty skips the check., type: str, default: ''}
  node: {description: The node's name, for the messages., type: str, default: the node}
author: k3s-proxmox
"""

EXAMPLES = r"""
- name: Load the host firewall
  k3s_firewall:
    ruleset: "{{ lookup('ansible.builtin.template', 'firewall.nft.j2') }}"
    table: k3s_proxmox
    path: /etc/k3s-proxmox/firewall.nft
    unit: k3s-firewall.service
    admin_cidrs: [192.168.1.0/24]
    controller: "{{ ansible_facts.env.SSH_CONNECTION.split(' ')[0] }}"
"""

RETURN = r"""
changed_files:
  description: The files written or removed.
  type: list
  returned: always
loaded:
  description: Whether the table was (re)loaded or deleted now.
  type: bool
  returned: always
"""

NFT = "/usr/sbin/nft"


def unit_text(path, table):
    """The systemd unit: loads the ruleset once at boot, before the network and K3s; stopping it deletes the table."""
    return (
        "# Managed by Ansible (role k3s_firewall): make provision overwrites local edits.\n"
        "[Unit]\n"
        "Description=Host firewall of the K3s node (nftables table inet %s)\n"
        "Wants=network-pre.target\n"
        "Before=network-pre.target k3s.service k3s-agent.service\n"
        "DefaultDependencies=no\n"
        "\n"
        "[Service]\n"
        "Type=oneshot\n"
        "RemainAfterExit=yes\n"
        "ExecStart=%s -f %s\n"
        "ExecReload=%s -f %s\n"
        "ExecStop=%s delete table inet %s\n"
        "\n"
        "[Install]\n"
        "WantedBy=multi-user.target\n" % (table, NFT, path, NFT, path, NFT, table)
    )


def read(path):
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except FileNotFoundError:
        return None


def write(path, content, mode):
    os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".%s." % os.path.basename(path))
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(content)
        os.chmod(temporary, mode)
        os.rename(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise


def run(module, argv, what, data=None):
    result = subprocess.run(argv, input=data, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        module.fail_json(msg="%s failed (%s): %s" % (what, " ".join(argv), (result.stderr or result.stdout).strip()))
    return result.stdout


def table_loaded(table):
    return subprocess.run([NFT, "list", "table", "inet", table], capture_output=True, check=False).returncode == 0


def outside(address, cidrs):
    """True when address is a valid IP in none of cidrs."""
    ip = ipaddress.ip_address(address)
    return not any(ip in ipaddress.ip_network(cidr, strict=False) for cidr in cidrs)


def present(module, p):
    node = module.params["node"]
    if not p["admin_cidrs"]:
        module.fail_json(msg="%s: admin_cidrs is empty, so the firewall would let no one in over SSH. Set admin_cidrs in terraform.tfvars." % node)
    if p["controller"]:
        try:
            refused = outside(p["controller"], p["admin_cidrs"])
        except ValueError as error:
            module.fail_json(msg="%s: cannot read the controller's address or admin_cidrs: %s." % (node, error))
        if refused:
            module.fail_json(msg=(
                "%s sees this machine (where make provision runs) at %s, which is in none of admin_cidrs (%s): the firewall "
                "would shut it out of SSH and the API. Add its address or network to admin_cidrs in terraform.tfvars, then "
                "make synth and make provision again. The firewall was not changed."
            ) % (node, p["controller"], ", ".join(p["admin_cidrs"])))
    if not os.path.exists(NFT):
        module.fail_json(msg="%s: %s is missing; install the nftables package (make provision does, in the base role's transaction)." % (node, NFT))
    # Checked before anything is written: a broken ruleset never reaches the file the unit loads at boot.
    run(module, [NFT, "-c", "-f", "-"], "Checking the ruleset", data=p["ruleset"])
    changed = []
    ruleset_changed = read(p["path"]) != p["ruleset"].encode("utf-8")
    unit_path = os.path.join("/etc/systemd/system", p["unit"])
    unit_content = unit_text(p["path"], p["table"]).encode("utf-8")
    unit_changed = read(unit_path) != unit_content
    enabled = subprocess.run(["systemctl", "is-enabled", "--quiet", p["unit"]], check=False).returncode == 0
    load = ruleset_changed or not table_loaded(p["table"])
    changed += [p["path"]] if ruleset_changed else []
    changed += [unit_path] if unit_changed else []
    if module.check_mode:
        return dict(changed=bool(changed) or load or not enabled, changed_files=changed, loaded=load)
    if ruleset_changed:
        write(p["path"], p["ruleset"].encode("utf-8"), 0o600)
    if unit_changed:
        write(unit_path, unit_content, 0o644)
        run(module, ["systemctl", "daemon-reload"], "Reloading systemd")
    if unit_changed or not enabled:
        run(module, ["systemctl", "enable", p["unit"]], "Enabling %s" % p["unit"])
    if load:
        run(module, [NFT, "-f", p["path"]], "Loading the firewall")
    return dict(changed=bool(changed) or load or not enabled, changed_files=changed, loaded=load)


def absent(module, p):
    unit_path = os.path.join("/etc/systemd/system", p["unit"])
    loaded = os.path.exists(NFT) and table_loaded(p["table"])
    changed = [path for path in (unit_path, p["path"]) if os.path.lexists(path)]
    if module.check_mode or not (loaded or changed):
        return dict(changed=loaded or bool(changed), changed_files=changed, loaded=loaded)
    if os.path.lexists(unit_path):
        run(module, ["systemctl", "disable", p["unit"]], "Disabling %s" % p["unit"])
    if loaded:
        run(module, [NFT, "delete", "table", "inet", p["table"]], "Deleting the firewall's table")
    for path in changed:
        os.unlink(path)
    if unit_path in changed:
        run(module, ["systemctl", "daemon-reload"], "Reloading systemd")
    return dict(changed=True, changed_files=changed, loaded=loaded)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            state=dict(type="str", choices=["present", "absent"], default="present"),
            ruleset=dict(type="str", default=""),
            table=dict(type="str", required=True),
            path=dict(type="path", required=True),
            unit=dict(type="str", required=True),
            admin_cidrs=dict(type="list", elements="str", default=[]),
            controller=dict(type="str", default=""),
            node=dict(type="str", default="the node"),
        ),
        required_if=[("state", "present", ["ruleset"])],
        supports_check_mode=True,
    )
    p = module.params
    module.exit_json(**(present(module, p) if p["state"] == "present" else absent(module, p)))


if __name__ == "__main__":
    main()
