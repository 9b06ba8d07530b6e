#!/usr/bin/python
# Source: constructs/ansible/modules/k3s_files.py (copied verbatim by make synth into the library/ of each role that uses it).
"""Ansible module: several files, each with its content, mode and owner, written in one round trip."""

import grp
import os
import pwd
import tempfile

from ansible.module_utils.basic import AnsibleModule

DOCUMENTATION = r"""
module: k3s_files
short_description: Write several files (content, mode, owner, group) in one round trip
description:
  - For what ansible.builtin.template does one file at a time, with two or three module calls per file even when
    nothing changes (a stat, then the file module for the attributes). Here the contents come rendered from the
    controller (the template lookup) and the node compares and writes them all at once.
  - A file whose content, mode, owner and group are already right is left alone. Another content is written to a
    temporary file beside it and renamed over it, so a reader never sees half a file. Only attributes that differ
    are changed. The folder must exist.
  - Check mode reports what would change. The result names the changed files, never their contents (they may hold
    secrets); there is no diff output.
options:
  files:
    description: The files.
    type: list
    elements: dict
    required: true
    suboptions:
      dest: {description: Absolute path of the file., type: path, required: true}
      content: {description: Its whole content., type: str, required: true}
      mode: {description: Octal mode, e.g. '0644'., type: str, required: true}
      owner: {description: Owning user., type: str, default: root}
      group: {description: Owning group., type: str, default: root}
author: k3s-proxmox
"""

EXAMPLES = r"""
- name: Write the kernel settings and the modules to load at boot
  k3s_files:
    files:
      - {dest: /etc/sysctl.d/90-k3s.conf, content: "{{ lookup('ansible.builtin.template', 'sysctl.conf.j2') }}", mode: "0644"}
      - {dest: /etc/modules-load.d/k3s.conf, content: "{{ lookup('ansible.builtin.template', 'modules-load.conf.j2') }}", mode: "0644"}
"""

RETURN = r"""
changed_files:
  description: The files whose content or attributes changed (would change, in check mode).
  type: list
  returned: always
"""


def current_state(dest):
    """(content bytes or None, mode, uid, gid) of dest; content None when it does not exist."""
    try:
        status = os.lstat(dest)
    except FileNotFoundError:
        return None, None, None, None
    if not os.path.isfile(dest) or os.path.islink(dest):
        return b"", None, None, None  # a link or another kind of file: replaced by a regular file
    with open(dest, "rb") as current:
        return current.read(), status.st_mode & 0o7777, status.st_uid, status.st_gid


def plan(spec):
    """What writing `spec` would change: (content differs, attributes differ, mode, uid, gid)."""
    mode = int(spec["mode"], 8)
    uid = pwd.getpwnam(spec["owner"]).pw_uid
    gid = grp.getgrnam(spec["group"]).gr_gid
    content, have_mode, have_uid, have_gid = current_state(spec["dest"])
    new_content = content != spec["content"].encode("utf-8")
    new_attributes = new_content or (have_mode, have_uid, have_gid) != (mode, uid, gid)
    return new_content, new_attributes, mode, uid, gid


def write(spec, mode, uid, gid):
    """The content into a temporary file beside dest, its attributes set, renamed over dest."""
    folder = os.path.dirname(spec["dest"])
    handle, temporary = tempfile.mkstemp(dir=folder, prefix=".%s." % os.path.basename(spec["dest"]))
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(spec["content"].encode("utf-8"))
        os.chown(temporary, uid, gid)
        os.chmod(temporary, mode)
        os.rename(temporary, spec["dest"])
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise


def main():
    module = AnsibleModule(
        argument_spec=dict(
            files=dict(
                type="list", elements="dict", required=True,
                options=dict(
                    dest=dict(type="path", required=True),
                    content=dict(type="str", required=True, no_log=True),  # may hold secrets (the K3s token)
                    mode=dict(type="str", required=True),
                    owner=dict(type="str", default="root"),
                    group=dict(type="str", default="root"),
                ),
            ),
        ),
        supports_check_mode=True,
    )
    changed = []
    for spec in module.params["files"]:
        dest = spec["dest"]
        if not os.path.isdir(os.path.dirname(dest)):
            module.fail_json(msg="Cannot write %s: the folder %s does not exist." % (dest, os.path.dirname(dest)), changed_files=changed)
        try:
            new_content, new_attributes, mode, uid, gid = plan(spec)
        except KeyError as error:
            module.fail_json(msg="Cannot write %s: no such user or group (%s)." % (dest, error), changed_files=changed)
        except ValueError:
            module.fail_json(msg="Cannot write %s: mode %r is not octal." % (dest, spec["mode"]), changed_files=changed)
        if not new_attributes:
            continue
        changed.append(dest)
        if module.check_mode:
            continue
        try:
            if new_content:
                write(spec, mode, uid, gid)
            else:
                os.chown(dest, uid, gid)
                os.chmod(dest, mode)
        except OSError as error:
            module.fail_json(msg="Cannot write %s: %s." % (dest, error), changed_files=changed)
    module.exit_json(changed=bool(changed), changed_files=changed)


if __name__ == "__main__":
    main()
