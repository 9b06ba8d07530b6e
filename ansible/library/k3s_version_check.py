#!/usr/bin/python
# Source: constructs/ansible/library/k3s_version_check.py (copied verbatim by make synth).
"""Ansible module: which K3s does a node run, and may it go to the target version? Read-only."""

import os
import re

from ansible.module_utils.basic import AnsibleModule

DOCUMENTATION = r"""
module: k3s_version_check
short_description: Read a node's K3s version and judge the step to a target version
description:
  - Runs C(<binary> --version) (when the binary exists) and compares the Kubernetes part of that version
    (v1.34.0 of v1.34.0+k3s1) with the target's, the way Kubernetes allows a version change.
  - C(refusal) is empty when the step is allowed; otherwise it says why and what to do instead. Refused are a
    downgrade (an older Kubernetes patch, minor or major), a skipped minor version (1.34 to 1.36), another major
    version, a node without K3s and a version that cannot be read. The same Kubernetes version with another K3s
    build suffix (v1.34.0+k3s1 to v1.34.0+k3s2) is allowed both ways.
  - Never changes anything and never fails on a refusal: the playbook decides what a refusal means.
options:
  binary:
    description: Path of the K3s binary on the node.
    type: path
    required: true
  version:
    description: The target K3s version, e.g. v1.34.1+k3s1.
    type: str
    required: true
  node:
    description: The node's name, for the messages.
    type: str
    required: true
author: k3s-proxmox
"""

EXAMPLES = r"""
- name: Read the installed K3s version and check the step
  k3s_version_check:
    binary: /usr/local/bin/k3s
    version: v1.35.2+k3s1
    node: "{{ inventory_hostname }}"
  register: upgrade_version
"""

RETURN = r"""
installed:
  description: The installed K3s version, '' when the binary is missing or says no version.
  type: str
  returned: always
upgrade:
  description: Whether the installed version differs from the target.
  type: bool
  returned: always
refusal:
  description: Why the step to the target is not allowed, and what to do instead; '' when it is.
  type: str
  returned: always
installed_kubernetes:
  description: The Kubernetes part (major.minor.patch) of the installed version, '' if unknown.
  type: str
  returned: always
target_kubernetes:
  description: The Kubernetes part of the target version, '' if the target is no version.
  type: str
  returned: always
"""

# v<major>.<minor>.<patch>, an optional pre-release (-rc1) and an optional build (+k3s1, +k3s-857412ae-dirty).
VERSION = re.compile(r"^v?(\d+)\.(\d+)\.(\d+)(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.+-]+)?$")


def kubernetes_part(version):
    """(major, minor, patch) of a K3s version, or None when it is none."""
    match = VERSION.match(version or "")
    return tuple(int(part) for part in match.groups()) if match else None


def installed_version(output):
    """The version from `k3s --version` output ("k3s version v1.34.0+k3s1 (1a2b3c4d)"), '' if none."""
    match = re.search(r"^k3s version (\S+)", output or "", re.MULTILINE)
    return match.group(1) if match else ""


def dotted(parts):
    return "%d.%d.%d" % parts


def plan(installed, target, node):
    """The verdict on moving `node` from `installed` ('' = no K3s) to `target`: a dict as the module returns it."""
    result = dict(installed=installed, upgrade=bool(installed) and installed != target, refusal="", installed_kubernetes="", target_kubernetes="")
    want = kubernetes_part(target)
    have = kubernetes_part(installed)
    result["target_kubernetes"] = dotted(want) if want else ""
    result["installed_kubernetes"] = dotted(have) if have else ""
    if want is None:
        result["refusal"] = (
            "k3s_version = '%s' is no K3s version (v<major>.<minor>.<patch>+k3s<n>, as the K3s releases name them): "
            "fix k3s_version in terraform.tfvars and run make synth." % target
        )
    elif not installed:
        result["refusal"] = (
            "%s has no K3s installed: make upgrade only upgrades nodes that run K3s. Run make provision first "
            "(it installs %s on new nodes)." % (node, target)
        )
    elif installed == target:
        pass
    elif have is None:
        result["refusal"] = (
            "%s runs K3s '%s', which is no version this check can compare with %s: upgrade it by hand "
            "or reinstall it (make reset, make provision)." % (node, installed, target)
        )
    elif want < have:
        result["refusal"] = (
            "%s runs K3s %s (Kubernetes %s); %s (Kubernetes %s) would be a downgrade, which Kubernetes does not support in "
            "place (etcd and the API objects may already be stored in the newer format). If k3s_version was lowered by "
            "mistake, set it back to %s in terraform.tfvars and run make synth. To really go back, restore the cluster as "
            "it was before the upgrade: make reset, make provision (installs the older version), then make restore "
            "SNAPSHOT=<a snapshot taken before the upgrade>."
            % (node, installed, dotted(have), target, dotted(want), installed)
        )
    elif want[0] != have[0]:
        result["refusal"] = (
            "%s runs K3s %s (Kubernetes %s); %s changes the major version (Kubernetes %s), which this upgrade does not do."
            % (node, installed, dotted(have), target, dotted(want))
        )
    elif want[1] > have[1] + 1:
        step = "%d.%d" % (have[0], have[1] + 1)
        result["refusal"] = (
            "%s runs K3s %s (Kubernetes %s); %s (Kubernetes %s) skips a minor version, and Kubernetes upgrades one minor "
            "version at a time. Upgrade to the newest patch of %s first (k3s_version = v%s.<newest patch>+k3s<n> in "
            "terraform.tfvars, make synth, make upgrade), then to %s."
            % (node, installed, dotted(have), target, dotted(want), step, step, target)
        )
    return result


def main():
    module = AnsibleModule(
        argument_spec=dict(
            binary=dict(type="path", required=True),
            version=dict(type="str", required=True),
            node=dict(type="str", required=True),
        ),
        supports_check_mode=True,
    )
    binary = module.params["binary"]
    installed = ""
    if os.path.isfile(binary):
        rc, out, err = module.run_command([binary, "--version"])
        installed = installed_version(out) if rc == 0 else ""
        if not installed:
            problem = "%s: '%s --version' said %s" % (module.params["node"], binary, (out + err).strip() or "nothing (exit %d)" % rc)
            module.exit_json(
                changed=False, installed="", upgrade=True, installed_kubernetes="", target_kubernetes="",
                refusal=problem + ": the binary is damaged or no K3s. Reinstall it with make provision.",
            )
    module.exit_json(changed=False, **plan(installed, module.params["version"], module.params["node"]))


if __name__ == "__main__":
    main()
