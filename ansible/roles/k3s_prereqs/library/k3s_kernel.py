#!/usr/bin/python
# Source: constructs/ansible/modules/k3s_kernel.py (copied verbatim by make synth into the library/ of each role that uses it).
"""Ansible module: swap off, the kernel modules and the running kernel settings K3s needs, in one round trip."""

import os

from ansible.module_utils.basic import AnsibleModule

DOCUMENTATION = r"""
module: k3s_kernel
short_description: Make sure kernel modules are present and kernel settings have their values, now
description:
  - A module counts as present when C(/sys/module/<name>) exists, or, where /sys/module is hidden (containers), by its
    own trace - C(/proc/sys/net/bridge) for br_netfilter, an C(overlay) line in C(/proc/filesystems) for overlay. Only a
    module with none of these is loaded, with C(modprobe). A module built into the kernel is never given to modprobe,
    which fails on kernels without /lib/modules even when the feature is there.
  - With C(swap_off), every active swap area (C(/proc/swaps)) is turned off first.
  - Then each kernel setting whose running value (C(/proc/sys/...)) differs from the wanted one is written there.
  - The settings at boot are files the role writes (/etc/modules-load.d, /etc/sysctl.d); this module only changes the
    running kernel. Check mode reports what would change and changes nothing.
options:
  modules:
    description: Kernel modules that must be present.
    type: list
    elements: str
    default: []
  sysctl:
    description: Kernel settings (dotted names, as sysctl names them) and their wanted values.
    type: dict
    default: {}
  swap_off:
    description: Turn every active swap area off (C(swapoff --all)) when C(/proc/swaps) lists one.
    type: bool
    default: false
  node:
    description: The node's name, for the messages.
    type: str
    required: true
author: k3s-proxmox
"""

EXAMPLES = r"""
- name: Load the kernel modules and apply the kernel settings
  k3s_kernel:
    modules: [br_netfilter, overlay]
    sysctl: {net.ipv4.ip_forward: 1}
    node: "{{ inventory_hostname }}"
"""

RETURN = r"""
swap:
  description: The swap areas that were active and are turned off (would be, in check mode).
  type: list
  returned: always
loaded:
  description: The modules loaded with modprobe (would be, in check mode).
  type: list
  returned: always
settings:
  description: The settings changed, as {name - {before, after}}.
  type: dict
  returned: always
"""

# A module whose /sys/module entry can be hidden, and the file its presence leaves anyway.
TRACES = {"br_netfilter": "/proc/sys/net/bridge"}


def module_present(name, root="/"):
    """Whether the kernel has module `name`, loaded or built in (root: where /sys and /proc are, for tests)."""
    if os.path.isdir(os.path.join(root, "sys/module", name)):
        return True
    if name in TRACES and os.path.exists(os.path.join(root, TRACES[name].lstrip("/"))):
        return True
    if name == "overlay":
        try:
            with open(os.path.join(root, "proc/filesystems")) as filesystems:
                return any(line.split()[-1:] == ["overlay"] for line in filesystems)
        except OSError:
            return False
    return False


def active_swap(root="/"):
    """The swap areas /proc/swaps lists (its first line is a header)."""
    try:
        with open(os.path.join(root, "proc/swaps")) as swaps:
            return [line.split()[0] for line in swaps.read().splitlines()[1:] if line.strip()]
    except OSError:
        return []


def sysctl_path(name, root="/"):
    """/proc/sys/<name with dots as slashes>."""
    return os.path.join(root, "proc/sys", *name.split("."))


def read_sysctl(name, root="/"):
    """The running value of a setting ('' when the kernel has no such setting)."""
    try:
        with open(sysctl_path(name, root)) as current:
            return " ".join(current.read().split())
    except OSError:
        return ""


def main():
    module = AnsibleModule(
        argument_spec=dict(
            modules=dict(type="list", elements="str", default=[]),
            sysctl=dict(type="dict", default={}),
            swap_off=dict(type="bool", default=False),
            node=dict(type="str", required=True),
        ),
        supports_check_mode=True,
    )
    node = module.params["node"]
    swap = active_swap() if module.params["swap_off"] else []
    if swap and not module.check_mode:
        rc, out, err = module.run_command(["swapoff", "--all"])
        if rc != 0:
            module.fail_json(msg="swapoff --all failed on %s (swap: %s): %s" % (node, ", ".join(swap), (err or out).strip()),
                             swap=swap, loaded=[], settings={})
    loaded = []
    for name in module.params["modules"]:
        if module_present(name):
            continue
        loaded.append(name)
        if module.check_mode:
            continue
        rc, out, err = module.run_command(["modprobe", name])
        if rc != 0:
            module.fail_json(
                msg="A kernel module K3s needs, %s, is neither loaded nor built into the kernel of %s, and modprobe could "
                "not load it: %s. Install the kernel's modules package (linux-image-* / kernel-modules) or use a kernel "
                "with it built in." % (name, node, (err or out).strip() or "exit %d" % rc),
                swap=swap, loaded=loaded[:-1], settings={},
            )
    settings = {}
    for name, value in sorted(module.params["sysctl"].items()):
        want = " ".join(str(value).split())
        before = read_sysctl(name)
        if before == want:
            continue
        if not os.path.exists(sysctl_path(name)) and not (module.check_mode and loaded):
            module.fail_json(
                msg="%s has no kernel setting %s (no %s): a module it belongs to is missing, or the name is wrong. Fix "
                "k3s_prereqs_sysctl or the kernel." % (node, name, sysctl_path(name)),
                swap=swap, loaded=loaded, settings=settings,
            )
        settings[name] = dict(before=before, after=want)
        if module.check_mode:
            continue
        try:
            with open(sysctl_path(name), "w") as target:
                target.write(want + "\n")
        except OSError as error:
            module.fail_json(
                msg="Could not set %s = %s on %s (running value %s): %s. /proc/sys is read-only in some containers: set it on "
                "the host then." % (name, want, node, before, error),
                swap=swap, loaded=loaded, settings=settings,
            )
    module.exit_json(changed=bool(swap or loaded or settings), swap=swap, loaded=loaded, settings=settings)


if __name__ == "__main__":
    main()
