#!/usr/bin/env bash
# make e2e: the project's real flow, with only Proxmox itself simulated — the Proxmox VE API simulator of the lab
# (lab/pve-sim), driven by the real OpenTofu and bpg provider, whose VMs are real Debian 12 hosts booted by
# cloud-init (lab/hosts.sh), provisioned by the generated Ansible with a real K3s built from its Go module.
#
#   make e2e                          every scenario, in this order (what CI runs)
#   make e2e SCENARIO=cluster         one scenario alone (or a comma-separated list); each brings up what it needs
#
# Scenarios (e2e/scenarios/<name>.sh):
#   refusals   a wrong token (the provider's 401) and a template_vm_id that does not exist: nothing is created
#   template   make template: the stand-in cloud image downloaded by the node (checksum-verified) and imported as a
#              template's disk, through the provider; again (no changes); a tampered image refused with PVE's
#              message, leaving nothing; make template-destroy asks first
#   cluster    make apply of 1+2 VMs, make diff settles, make provision through the K3s release download (a local
#              mirror laid out like K3s's releases), then again (changed=0); checks on the hosts and the cluster
#   faults     make provision killed at three points of a first run (packages, the server starting, the agents
#              joining), each re-run converging, then changed=0; an agent and a server rebooted through the API
#              come back Ready with their pods; a node down at the start stops the run before any change, named
#   apps       make deploy-apps and the apps' objects on the real API server; the dashboard token
#   day2       backup and restore, scaling through make apply (a worker added, then drained and destroyed), an
#              in-place memory change, make reset and a fresh provision
#   upgrade    make upgrade from one K3s build to another: refusals first (tampered mirror, downgrade, skipped
#              minor), then the rolling upgrade under a request loop, then again (changed=0)
#   ha         the cluster grown to 3 servers behind the API's virtual IP (make apply + make provision); failovers
#              under a kubectl loop: K3s stopped on the VIP's holder (3 times), its VM powered off, 2 of 3 servers
#              down (make status says the API is unavailable; it returns with a second server); backup and restore
#   hardened   security_profile = "hardened" switched on by make provision (it says what it restarts; an
#              admin_cidrs without the runner is refused first): the host firewall's port matrix from inside and
#              outside admin_cidrs and node to node, a NodePort and a ClusterIP through it; secrets encrypted in etcd (not in
#              a snapshot's raw data), a privileged pod refused, a compliant one running, the audit log recording a
#              request, protect-kernel-defaults; the apps admitted under restricted, their NetworkPolicies (the
#              echo image standing in for Whoami and Headlamp), HTTPS through Traefik built from its Go module
#              (the cluster CA's certificate, plain HTTP redirected), the dashboard's read-only and admin tokens;
#              then make reset
#   destroy    make destroy leaves no VM and no host, only the template; a second one changes nothing; then
#              make template-destroy removes the template and its image (twice: the second changes nothing)
#
# Needs root on Linux. Environment: E2E_RUN_DIR (default /tmp/k3spve-e2e), E2E_SUBNET (default 10.213.59.0/24),
# E2E_BRIDGE, E2E_NFT_TABLE, E2E_PVE_VERSION (9.1 or 8.4, default 9.1), E2E_MASTERS (default 1), E2E_WORKERS
# (default 2), E2E_KEEP=1 (leave the lab up: e2e/run.sh down removes it), E2E_REUSE=1 (start from the lab a kept
# run left, instead of a fresh one: for working on one scenario), K3SPVE_CACHE, E2E_BOOT_TIMEOUT.
set -euo pipefail

# shellcheck source=e2e/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"

# upgrade after day2 and hardened late: their builds (a K3s, a Traefik image) run in the background meanwhile.
ALL=(refusals template cluster faults apps day2 upgrade ha hardened destroy)

[ "$(uname -s)" = Linux ] && [ "$(id -u)" = 0 ] || die "make e2e needs root on Linux (it creates bridges, mounts and containers)"

if [ "${1:-}" = down ]; then lab_down; mirror_down; exit; fi

IFS=', ' read -r -a SELECTED <<<"${SCENARIO:-all}"
[ "${SELECTED[*]}" != all ] || SELECTED=("${ALL[@]}")
for name in "${SELECTED[@]}"; do
  [ -f "$ROOT/e2e/scenarios/$name.sh" ] || die "SCENARIO=$name: no such scenario; there are: ${ALL[*]}"
  # shellcheck source=/dev/null
  . "$ROOT/e2e/scenarios/$name.sh"
done

cleanup() {
  local rc=$?
  rm -f "$RUN.pid"
  background_builds_stop
  if [ -n "${E2E_KEEP:-}" ]; then
    echo "[e2e] E2E_KEEP is set: the lab stays up (ssh -F $RUN/ssh_config <name>; e2e/run.sh down removes it)"
  else
    step "tear-down"
    mirror_down
    lab_down || rc=1
    restore_sysctls
  fi
  exit "$rc"
}

step "tools"
tools
step "the lab: $LAB_SUBNET, PVE $LAB_PVE_VERSION API simulator"
# One run at a time per run folder: two would share its bridge, its hosts and its state. (A pid file, not flock:
# the lab's daemons would inherit the lock's descriptor and hold it after the run.)
while other="$(cat "$RUN.pid" 2>/dev/null)" && [ "$other" != $$ ] && kill -0 "$other" 2>/dev/null; do
  echo "[e2e] another e2e run (pid $other) is using $RUN: waiting for it" >&2
  sleep 10
done
echo $$ >"$RUN.pid"
trap cleanup EXIT
set_kubelet_sysctls
# A run starts from a fresh lab: what an earlier run left (kept, or killed midway) would change what the
# scenarios see (E2E_REUSE=1 keeps it).
[ -n "${E2E_REUSE:-}" ] || lab_down
lab_up
# The upgrade scenario's second K3s build and the hardened scenario's Traefik image, behind the scenarios before them.
builds=()
for name in upgrade:upgrade hardened:traefik; do
  case " ${SELECTED[*]} " in *" ${name%:*} "*) [ "${SELECTED[0]}" = "${name%:*}" ] || builds+=("${name#*:}") ;; esac
done
[ "${#builds[@]}" -eq 0 ] || background_builds_start "${builds[@]}"

for name in "${SELECTED[@]}"; do
  t0=$SECONDS
  before=$failed
  step "scenario $name"
  "scenario_${name}"
  timing "scenario $name" "$((SECONDS - t0))s"
  printf '  scenario %s: %s (%ds)\n' "$name" "$([ "$failed" -eq "$before" ] && echo passed || echo "$((failed - before)) check(s) failed")" "$((SECONDS - t0))"
done

step "done in $((SECONDS - START))s"
for key in "${TIMING_ORDER[@]}"; do printf '  %-58s %s\n' "$key" "${TIMINGS[$key]}"; done
echo "e2e: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
