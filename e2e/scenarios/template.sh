# shellcheck shell=bash
# Sourced by e2e/run.sh after e2e/lib.sh. Checks take local functions, and commands in single quotes on purpose:
# shellcheck disable=SC2016,SC2034,SC2329
# make template builds the cloud-init template through the provider: the Proxmox node downloads the image from the
# mirror, verified by its published checksum, and a VM is created with the image imported on scsi0 and made a
# template. A second run changes nothing; a tampered image is refused with PVE's message and leaves nothing behind;
# make template-destroy asks first. (make apply, in the next scenarios, clones the VMs from this template.)

scenario_template() {
  local t0 stats config good bad
  configure
  if [ -n "$(vm_ids)" ]; then
    note "VMs exist already (another scenario made them): make destroy first"
    make_logged "$RUN/destroy-before-template.log" destroy CONFIRM=yes || die "make destroy failed (log $RUN/destroy-before-template.log)"
  fi
  if api GET /nodes/pve/qemu/9000/status/current | jq -e '.data' >/dev/null; then
    note "a template 9000 exists already: make template-destroy first, so that make template builds it"
    make_logged "$RUN/template-destroy-before.log" template-destroy CONFIRM=yes || die "make template-destroy failed (log $RUN/template-destroy-before.log)"
  fi
  cp "$LAB_DIR/pve/state/stats.json" "$RUN/api-stats-before-template.json" 2>/dev/null || echo '{}' >"$RUN/api-stats-before-template.json"
  t0=$SECONDS
  reported "$RUN/template-1.log" template CONFIRM=yes || { tail -30 "$RUN/template-1.log"; die "make template failed"; }
  timing "make template (download, import, template)" "$((SECONDS - t0))s"
  check "make template created the download and the template VM" log_says "$RUN/template-1.log" "Apply complete! Resources: 2 added, 0 changed, 0 destroyed."
  stats="$LAB_DIR/pve/state/stats.json"
  calls() { jq -r --arg k "$1" '.[$k].calls // 0' "$stats"; }
  check "through the API: one download-url and one VM create ($(calls 'POST /nodes/{node}/storage/{storage}/download-url') and $(calls 'POST /nodes/{node}/qemu'))" \
    test "$(calls 'POST /nodes/{node}/storage/{storage}/download-url') $(calls 'POST /nodes/{node}/qemu')" = "1 1"
  check "the node downloaded the image from the mirror" grep -q "GET /images/$IMAGE HTTP" "$RUN/mirror.log"
  # on_storage [CONTENT]: the volumes of the image storage, space-separated.
  on_storage() { api GET "/nodes/pve/storage/local/content${1:+?content=$1}" | jq -r '[.data[].volid] | join(" ")'; }
  check "the image is on the storage as import content" test "$(on_storage import)" = "local:import/$IMAGE"
  check "the download task verified the checksum (its task log)" \
    bash -c 'jq -e --arg f "$2" "[.tasks[] | select(.type == \"download\" and .id == \$f) | .log[]] | index(\"calculating checksum...OK, checksum verified\")" "$1"' _ "$LAB_DIR/pve/state/state.json" "$IMAGE"
  config="$(api GET /nodes/pve/qemu/9000/config | jq -c .data)"
  echo "template 9000: $config"
  check "VM 9000 is a template named k3s-template" jq -e '.template == 1 and .name == "k3s-template"' <<<"$config"
  check "... its disk imported on scsi0 (virtio-scsi-single, iothread, discard), grown to 8G" \
    jq -e '.scsihw == "virtio-scsi-single" and (.scsi0 | test("^local-lvm:vm-9000-disk-0,.*discard=on,iothread=1,.*size=8G"))' <<<"$config"
  check "... a cloud-init drive, the serial console, the guest agent" \
    jq -e '.ide2 == "local-lvm:vm-9000-cloudinit,media=cdrom" and .serial0 == "socket" and (.vga | test("type=serial0")) and (.agent | test("^enabled=1"))' <<<"$config"

  make_logged "$RUN/template-2.log" template CONFIRM=yes || tail -20 "$RUN/template-2.log"
  check "a second make template changes nothing" no_changes "$RUN/template-2.log"

  # A tampered download: its own configuration and state (a second template, 9002), the published checksum.
  mkdir -p "$RUN/tampered"
  sed -e 's/^template_vm_id *= 9000$/template_vm_id      = 9002/' -e "s|^template_image_url .*|template_image_url = \"$MIRROR/images/tampered-$IMAGE\"|" \
    "$RUN/terraform.tfvars" >"$RUN/tampered/terraform.tfvars"
  good="$(image_checksum "$IMAGE")"
  bad="$(sha256sum "$RUN/mirror/images/tampered-$IMAGE" | cut -d' ' -f1)"
  K3SPVE_OUTPUT_DIR="$RUN/tampered" make -C "$ROOT" --no-print-directory template CONFIRM=yes TFVARS="$RUN/tampered/terraform.tfvars" \
    OUT="$RUN/tampered/cdktf.out" TF="$TOFU" PROVIDER_MIRROR=1 >"$RUN/template-tampered.log" 2>&1 </dev/null &&
    note "make template of a tampered image succeeded?"
  check "a tampered image: the download task fails with PVE's checksum mismatch" \
    log_says "$RUN/template-tampered.log" "failed to complete with exit code: checksum mismatch: got '$bad' != expect '$good'"
  no_vm_9002() { ! api GET /nodes/pve/qemu/9002/status/current | jq -e .data >/dev/null; }
  check "... and leaves no template 9002" no_vm_9002
  check "... and no file on the storage but the good image" test "$(on_storage)" = "local:import/$IMAGE"

  make_logged "$RUN/template-destroy-unconfirmed.log" template-destroy && note "make template-destroy without a terminal or CONFIRM=yes went ahead?"
  check "make template-destroy asks first: without an answer nothing is removed" \
    api_has_template
}