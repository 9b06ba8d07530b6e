# shellcheck shell=bash
# The library the e2e scenarios share (sourced by e2e/run.sh): assertions, the operator's make targets run on the
# e2e's own files, the lab (the Proxmox VE API simulator and its hosts), the K3s release mirror, and the cluster
# the scenarios work on. Every scenario starts from what it needs (ensure_vms, ensure_cluster), so each runs alone.
#
# Checks written as bash -c '...' _ ARGS take their values as positional parameters, on purpose; some variables
# set here are read by the scenarios only:
# shellcheck disable=SC2016,SC2034

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export E2E_RUN_DIR="${E2E_RUN_DIR:-/tmp/k3spve-e2e}"
RUN="$E2E_RUN_DIR"
# The lab the e2e runs on: its own folder, subnet, bridge and nftables table (so it can run beside `make lab`).
export LAB_DIR="$RUN/lab"
export LAB_SUBNET="${E2E_SUBNET:-10.213.59.0/24}"
export LAB_BRIDGE="${E2E_BRIDGE:-k3spve-e2e0}"
export LAB_NFT_TABLE="${E2E_NFT_TABLE:-k3spve_e2e}"
export LAB_PVE_VERSION="${E2E_PVE_VERSION:-9.1}"
# The simulator seeds no template: make template (make apply runs it first) builds it from the stand-in image.
export LAB_TEMPLATE_ID=none
# Synth writes group_vars and manifests/ below this folder, and the inventory goes there (output_dir's default).
export K3SPVE_OUTPUT_DIR="$RUN"
PREFIX="${LAB_SUBNET%.0/24}"
GATEWAY="$PREFIX.1"
MASTERS="${E2E_MASTERS:-1}"
# The API's virtual IP, written into terraform.tfvars when there is more than one server.
API_VIP="$PREFIX.9"
WORKERS="${E2E_WORKERS:-2}"
INVENTORY="$RUN/ansible/inventory/hosts.ini"
# Ansible trusts exactly the host keys the hosts' cloud-init made (write_ssh_config gathers them), never
# ~/.ssh/known_hosts: every run makes new keys for the same addresses.
export ANSIBLE_SSH_COMMON_ARGS="-o UserKnownHostsFile=$RUN/known_hosts"
MIRROR_PORT=8089
MIRROR="http://$GATEWAY:$MIRROR_PORT"
ECHO_PORT=30999
START=$SECONDS
passed=0
failed=0
HOSTS=()
declare -A TIMINGS=()
TIMING_ORDER=()

# --- output and assertions -----------------------------------------------------------------------------
elapsed() { printf '%4ds' $((SECONDS - START)); }
step() { printf '\n=== [e2e %s] %s\n' "$(elapsed)" "$*"; }
note() { printf '  note  %s\n' "$*"; }
die() { printf '[e2e] ERROR: %s\n' "$*" >&2; exit 1; }
# check DESCRIPTION COMMAND...: one assertion; its output is shown only when it fails.
check() {
  local description="$1" out
  shift
  if out="$("$@" 2>&1)"; then
    passed=$((passed + 1))
    printf '  ok    %s\n' "$description"
  else
    failed=$((failed + 1))
    # shellcheck disable=SC2001 # indents every line of the output
    printf '  FAIL  %s\n%s\n' "$description" "$(sed 's/^/        /' <<<"$out" | tail -20)"
  fi
}
# retry TRIES DELAY COMMAND...: bounded waiting.
retry() {
  local tries="$1" delay="$2" i
  shift 2
  for ((i = 1; i <= tries; i++)); do
    "$@" && return 0
    sleep "$delay"
  done
  return 1
}
# timing NAME SECONDS: a figure for the summary at the end.
timing() {
  [ -n "${TIMINGS[$1]+x}" ] || TIMING_ORDER+=("$1")
  TIMINGS[$1]="$2"
}
on() { local host="$1"; shift; ssh -F "$RUN/ssh_config" -o BatchMode=yes "$host" "$@"; }

# --- the machine -----------------------------------------------------------------------------------------
# The kubelet insists on these kernel settings and writes them when they differ; /proc/sys is read-only inside
# the hosts, so the runner gets them for the run (they are machine-wide) and its own values back after.
# containerd's CRI plugin also needs inotify instances, which several hosts' systemd exhaust at the default 128.
KUBELET_SYSCTLS=(vm.overcommit_memory=1 kernel.panic=10 kernel.panic_on_oops=1
  fs.inotify.max_user_instances=8192 fs.inotify.max_user_watches=524288)
SAVED_SYSCTLS=()
set_kubelet_sysctls() {
  local kv
  for kv in "${KUBELET_SYSCTLS[@]}"; do
    SAVED_SYSCTLS+=("${kv%%=*}=$(sysctl -n "${kv%%=*}")")
    sysctl -q -w "$kv"
  done
}
restore_sysctls() {
  local kv
  for kv in "${SAVED_SYSCTLS[@]+"${SAVED_SYSCTLS[@]}"}"; do sysctl -q -w "$kv" || true; done
}

# tools: OpenTofu, providers, the venv, and the K3s builds (base always; the upgrade target when asked).
tools() {
  bash "$ROOT/scripts/setup-tools.sh" >&2
  VENV_BIN="$(bash "$ROOT/scripts/setup-python.sh")"
  K3S_BASE_DIR="$(bash "$ROOT/scripts/build-k3s.sh" base)"
  K3S_BASE="$(sed -n 's/^K3S_VERSION=//p' "$K3S_BASE_DIR/build-info.env")"
  ECHO_IMAGE="$(sed -n 's/^ECHO_IMAGE=//p' "$K3S_BASE_DIR/build-info.env")"
  TOFU="${K3SPVE_CACHE:-$HOME/.cache/k3s-proxmox}/tools/bin/tofu"
  [ -x "$TOFU" ] || die "no tofu: scripts/setup-tools.sh should have provided one"
  mkdir -p "$RUN/bin"
  ln -sf "$K3S_BASE_DIR/k3s" "$RUN/bin/kubectl" # the K3s binary is kubectl when called so
  export PATH="$RUN/bin:$VENV_BIN:$PATH" KUBECONFIG="$RUN/kubeconfig"
  K3S_WANT="${K3S_WANT:-$K3S_BASE}"
  echo "K3s $K3S_BASE from $K3S_BASE_DIR"
}
# The builds a scenario may wait for (the scripts' command lines, from the repository's root): the upgrade target's
# K3s, and the Traefik image (hardened).
declare -A BUILD_SCRIPTS=([upgrade]="scripts/build-k3s.sh upgrade" [traefik]="scripts/build-traefik.sh")
# background_builds_start NAME...: those builds one after the other in the background, at the lowest CPU priority,
# while the first scenarios run (they mostly wait on the hosts; the hosts' own cgroups outweigh a nice-19
# process). A cached build is only verified. build_result waits for one (or builds in the foreground when it was
# not started).
background_builds_start() {
  local name script
  script="cd $(printf %q "$ROOT") || exit 1; "
  for name in "$@"; do
    rm -f "$RUN/build-$name.rc"
    script+="bash ${BUILD_SCRIPTS[$name]} >$(printf %q "$RUN/build-$name.out") 2>$(printf %q "$RUN/build-$name.log"); echo \$? >$(printf %q "$RUN/build-$name.rc"); "
  done
  # Its own session, so that the tear-down can stop every build (background_builds_stop).
  setsid nice -n 19 bash -c "$script" &
  BUILDS_PID=$!
  BACKGROUND_BUILDS=" $* "
  echo "in the background, one after the other (nice 19): $* (logs $RUN/build-<name>.log)"
}
background_builds_stop() { [ -z "${BUILDS_PID:-}" ] || kill -- "-$BUILDS_PID" 2>/dev/null || true; }
# build_result NAME VAR: VAR set to the build's output folder, once it is there.
build_result() {
  local name="$1" t0=$SECONDS dir
  case "${BACKGROUND_BUILDS:-}" in
    *" $name "*)
      [ -f "$RUN/build-$name.rc" ] || note "waiting for the background $name build: $(tail -1 "$RUN/build-$name.log" 2>/dev/null)"
      while [ ! -f "$RUN/build-$name.rc" ] && kill -0 "$BUILDS_PID" 2>/dev/null; do sleep 5; done
      [ "$(cat "$RUN/build-$name.rc" 2>/dev/null)" = 0 ] || { tail -20 "$RUN/build-$name.log" >&2; die "the $name build failed (log $RUN/build-$name.log)"; }
      timing "waited for the background $name build" "$((SECONDS - t0))s"
      tail -2 "$RUN/build-$name.log"
      dir="$(tail -1 "$RUN/build-$name.out")" ;;
    *)
      # shellcheck disable=SC2086 # the script and its arguments
      dir="$(cd "$ROOT" && bash ${BUILD_SCRIPTS[$name]})" || die "the $name build failed" ;;
  esac
  printf -v "$2" '%s' "$dir"
}
upgrade_build() {
  [ -n "${K3S_UPGRADE_DIR:-}" ] || build_result upgrade K3S_UPGRADE_DIR
  K3S_UPGRADE="$(sed -n 's/^K3S_VERSION=//p' "$K3S_UPGRADE_DIR/build-info.env")"
}

# --- the operator's make targets, on the e2e's files ------------------------------------------------------
# shellcheck disable=SC2120 # callers pass extra lines only when they need them
# configure [TFVARS_LINE...]: the e2e's terraform.tfvars — the lab's lines (as `make lab` prints them), this
# run's key, the counts and the K3s version the scenario wants, then any extra lines.
configure() {
  local dns
  dns="$(jq -r '.nameservers | map("\"" + . + "\"") | join(", ")' "$LAB_DIR/pve/config.json")"
  image_publish
  cat >"$RUN/terraform.tfvars" <<EOF
# e2e: the configuration an operator writes, pointed at the lab (lab/lab.sh up prints these lines).
proxmox_endpoint    = "https://$GATEWAY:8006/"
proxmox_insecure    = true
template_vm_id      = 9000
# The template make template builds: the stand-in cloud image on the mirror, with its published checksum.
template_image          = "custom"
template_image_url      = "$IMAGE_URL"
template_image_checksum = "sha256:$(image_checksum "$IMAGE")"
node_cidr           = "$LAB_SUBNET"
gateway             = "$GATEWAY"
dns_servers         = [$dns]
first_ip            = "$PREFIX.10"
master_count        = $MASTERS
worker_count        = $WORKERS
ssh_user            = "debian"
ssh_public_key_file = "$RUN/id_ed25519.pub"
k3s_version         = "$K3S_WANT"
EOF
  [ "$MASTERS" -eq 1 ] || printf 'api_vip             = "%s"\n' "$API_VIP" >>"$RUN/terraform.tfvars"
  printf '%s\n' "$@" >>"$RUN/terraform.tfvars"
}
# make_logged LOG TARGET [VAR=VALUE...]: a make target as an operator runs it (no terminal), on the e2e's files.
make_logged() {
  local log="$1"
  shift
  make -C "$ROOT" --no-print-directory "$@" TFVARS="$RUN/terraform.tfvars" OUT="$RUN/cdktf.out" INVENTORY="$INVENTORY" \
    TF="$TOFU" PROVIDER_MIRROR=1 >"$log" 2>&1 </dev/null
}
# reported LOG TARGET [ARGS...]: make_logged, then its exit code, duration and play recap on the console.
reported() {
  local t0=$SECONDS rc=0
  make_logged "$@" || rc=$?
  echo "make $2: exit $rc in $((SECONDS - t0))s (log $1)"
  sed -n '/PLAY RECAP/,$p' "$1"
  return "$rc"
}
# refused LOG PATTERN TARGET [ARGS...]: the target fails and its log says why.
refused() {
  local log="$1" pattern="$2"
  shift 2
  ! make_logged "$log" "$@" && grep -q -- "$pattern" "$log"
}
recap_unchanged() { # every host: changed=0 failed=0 unreachable=0
  awk '/PLAY RECAP/ { r = 1; next } r && /ok=/ { n++; if ($0 !~ /changed=0 / || $0 !~ /unreachable=0 / || $0 !~ /failed=0 /) bad++ }
       END { exit !(n > 0 && bad == 0) }' "$1"
}
# only_changed LOG HOST: in the play recap, HOST changed something and every other node nothing; no failure.
only_changed() {
  awk -v new="$2" '/PLAY RECAP/ { r = 1; next }
    r && /ok=/ { if ($0 !~ /failed=0 / || $0 !~ /unreachable=0 /) bad++
                 else if ($1 == new) { if ($0 ~ /changed=0 /) bad++; seen++ }
                 else if ($1 != "localhost" && $0 !~ /changed=0 /) bad++ }
    END { exit !(seen == 1 && bad == 0) }' "$1"
}
# plain LOG: the log without terminal colours (Terraform colours its output).
plain() { sed 's/\x1b\[[0-9;]*m//g' "$1"; }
# plan_counts LOG: "add change destroy" from a Terraform plan/apply log.
plan_counts() { plain "$1" | sed -n 's/.*Plan: \([0-9]*\) to add, \([0-9]*\) to change, \([0-9]*\) to destroy.*/\1 \2 \3/p' | tail -1; }
no_changes() { plain "$1" | grep -q "No changes. Your infrastructure matches the configuration."; }
# log_says LOG TEXT: TEXT appears in the log, even where Terraform wrapped it over lines of its error box.
# On failure it shows the log's errors (or its end), so that a CI log says what happened instead.
log_says() {
  plain "$1" | sed 's/^[│╷╵ ]*//' | tr -s ' \n' '  ' | grep -qF -- "$2" && return 0
  echo "not in $1; it says:"
  { plain "$1" | grep -m8 -iE 'error|fail' || plain "$1" | tail -8; } | cut -c1-300
  return 1
}
# vm_actions LOG: "<VM name> <action>" for every VM a Terraform plan/apply log says it changes, sorted.
vm_actions() { plain "$1" | sed -n 's/^ *# proxmox_virtual_environment_vm\.\([a-z0-9-]*\) .*\(will\|must\) be \(.*\)$/\1 \3/p' | sort -u; }

# --- the lab ---------------------------------------------------------------------------------------------
lab_up() {
  mkdir -p "$RUN"
  # A new lab has no VMs: what an earlier run left of its Terraform state, inventory and kubeconfig goes too.
  [ -d "$LAB_DIR/pve/state" ] || rm -rf "$RUN/cdktf.out" "$RUN"/terraform.k3s.tfstate* "$RUN"/terraform.template.tfstate* "$INVENTORY" "$RUN/kubeconfig"
  bash "$ROOT/lab/lab.sh" up >"$RUN/lab-up.log" 2>&1 || { cat "$RUN/lab-up.log" >&2; die "lab/lab.sh up failed"; }
  PROXMOX_VE_API_TOKEN="$(cat "$LAB_DIR/pve/token")"
  export PROXMOX_VE_API_TOKEN
  # api()'s header, in a file curl reads (the token stays off command lines); printf is a builtin.
  (umask 077; printf 'Authorization: PVEAPIToken=%s\n' "$PROXMOX_VE_API_TOKEN" >"$RUN/api-header")
  [ -f "$RUN/id_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -C k3spve-e2e -f "$RUN/id_ed25519"
  sed -n 's/^\[lab\] //p' "$RUN/lab-up.log" | tail -1
}
lab_down() { bash "$ROOT/lab/lab.sh" down >"$RUN/lab-down.log" 2>&1 || { tail -20 "$RUN/lab-down.log" >&2; return 1; }; }
# api METHOD PATH: the simulator's API with the lab token (what the provider sees).
api() { curl -sk -X "$1" -H @"$RUN/api-header" "https://$GATEWAY:8006/api2/json$2"; }
# vmid_of NAME: the VM id the simulator gave a node.
vmid_of() { api GET /nodes/pve/qemu | jq -r --arg n "$1" '.data[] | select(.name == $n) | .vmid'; }
vm_ids() { api GET /nodes/pve/qemu | jq -r '.data[] | select(.template != 1) | .vmid' | sort -n | paste -sd' ' -; }
# api_has_template: VM 9000 is a template.
api_has_template() { api GET /nodes/pve/qemu/9000/config | jq -e '.data.template == 1' >/dev/null; }
running_hosts() { bash "$ROOT/lab/hosts.sh" status 2>/dev/null | awk '$3 == "running" { n++ } END { print n + 0 }'; }

# --- hosts -----------------------------------------------------------------------------------------------
# servers: the names of the K3s servers (the first $MASTERS hosts), one per line.
servers() { local entry; for entry in "${HOSTS[@]:0:$MASTERS}"; do echo "${entry%%=*}"; done; }
inventory_hosts() { awk '/ansible_host=/ { sub("ansible_host=", "", $2); print $1 "=" $2 }' "$INVENTORY"; }
# ssh_config: one entry per inventory host; trusted host keys are exactly the ones the hosts' cloud-init made
# (read from the hosts by lab/hosts.sh known-hosts), never ~/.ssh/known_hosts.
write_ssh_config() {
  local entry
  bash "$ROOT/lab/hosts.sh" known-hosts >"$RUN/known_hosts"
  : >"$RUN/ssh_config"
  for entry in "${HOSTS[@]}"; do
    printf 'Host %s %s\n  HostName %s\n  User debian\n  IdentityFile %s\n  IdentitiesOnly yes\n  UserKnownHostsFile %s\n  StrictHostKeyChecking yes\n  ConnectTimeout 3\n\n' \
      "${entry%%=*}" "${entry#*=}" "${entry#*=}" "$RUN/id_ed25519" "$RUN/known_hosts" >>"$RUN/ssh_config"
  done
}
# wait_ssh: until every inventory host answers SSH with the key cloud-init installed (bounded).
wait_ssh() {
  local entry pending deadline=$((SECONDS + ${E2E_BOOT_TIMEOUT:-300}))
  mapfile -t HOSTS < <(inventory_hosts)
  while :; do
    write_ssh_config
    pending=()
    for entry in "${HOSTS[@]}"; do on "${entry%%=*}" true </dev/null >/dev/null 2>&1 || pending+=("${entry%%=*}"); done
    [ "${#pending[@]}" -eq 0 ] && return 0
    [ "$SECONDS" -lt "$deadline" ] || { bash "$ROOT/lab/hosts.sh" status >&2; die "no SSH from ${pending[*]} after ${E2E_BOOT_TIMEOUT:-300}s (consoles: $LAB_DIR/logs/)"; }
    sleep 2
  done
}
# Lab hosts only: this runner's processes lack CAP_SYS_RESOURCE, so nothing may lower its OOM score and runc
# fails every pod sandbox ("failed to update /proc/self/oom_score_adj"). containerd's restrict_oom_score_adj,
# imported through K3s's own config-template mechanism, makes it clamp the score instead. VMs do not need it.
host_quirks() {
  local entry
  for entry in "${HOSTS[@]}"; do
    on "${entry%%=*}" 'sudo install -d -m 0755 /var/lib/rancher/k3s/agent/etc/containerd && cd /var/lib/rancher/k3s/agent/etc/containerd &&
      printf "%s\n" "version = 3" "[plugins.\"io.containerd.cri.v1.runtime\"]" "  restrict_oom_score_adj = true" | sudo tee test-host-oom.toml >/dev/null &&
      printf "%s\n" "imports = [\"/var/lib/rancher/k3s/agent/etc/containerd/test-host-oom.toml\"]" "{{ template \"base\" . }}" | sudo tee config-v3.toml.tmpl >/dev/null' </dev/null
  done
}
# apply LOG: `make apply` of the current terraform.tfvars (CONFIRM=yes: no terminal), then the hosts it made.
apply() {
  local rc=0
  make_logged "$1" apply CONFIRM=yes || rc=$?
  [ "$rc" -eq 0 ] || { tail -30 "$1" >&2; return "$rc"; }
  wait_ssh
  host_quirks
}
# ensure_vms: the VMs of the configuration exist and answer (make apply when they do not).
ensure_vms() {
  # shellcheck disable=SC2119
  configure
  if [ -f "$INVENTORY" ] && [ "$(running_hosts)" -eq $((MASTERS + WORKERS)) ] && [ "$(vm_ids | wc -w)" -eq $((MASTERS + WORKERS)) ]; then
    wait_ssh
    return 0
  fi
  apply "$RUN/apply-ensure.log" || die "make apply failed (log $RUN/apply-ensure.log)"
}

# --- K3s: the release mirror and the cluster ------------------------------------------------------------
# A local HTTP mirror laid out like K3s's releases: <base>/<version>/{k3s, sha256sum-amd64.txt,
# k3s-airgap-images-amd64.tar} (the version's `+` arrives as %2B and names the folder). `good` holds the builds
# as made, `tampered` the upgrade target with a binary that no longer matches its checksum file.
mirror_up() {
  if ! curl -sf -o /dev/null "$MIRROR/"; then
    mkdir -p "$RUN/mirror"
    (cd "$RUN/mirror" && exec python3 -m http.server --bind "$GATEWAY" "$MIRROR_PORT") >>"$RUN/mirror.log" 2>&1 &
    echo $! >"$RUN/mirror.pid"
    retry 20 0.5 curl -sf -o /dev/null "$MIRROR/" || die "the K3s mirror does not answer on $MIRROR"
  fi
}
mirror_down() { if [ -f "$RUN/mirror.pid" ]; then kill "$(cat "$RUN/mirror.pid")" 2>/dev/null || true; rm -f "$RUN/mirror.pid"; fi; }
# mirror_add KIND BUILD_DIR: publish a build under $MIRROR/KIND/<version>/.
mirror_add() {
  local kind="$1" dir="$2" version f
  version="$(sed -n 's/^K3S_VERSION=//p' "$dir/build-info.env")"
  mkdir -p "$RUN/mirror/$kind/$version"
  for f in k3s sha256sum-amd64.txt k3s-airgap-images-amd64.tar; do
    [ -f "$dir/$f" ] || die "the K3s build in $dir has no $f (scripts/build-k3s.sh makes it)"
    ln -f "$dir/$f" "$RUN/mirror/$kind/$version/$f" 2>/dev/null || cp "$dir/$f" "$RUN/mirror/$kind/$version/$f"
  done
  if [ "$kind" = tampered ]; then
    rm -f "$RUN/mirror/$kind/$version/k3s"
    cp "$dir/k3s" "$RUN/mirror/$kind/$version/k3s"
    printf 'tampered' >>"$RUN/mirror/$kind/$version/k3s"
  fi
}
# The stand-in cloud image on the mirror, as a distribution publishes one: the image and SHA256SUMS beside it
# (what an operator copies into template_image_checksum), and a tampered copy that no longer matches.
# It is an empty qcow2 of 3 GiB (lab/pve-sim/main.ts image): the simulator imports it as the template's disk,
# and the clones' hosts boot the lab's Debian 12 root filesystem.
IMAGE=cloud-stand-in-amd64.qcow2
IMAGE_URL="$MIRROR/images/$IMAGE"
image_publish() {
  mirror_up
  [ -f "$RUN/mirror/images/SHA256SUMS" ] && return 0
  mkdir -p "$RUN/mirror/images"
  (cd "$ROOT" && node -r ts-node/register lab/pve-sim/main.ts image --out "$RUN/mirror/images/$IMAGE" --gib 3)
  { cat "$RUN/mirror/images/$IMAGE"; printf 'tampered'; } >"$RUN/mirror/images/tampered-$IMAGE"
  (cd "$RUN/mirror/images" && sha256sum "$IMAGE" >SHA256SUMS)
}
# image_checksum FILE: its line of the published SHA256SUMS.
image_checksum() { curl -sf "$MIRROR/images/SHA256SUMS" | awk -v f="$1" '$2 == f || $2 == "*" f { print $1 }'; }

# The extra variables every provision of the e2e uses: where the kubeconfig goes, and the download source.
# download_vars KIND: the release download from the mirror (the default path, only the URL is the mirror's).
download_vars() {
  cat >"$RUN/vars-$1.yml" <<EOF
k3s_master_kubeconfig_path: $RUN/kubeconfig
k3s_binary_release_url: $MIRROR/$1
k3s_binary_release_images: true
k3s_binary_release_images_format: tar
EOF
  echo "-e @$RUN/vars-$1.yml"
}
# airgap_vars BUILD_DIR: the air-gap path from a build folder.
airgap_vars() {
  cat >"$RUN/vars-airgap.yml" <<EOF
k3s_master_kubeconfig_path: $RUN/kubeconfig
k3s_binary_airgap_path: $1/k3s
k3s_binary_airgap_checksum: $(awk '$2 == "k3s" { print $1 }' "$1/sha256sum")
k3s_binary_airgap_images_dir: $1/images
EOF
  echo "-e @$RUN/vars-airgap.yml"
}
# provision LOG [KIND]: make provision through the release download from the mirror (KIND default good).
provision() { reported "$1" provision ANSIBLE_ARGS="$(download_vars "${2:-good}")"; }

all_ready() { [ "$(kubectl get nodes --no-headers 2>/dev/null | awk '$2 == "Ready"' | wc -l)" -eq "${#HOSTS[@]}" ]; }
# versions_are VERSION: every node's kubelet reports it.
versions_are() { [ "$(kubectl get nodes -o jsonpath='{range .items[*]}{.status.nodeInfo.kubeletVersion}{"\n"}{end}' 2>/dev/null | sort -u)" = "$1" ]; }
# ensure_cluster [VERSION]: the VMs, and K3s on all of them Ready at VERSION (default: K3S_WANT) — provisioned
# from the mirror when it is not; a cluster at another version is reset first.
ensure_cluster() {
  local want="${1:-$K3S_WANT}"
  K3S_WANT="$want"
  ensure_vms
  mirror_up
  mirror_add good "$K3S_BASE_DIR"
  [ -z "${K3S_UPGRADE_DIR:-}" ] || mirror_add good "$K3S_UPGRADE_DIR"
  if [ -f "$RUN/kubeconfig" ] && all_ready && versions_are "$want"; then return 0; fi
  if on "${HOSTS[0]%%=*}" test -e /usr/local/bin/k3s </dev/null; then
    make_logged "$RUN/reset-ensure.log" reset CONFIRM=yes || { tail -30 "$RUN/reset-ensure.log" >&2; die "make reset failed"; }
    host_quirks
  fi
  provision "$RUN/provision-ensure.log" || { tail -40 "$RUN/provision-ensure.log" >&2; die "make provision failed"; }
  retry 60 5 all_ready || die "the cluster is not Ready after make provision"
}

# echo_deployment REPLICAS: the locally built echo image as a Deployment behind NodePort $ECHO_PORT, spread over
# the agents; with 2 or more replicas also a PodDisruptionBudget and a preStop pause, as the apps get
# (constructs/k8s/web-app.ts), so that it keeps serving through drains.
echo_deployment() {
  local pdb=""
  [ "$1" -lt 2 ] || pdb="---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata: { name: echo, namespace: default }
spec:
  maxUnavailable: 1
  selector: { matchLabels: { app.kubernetes.io/name: echo } }"
  [ "$1" -ge 2 ] || kubectl delete pdb echo -n default --ignore-not-found >/dev/null
  kubectl apply -f - >/dev/null <<EOF
apiVersion: apps/v1
kind: Deployment
metadata: { name: echo, namespace: default, labels: { app.kubernetes.io/name: echo } }
spec:
  replicas: $1
  selector: { matchLabels: { app.kubernetes.io/name: echo } }
  template:
    metadata: { labels: { app.kubernetes.io/name: echo } }
    spec:
      affinity:
        nodeAffinity:
          requiredDuringSchedulingIgnoredDuringExecution:
            nodeSelectorTerms: [{ matchExpressions: [{ key: node-role.kubernetes.io/control-plane, operator: DoesNotExist }] }]
      topologySpreadConstraints:
        - { maxSkew: 1, topologyKey: kubernetes.io/hostname, whenUnsatisfiable: ScheduleAnyway, labelSelector: { matchLabels: { app.kubernetes.io/name: echo } } }
      containers:
        - name: echo
          image: $ECHO_IMAGE
          imagePullPolicy: Never
          ports: [{ containerPort: 8080 }]
          readinessProbe: { httpGet: { path: /healthz, port: 8080 }, periodSeconds: 1 }
          # Out of the Service's endpoints before it stops: a drained pod still answers for a moment.
          lifecycle: { preStop: { sleep: { seconds: 5 } } }
---
apiVersion: v1
kind: Service
metadata: { name: echo, namespace: default }
spec:
  type: NodePort
  selector: { app.kubernetes.io/name: echo }
  ports: [{ port: 80, targetPort: 8080, nodePort: $ECHO_PORT }]
$pdb
EOF
}

# app_pods NAMESPACE INSTANCE: how many pods of the app exist (made by its controller, so admitted).
app_pods() { kubectl get pods -n "$1" -l "app.kubernetes.io/instance=$2" -o name | grep -c . || true; }
# apps_deploy LOG: make deploy-apps on the e2e's files, without waiting for rollouts (the apps' images cannot be
# pulled here: no registry).
apps_deploy() {
  reported "$1" deploy-apps \
    ANSIBLE_ARGS="-e k3s_apps_manifests_dir=$RUN/manifests -e k3s_apps_kubeconfig=$RUN/kubeconfig -e k3s_apps_wait=false"
}
# dashboard_token TARGET: the token make TARGET (dashboard-token, dashboard-admin-token) prints. Captured, never
# printed: it must not reach a log.
dashboard_token() { make -C "$ROOT" --no-print-directory -s "$1" INVENTORY="$INVENTORY" 2>&1 | grep -o 'eyJ[A-Za-z0-9._-]*' | head -1 || true; }
# as_token TOKEN KUBECTL-ARGS...: kubectl as the token's user, through a kubeconfig file (0600, removed after) that
# keeps the token off the command line.
as_token() {
  local token="$1" file status=0
  shift
  file="$(mktemp)"
  chmod 0600 "$file"
  cat >"$file" <<KUBECONFIG
apiVersion: v1
kind: Config
clusters: [{ name: e2e, cluster: { server: "https://${HOSTS[0]#*=}:6443", certificate-authority-data: $(kubectl config view --raw -o jsonpath='{.clusters[0].cluster.certificate-authority-data}') } }]
users: [{ name: token, user: { token: "$token" } }]
contexts: [{ name: e2e, context: { cluster: e2e, user: token } }]
current-context: e2e
KUBECONFIG
  kubectl --kubeconfig "$file" "$@" || status=$?
  rm -f "$file"
  return "$status"
}

# secrets_in_logs: no secret of the run in any log it wrote (ours, Ansible's, Terraform's, the simulator's).
secrets_in_logs() {
  local secret
  for secret in "$@"; do
    [ -n "$secret" ] || continue
    if grep -rqF -- "$secret" "$RUN"/*.log "$LAB_DIR/pve/state/pve-sim.log" "$LAB_DIR/pve/pve-sim.out" 2>/dev/null; then return 1; fi
  done
}
