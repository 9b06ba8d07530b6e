#!/usr/bin/python
# Source: constructs/ansible/library/etcd_snapshot_check.py (copied verbatim by make synth).
"""Ansible module: is a file an intact etcd snapshot? Read-only; restore.yml runs it before changing anything."""

import hashlib
import os
import struct
import zipfile

from ansible.module_utils.basic import AnsibleModule

DOCUMENTATION = r"""
module: etcd_snapshot_check
short_description: Check that a file is an intact etcd snapshot before it is restored
description:
  - An etcd snapshot (what C(k3s etcd-snapshot save) writes) is a bbolt database, a whole number of pages,
    followed by the SHA-256 of those pages. The module checks the hash, and the magic number, version and
    FNV-1a checksum of the database's two meta pages, at least one of which must be intact.
  - A K3s-compressed snapshot (C(.zip), etcd-snapshot-compress) is checked through its single member.
  - Never changes anything. Fails, with the reason, when the file is missing or damaged.
options:
  path:
    description: The snapshot file.
    type: path
    required: true
author: k3s-proxmox
"""

EXAMPLES = r"""
- name: Check the snapshot
  etcd_snapshot_check:
    path: backups/k3spve-20261123-210000-k3s-master-1-1795467600
"""

RETURN = r"""
size:
  description: Size of the database in bytes (without the hash).
  type: int
  returned: success
sha256_verified:
  description: Whether the file carried a SHA-256 trailer, which matched.
  type: bool
  returned: success
"""

BOLT_MAGIC = 0xED0CDAED
BOLT_VERSION = 2
PAGE_HEADER = 16
META_CHECKED = 56  # magic, version, page size, flags, root bucket (16), freelist, pgid, txid
HASH_SIZE = 32


def fnv1a64(data):
    value = 0xCBF29CE484222325
    for byte in bytearray(data):
        value = ((value ^ byte) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return value


def meta_page_ok(page):
    """A bbolt meta page: the right magic and version, and its checksum over the fields before it."""
    meta = page[PAGE_HEADER:PAGE_HEADER + META_CHECKED + 8]
    if len(meta) < META_CHECKED + 8:
        return False, 0
    magic, version, page_size = struct.unpack_from("<III", meta, 0)
    checksum = struct.unpack_from("<Q", meta, META_CHECKED)[0]
    ok = magic == BOLT_MAGIC and version == BOLT_VERSION and fnv1a64(meta[:META_CHECKED]) == checksum
    return ok, page_size


def check_stream(read, size):
    """Problems found in a snapshot of `size` bytes read by `read(n)`; also the database size and hash flag."""
    has_hash = size % 512 == HASH_SIZE
    if size % 512 not in (0, HASH_SIZE):
        return "its size (%d bytes) is neither whole database pages nor pages plus a SHA-256" % size, 0, False
    db_size = size - HASH_SIZE if has_hash else size
    if db_size < 2 * 4096:
        return "it is too small (%d bytes) to hold an etcd database" % size, 0, False
    digest = hashlib.sha256()
    head = b""
    remaining = db_size
    while remaining > 0:
        chunk = read(min(remaining, 1 << 20))
        if not chunk:
            return "it ended early (truncated)", 0, False
        if len(head) < 65536:
            head += chunk[:65536 - len(head)]
        digest.update(chunk)
        remaining -= len(chunk)
    if has_hash and digest.digest() != read(HASH_SIZE):
        return "its SHA-256 does not match the one etcd wrote at its end: the file is damaged or was edited", 0, False
    first_ok, page_size = meta_page_ok(head)
    second_ok = False
    for candidate in ([page_size] if first_ok else []) + [4096, 8192, 16384, 65536]:
        if meta_page_ok(head[candidate:candidate + 4096])[0]:
            second_ok = True
            break
    if not (first_ok or second_ok):
        return "it is not an etcd (bbolt) database: no intact meta page", 0, False
    return None, db_size, has_hash


def check(path):
    if not os.path.isfile(path):
        return "it does not exist or is not a regular file", 0, False
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            members = [m for m in archive.infolist() if not m.is_dir()]
            if len(members) != 1:
                return "it is a zip with %d files; a compressed K3s snapshot holds exactly one" % len(members), 0, False
            try:
                with archive.open(members[0]) as stream:
                    return check_stream(stream.read, members[0].file_size)
            except (zipfile.BadZipFile, OSError, EOFError) as error:
                return "its zip data is damaged (%s)" % error, 0, False
    with open(path, "rb") as stream:
        return check_stream(stream.read, os.path.getsize(path))


def main():
    module = AnsibleModule(argument_spec={"path": {"type": "path", "required": True}}, supports_check_mode=True)
    path = module.params["path"]
    problem, size, verified = check(path)
    if problem:
        module.fail_json(msg="%s is not a usable etcd snapshot: %s. Nothing was changed." % (path, problem))
    module.exit_json(changed=False, size=size, sha256_verified=verified)


if __name__ == "__main__":
    main()
