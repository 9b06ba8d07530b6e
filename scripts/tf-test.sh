#!/usr/bin/env bash
# tofu validate + tofu test on the synthesized stack, offline, with the real provider binaries.
# For each scenario __tests__/terraform/fixtures/<name>.tfvars: synthesize the stack from it, put
# __tests__/terraform/<name>.tftest.hcl beside the JSON, `tofu init` from the project's provider mirror,
# `tofu validate`, then `tofu test` (a real apply with the Proxmox VMs overridden; see the .tftest.hcl files).
# The template's stack is validated too. Then, for PVE 8.4 and 9.1, the real provider against the Proxmox VE API
# simulator with no hosts behind it (lab/lab.sh, LAB_BACKEND=none, no template seeded; no root needed): the
# template built from a stand-in image served on 127.0.0.1 and an empty plan after it, then the VMs cloned from it:
# apply, a plan that shows no changes, an in-place change, destroy; then the template destroyed.
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

work="$(mktemp -d)"; [ -z "${TF_TEST_KEEP:-}" ] || echo "tf-test: scratch folder $work (kept)" >&2
[ -n "${TF_TEST_KEEP:-}" ] || trap 'rm -rf "$work"' EXIT
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
  (
    cd "$work/$name/stacks/template"
    "$tofu" init -input=false -no-color >init.log 2>&1 || { cat init.log >&2; exit 1; }
    echo "the template's stack:"
    "$tofu" validate -no-color
  ) || status=1
done
# sim_lifecycle VERSION PORT: the VM resource's whole life through the real provider, against the simulator.
sim_lifecycle() {
  local version="$1" port="$2" dir="$work/sim-$1" plan_rc images_pid
  export LAB_BACKEND=none LAB_AGENT=1 LAB_PORT="$port" LAB_DIR="$dir/lab" LAB_PVE_VERSION="$version" LAB_TEMPLATE_ID=none
  echo "== tf-test: the provider against the PVE $version API simulator (no hosts)"
  bash lab/lab.sh up >"$dir.lab.log" 2>&1 || { cat "$dir.lab.log" >&2; return 1; }
  # The stand-in cloud image and its SHA256SUMS, served on 127.0.0.1 (the simulator downloads it for real).
  mkdir -p "$dir/images"
  node -r ts-node/register lab/pve-sim/main.ts image --out "$dir/images/cloud.qcow2"
  (cd "$dir/images" && sha256sum cloud.qcow2 >SHA256SUMS)
  (cd "$dir/images" && exec python3 -m http.server --bind 127.0.0.1 $((port + 100))) >"$dir/images.log" 2>&1 &
  images_pid=$!
  (
    set -e
    # shellcheck disable=SC2030 # this subshell's own token
    export PROXMOX_VE_API_TOKEN; PROXMOX_VE_API_TOKEN="$(cat "$dir/lab/pve/token")"
    tfvars() {
      printf 'proxmox_endpoint = "https://127.0.0.1:%s/"\nproxmox_insecure = true\ntemplate_vm_id = 9000\n' "$port"
      printf 'template_image = "custom"\ntemplate_image_url = "http://127.0.0.1:%s/cloud.qcow2"\ntemplate_image_checksum = "sha256:%s"\n' \
        $((port + 100)) "$(cut -d' ' -f1 "$dir/images/SHA256SUMS")"
      printf 'ssh_public_key_file = "%s"\nk3s_version = "v1.34.0+k3s-857412ae"\n%s\n' "$PWD/__tests__/terraform/fixtures/id_ed25519.pub" "${1:-}"
    } >"$dir/terraform.tfvars"
    synth() { TFVARS="$dir/terraform.tfvars" K3SPVE_OUTPUT_DIR="$dir" npx --no-install cdktn synth --output "$dir/out" >"$dir/synth.log" 2>&1 || { cat "$dir/synth.log" >&2; exit 1; }; }
    tf() { (cd "$dir/out/stacks/k3s" && "$tofu" "$@" -input=false -no-color); }
    tt() { (cd "$dir/out/stacks/template" && "$tofu" "$@" -input=false -no-color); }
    tfvars; synth
    for _ in $(seq 1 20); do curl -sf -o /dev/null "http://127.0.0.1:$((port + 100))/SHA256SUMS" && break; sleep 0.25; done
    tt init >/dev/null
    tt apply -auto-approve >"$dir/template-apply.log" || { tail -20 "$dir/template-apply.log" >&2; exit 1; }
    grep -q "Apply complete! Resources: 2 added" "$dir/template-apply.log" || { tail -5 "$dir/template-apply.log" >&2; exit 1; }
    plan_rc=0; tt plan -detailed-exitcode >"$dir/template-plan.log" || plan_rc=$?
    [ "$plan_rc" -eq 0 ] || { echo "a plan of the template right after apply is not empty (exit $plan_rc):" >&2; tail -30 "$dir/template-plan.log" >&2; exit 1; }
    echo "the template: the image downloaded and imported, the VM made a template, an empty plan: pass"
    tf init >/dev/null
    tf apply -auto-approve >"$dir/apply-1.log" || { tail -20 "$dir/apply-1.log" >&2; exit 1; }
    grep -q "Apply complete! Resources: 5 added" "$dir/apply-1.log" || { tail -5 "$dir/apply-1.log" >&2; exit 1; }
    plan_rc=0; tf plan -detailed-exitcode >"$dir/plan-1.log" || plan_rc=$?
    [ "$plan_rc" -eq 0 ] || { echo "a plan right after apply is not empty (exit $plan_rc):" >&2; tail -30 "$dir/plan-1.log" >&2; exit 1; }
    tfvars "worker_memory_mib = 3072"; synth
    tf apply -auto-approve >"$dir/apply-2.log" || { tail -20 "$dir/apply-2.log" >&2; exit 1; }
    grep -q "Apply complete! Resources: 0 added, 2 changed, 0 destroyed" "$dir/apply-2.log" || { tail -5 "$dir/apply-2.log" >&2; exit 1; }
    plan_rc=0; tf plan -detailed-exitcode >"$dir/plan-2.log" || plan_rc=$?
    [ "$plan_rc" -eq 0 ] || { echo "a plan after the in-place change is not empty:" >&2; tail -30 "$dir/plan-2.log" >&2; exit 1; }
    tf destroy -auto-approve >"$dir/destroy.log" || { tail -20 "$dir/destroy.log" >&2; exit 1; }
    grep -q "Destroy complete! Resources: 5 destroyed" "$dir/destroy.log" || { tail -5 "$dir/destroy.log" >&2; exit 1; }
    echo "apply (3 VMs cloned from it), an empty plan, an in-place change (the memory of the 2 workers), an empty plan, destroy: pass"
    tt destroy -auto-approve >"$dir/template-destroy.log" || { tail -20 "$dir/template-destroy.log" >&2; exit 1; }
    grep -q "Destroy complete! Resources: 2 destroyed" "$dir/template-destroy.log" || { tail -5 "$dir/template-destroy.log" >&2; exit 1; }
    echo "the template destroyed, with its image: pass"
  ) || { kill "$images_pid" 2>/dev/null; bash lab/lab.sh down >/dev/null 2>&1; return 1; }
  kill "$images_pid" 2>/dev/null || true
  bash lab/lab.sh down >/dev/null 2>&1
}
sim_lifecycle 8.4 18406 || status=1
sim_lifecycle 9.1 18407 || status=1
exit "$status"
