# shellcheck shell=bash
# Sourced by e2e/run.sh after e2e/lib.sh. Checks take local functions, and commands in single quotes on purpose:
# shellcheck disable=SC2016,SC2034,SC2329
# make destroy: every VM goes, and with it every host; a second make destroy changes nothing. The template stays,
# until make template-destroy removes it and its image (and a second one changes nothing).

scenario_destroy() {
  local t0
  ensure_vms
  t0=$SECONDS
  make_logged "$RUN/destroy-1.log" destroy CONFIRM=yes || tail -30 "$RUN/destroy-1.log"
  timing "make destroy, $((MASTERS + WORKERS)) VMs" "$((SECONDS - t0))s"
  check "make destroy destroys the VMs, the template check and the inventory" \
    log_says "$RUN/destroy-1.log" "Destroy complete! Resources: $((MASTERS + WORKERS + 2)) destroyed"
  check "no VM is left in the simulator (only the template)" test -z "$(vm_ids)"
  check "no host is left" test "$(running_hosts)" -eq 0
  check "... not even a stopped one (bash lab/hosts.sh status lists none)" bash -c '! bash "$1/lab/hosts.sh" status 2>/dev/null | grep -q .' _ "$ROOT"
  make_logged "$RUN/destroy-2.log" destroy CONFIRM=yes || tail -30 "$RUN/destroy-2.log"
  check "a second make destroy changes nothing" log_says "$RUN/destroy-2.log" "Resources: 0 destroyed"
  check "the template outlives make destroy" api_has_template
  make_logged "$RUN/template-destroy-1.log" template-destroy CONFIRM=yes || tail -30 "$RUN/template-destroy-1.log"
  check "make template-destroy removes the template and its image" log_says "$RUN/template-destroy-1.log" "Destroy complete! Resources: 2 destroyed"
  check "... no VM is left at all" test -z "$(api GET /nodes/pve/qemu | jq -r '.data[].vmid')"
  check "... and no file on the image storage" test -z "$(api GET /nodes/pve/storage/local/content | jq -r '.data[].volid')"
  make_logged "$RUN/template-destroy-2.log" template-destroy CONFIRM=yes || tail -30 "$RUN/template-destroy-2.log"
  check "a second make template-destroy changes nothing" log_says "$RUN/template-destroy-2.log" "Resources: 0 destroyed"
  rm -f "$RUN/kubeconfig"
}
