#!/usr/bin/env bash
# tofu validate + tofu test on the synthesized stack, offline, with the real provider binaries.
# For each scenario __tests__/terraform/fixtures/<name>.tfvars: synthesize the stack from it, put
# __tests__/terraform/<name>.tftest.hcl beside the JSON, `tofu init` from the project's provider mirror,
# `tofu validate`, then `tofu test` (a real apply with the Proxmox VMs overridden; see the .tftest.hcl files).
set -euo pipefail
cd "$(dirname "$0")/.."
cache="${K3SPVE_CACHE:-$HOME/.cache/k3s-proxmox}"
tofu="$cache/tools/bin/tofu"
[ -x "$tofu" ] || tofu="$(command -v tofu || true)"
[ -n "$tofu" ] || { echo "tf-test: no tofu binary; run 'make setup' first" >&2; exit 1; }
[ -f "$cache/tools/tofurc" ] || { echo "tf-test: no provider mirror at $cache/tools/tofurc; run 'make setup' first" >&2; exit 1; }
export TF_CLI_CONFIG_FILE="$cache/tools/tofurc" TF_IN_AUTOMATION=1 CHECKPOINT_DISABLE=1
# The provider is configured but never called (every VM is overridden); it still wants credentials to exist.
export PROXMOX_VE_API_TOKEN='tests@pve!offline=00000000-0000-0000-0000-000000000000'

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
status=0
for tfvars in __tests__/terraform/fixtures/*.tfvars; do
  name="$(basename "$tfvars" .tfvars)"
  echo "== tf-test: $name"
  TFVARS="$tfvars" K3SPVE_OUTPUT_DIR="$work/$name-files" npx --no-install cdktn synth --output "$work/$name" >"$work/$name.synth.log" 2>&1 \
    || { cat "$work/$name.synth.log" >&2; echo "tf-test: synth of $tfvars failed" >&2; exit 1; }
  stack="$work/$name/stacks/k3s"
  cp "__tests__/terraform/$name.tftest.hcl" "$stack/"
  (
    cd "$stack"
    "$tofu" init -input=false -no-color >init.log 2>&1 || { cat init.log >&2; exit 1; }
    "$tofu" validate -no-color
    "$tofu" test -no-color -var "output_dir=$work/$name-files"
  ) || status=1
done
exit "$status"
