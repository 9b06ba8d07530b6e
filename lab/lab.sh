#!/usr/bin/env bash
# A local lab: the Proxmox VE API simulator (lab/pve-sim) on a private bridge, whose VMs are real Debian 12 hosts
# (lab/hosts.sh), so the normal flow — make apply, make provision, make deploy-apps, make destroy — runs with no
# Proxmox. It is a simulator: README.md ("The lab") says what it does not reproduce.
#
#   lab/lab.sh up       (make lab)       start it (root, Linux); prints the terraform.tfvars lines and the token export
#   lab/lab.sh down     (make lab-down)  stop the simulator, remove every host, the bridge and the lab's state
#   lab/lab.sh status                    the simulator and one line per host
#
# Environment: LAB_DIR (default /tmp/k3spve-lab), LAB_SUBNET (default 10.213.57.0/24; the simulator listens on
# .1:8006), LAB_PVE_VERSION (9.1 or 8.4, default 9.1), LAB_TEMPLATE_ID (default 9000: the template the
# simulator seeds, as README's qm recipe makes one; none: no template, make template builds it), LAB_BACKEND (hosts, the
# default; or none: no hosts, no root needed, the API on 127.0.0.1 — for tests of the API path), LAB_AGENT=1 (with
# LAB_BACKEND=none: the guest agent's answer simulated from each VM's net0 and ipconfig0), LAB_PORT (default 8006),
# and lab/hosts.sh's LAB_BRIDGE, LAB_NFT_TABLE, LAB_DNS, DEBIAN_MIRROR.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export LAB_DIR="${LAB_DIR:-/tmp/k3spve-lab}"
export LAB_SUBNET="${LAB_SUBNET:-10.213.57.0/24}"
VERSION="${LAB_PVE_VERSION:-9.1}"
BACKEND="${LAB_BACKEND:-hosts}"
PORT="${LAB_PORT:-8006}"
TEMPLATE_ID="${LAB_TEMPLATE_ID:-9000}"
SIM_DIR="$LAB_DIR/pve"
PID_FILE="$SIM_DIR/pve-sim.pid"
PREFIX="${LAB_SUBNET%.0/24}"
LISTEN="$PREFIX.1"
[ "$BACKEND" = hosts ] || LISTEN=127.0.0.1

log() { printf '[lab] %s\n' "$*" >&2; }
die() { printf '[lab] ERROR: %s\n' "$*" >&2; exit 1; }

sim_pid() {
  local pid
  [ -f "$PID_FILE" ] || return 1
  pid="$(cat "$PID_FILE")"
  [ -r "/proc/$pid/cmdline" ] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q "pve-sim/main.ts serve --config $SIM_DIR/config.json" || return 1
  printf '%s\n' "$pid"
}

# The node that runs the simulator: the project's Node (ts-node transpiles with swc).
sim() { (cd "$ROOT" && node -r ts-node/register lab/pve-sim/main.ts "$@"); }

cmd_up() {
  [ -d "$ROOT/node_modules" ] || die "no node_modules: run 'make setup' first"
  case "$VERSION" in 8.4|9.1) ;; *) die "LAB_PVE_VERSION=$VERSION: use 9.1 or 8.4" ;; esac
  if [ "$BACKEND" = hosts ]; then
    [ "$(uname -s)" = Linux ] && [ "$(id -u)" = 0 ] || die "make lab needs root on Linux (bridge, nftables, systemd-nspawn hosts); LAB_BACKEND=none runs the API alone"
    bash "$ROOT/lab/hosts.sh" rootfs
    bash "$ROOT/lab/hosts.sh" net-up
  fi
  if pid="$(sim_pid)"; then
    log "the simulator already runs (pid $pid)"
  else
    sim init --dir "$SIM_DIR" --listen "$LISTEN" --port "$PORT" --pve-version "$VERSION" --backend "$BACKEND" \
      --template-id "$TEMPLATE_ID" ${LAB_AGENT:+--agent}
    mkdir -p "$SIM_DIR/state"
    (cd "$ROOT" && exec setsid node -r ts-node/register lab/pve-sim/main.ts serve --config "$SIM_DIR/config.json") \
      </dev/null >>"$SIM_DIR/pve-sim.out" 2>&1 &
    echo $! >"$PID_FILE"
    local i
    for i in $(seq 1 60); do
      # Any HTTP answer means it listens (PVE delays a 401 by 3 s, so no token and a patient curl).
      if [ "$(curl -sk -o /dev/null -w '%{http_code}' --max-time 5 "https://$LISTEN:$PORT/api2/json/version" || true)" != 000 ]; then break; fi
      sim_pid >/dev/null || { tail -20 "$SIM_DIR/pve-sim.out" >&2; die "the simulator exited (log: $SIM_DIR/pve-sim.out)"; }
      sleep 0.5
      [ "$i" -lt 60 ] || die "the simulator does not answer on https://$LISTEN:$PORT/ (log: $SIM_DIR/pve-sim.out)"
    done
    log "$(tail -1 "$SIM_DIR/pve-sim.out" | sed 's/^\[pve-sim\] //')"
  fi
  local dns template
  if [ "$TEMPLATE_ID" = none ]; then
    template='template_vm_id   = 9000 # make template builds it: set template_image = "custom" with an image URL the lab can reach'
  else
    template="template_vm_id   = $TEMPLATE_ID
template_image   = \"prebuilt\" # the simulator seeded this template at start"
  fi
  dns="$(jq -r '.nameservers | map("\"" + . + "\"") | join(", ")' "$SIM_DIR/config.json" 2>/dev/null || echo '"1.1.1.1"')"
  cat <<EOF

A Proxmox VE $VERSION API SIMULATOR runs at https://$LISTEN:$PORT/ (not Proxmox: README.md, "The lab").
Its log: $SIM_DIR/state/pve-sim.log. Point the normal flow at it with these lines in terraform.tfvars:

proxmox_endpoint = "https://$LISTEN:$PORT/"
proxmox_insecure = true # its certificate is self-signed, made at start
$template
node_cidr        = "$LAB_SUBNET"
gateway          = "$LISTEN"
dns_servers      = [$dns]
first_ip         = "$PREFIX.10"

and the token in your shell (the secret stays in that 0600 file):

export PROXMOX_VE_API_TOKEN="\$(cat $SIM_DIR/token)"

Then: make apply && make provision && make deploy-apps.  make lab-down removes everything.
EOF
}

cmd_down() {
  local pid
  if pid="$(sim_pid)"; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 20); do sim_pid >/dev/null || break; sleep 0.25; done
    log "simulator stopped (pid $pid)"
  fi
  if [ "$BACKEND" = hosts ]; then bash "$ROOT/lab/hosts.sh" down; fi
  rm -rf "$SIM_DIR"
  log "lab state removed ($SIM_DIR)"
}

cmd_status() {
  if pid="$(sim_pid)"; then echo "simulator: pid $pid, $(jq -r '"https://" + .listen + ":" + (.port|tostring) + "/ PVE " + .pveVersion' "$SIM_DIR/config.json")"
  else echo "simulator: not running"; fi
  [ "$BACKEND" != hosts ] || bash "$ROOT/lab/hosts.sh" status
}

case "${1:-}" in
  up) cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
  *) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
