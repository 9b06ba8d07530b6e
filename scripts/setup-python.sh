#!/usr/bin/env bash
# Creates the Python virtualenv with the pinned Ansible tools (requirements.txt) outside the repository:
#
#   ${K3SPVE_CACHE:-~/.cache/k3s-proxmox}/venv-<first 12 hex of sha256(requirements.txt)>/
#
# and prints its bin folder on stdout (everything else goes to stderr), so callers can do
#   PATH="$(bash scripts/setup-python.sh):$PATH"
# A new pin gives a new hash and so a fresh venv; a re-run with the venv present only checks it (about a
# second). PYTHON=/path/to/python3 picks the interpreter (ansible-core 2.19 needs Python >= 3.11).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${K3SPVE_CACHE:-$HOME/.cache/k3s-proxmox}"
REQUIREMENTS="$ROOT/requirements.txt"

log() { printf '[setup-python] %s\n' "$*" >&2; }
die() { printf '[setup-python] ERROR: %s\n' "$*" >&2; exit 1; }

[ -f "$REQUIREMENTS" ] || die "missing $REQUIREMENTS"
HASH="$(sha256sum "$REQUIREMENTS" | cut -c1-12)"
VENV="$CACHE/venv-$HASH"
STAMP="$VENV/.complete"

if [ -f "$STAMP" ] && [ -x "$VENV/bin/ansible-playbook" ] && "$VENV/bin/python" -c 'import ansible' 2>/dev/null; then
  printf '%s\n' "$VENV/bin"
  exit 0
fi

PYTHON="${PYTHON:-}"
if [ -z "$PYTHON" ]; then
  for candidate in python3.13 python3.12 python3.11 python3; do
    if command -v "$candidate" >/dev/null 2>&1 \
      && "$candidate" -c 'import sys, venv; sys.exit(0 if sys.version_info >= (3, 11) else 1)' 2>/dev/null; then
      PYTHON="$(command -v "$candidate")"
      break
    fi
  done
fi
[ -n "$PYTHON" ] || die "no Python >= 3.11 with the venv module found; install python3 and python3-venv (Debian) or set PYTHON=/path/to/python3"

log "creating $VENV with $("$PYTHON" --version 2>&1)"
rm -rf "$VENV"
mkdir -p "$CACHE"
"$PYTHON" -m venv "$VENV" || die "'$PYTHON -m venv' failed; on Debian/Ubuntu install python3-venv"
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip >&2 \
  || die "upgrading pip in $VENV failed (is the Python package index reachable?)"
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$REQUIREMENTS" >&2 \
  || die "installing $REQUIREMENTS into $VENV failed (see the pip output above)"
touch "$STAMP"
versions="$("$VENV/bin/python" -m pip list --disable-pip-version-check --format=freeze 2>/dev/null \
  | grep -E '^(ansible-core|ansible|kubernetes|ansible-lint|yamllint)==' | tr '\n' ' ')"
log "ready: ${versions% }"
printf '%s\n' "$VENV/bin"
