# shellcheck shell=bash
# Sourced by e2e/run.sh after e2e/lib.sh. Checks take local functions, and commands in single quotes on purpose:
# shellcheck disable=SC2016,SC2034,SC2329
# Refused by the API, before anything exists: a wrong token gets the provider's 401; a template_vm_id that names no
# template (one declared made by hand: template_image = "prebuilt") stops the plan at the template check, with a
# message that names the setting. Nothing is created.

scenario_refusals() {
  local vms_before hosts_before
  configure
  vms_before="$(vm_ids)"
  hosts_before="$(running_hosts)"
  nothing_new() { [ "$(vm_ids)" = "$vms_before" ] && [ "$(running_hosts)" = "$hosts_before" ]; }

  PROXMOX_VE_API_TOKEN='terraform@pve!k3s=00000000-0000-0000-0000-000000000000' \
    make_logged "$RUN/apply-wrong-token.log" apply CONFIRM=yes && note "make apply with a wrong token succeeded?"
  check "a wrong token: make apply fails with the provider's 401 (Authentication failed!)" \
    log_says "$RUN/apply-wrong-token.log" "HTTP 401 response - Reason: Authentication failed!"
  check "... and no VM and no host was created" nothing_new

  configure
  sed -i -e 's/^template_vm_id *= 9000$/template_vm_id      = 9001/' -e '/^template_image_/d' -e 's/^template_image *=.*/template_image = "prebuilt"/' "$RUN/terraform.tfvars"
  make_logged "$RUN/apply-no-template.log" apply CONFIRM=yes && note "make apply with a missing template succeeded?"
  check "a prebuilt template_vm_id that does not exist: the plan stops, naming template_vm_id and the node's templates" \
    log_says "$RUN/apply-no-template.log" 'template_vm_id = 9001 (terraform.tfvars): node "pve" has no VM template with that id (templates there: '
  check "... and make apply builds no template for it" log_says "$RUN/apply-no-template.log" 'template_image = "prebuilt": nothing builds the template'
  check "... and says how to make one" log_says "$RUN/apply-no-template.log" 'Build it (README.md, "A template made by hand"), set template_vm_id to one of those, or let make template build it (template_image).'
  check "... and no VM and no host was created" nothing_new
  configure
}
