#!/usr/bin/env bash
# Lints the generated Ansible tree (ansible/) with the pinned tools from scripts/setup-python.sh:
#   1. yamllint            (.yamllint at the repository root)
#   2. ansible-lint        (.ansible-lint: profile production, offline, warnings are failures)
#   3. ansible-playbook --syntax-check of every playbook (ansible/*.yml), against a sample inventory shaped like the one
#      `make apply` writes (groups master, workers, k3s_cluster)
# The tree must have been generated first (make synth, or committed). Exits non-zero on the first failure.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

log() { printf '[lint-ansible] %s\n' "$*" >&2; }
die() { printf '[lint-ansible] ERROR: %s\n' "$*" >&2; exit 1; }

[ -f ansible/site.yml ] || die "ansible/site.yml is missing: generate the tree first (make synth)"
BIN="$(bash scripts/setup-python.sh)" || die "could not set up the Python tools (scripts/setup-python.sh)"
export PATH="$BIN:$PATH"
export ANSIBLE_CONFIG="$ROOT/ansible/ansible.cfg" ANSIBLE_NOCOLOR=1 NO_COLOR=1 ANSIBLE_LOCAL_TEMP="${TMPDIR:-/tmp}"

log "yamllint"
yamllint --strict ansible/ || die "yamllint found problems in ansible/ (fix the generator in constructs/ansible/, then make synth)"

log "ansible-lint (profile production)"
ansible-lint ansible/ || die "ansible-lint found problems in ansible/ (fix the generator in constructs/ansible/, then make synth)"

log "ansible-playbook --syntax-check"
INVENTORY="$(mktemp)"
trap 'rm -f "$INVENTORY"' EXIT
cat >"$INVENTORY" <<'INI'
# Sample inventory for the syntax check, shaped like ansible/inventory/hosts.ini.
[master]
k3s-master-1 ansible_host=192.0.2.10

[workers]
k3s-worker-1 ansible_host=192.0.2.20
k3s-worker-2 ansible_host=192.0.2.21

[k3s_cluster:children]
master
workers

[k3s_cluster:vars]
ansible_user=debian
ansible_ssh_private_key_file=/dev/null
INI
for playbook in ansible/*.yml; do
  ansible-playbook --syntax-check -i "$INVENTORY" "$playbook" >/dev/null || die "ansible-playbook --syntax-check $playbook failed"
done
log "clean: yamllint, ansible-lint (production), syntax-check"
