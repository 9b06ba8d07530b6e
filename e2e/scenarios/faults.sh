# shellcheck shell=bash
# Sourced by e2e/run.sh after e2e/lib.sh. Checks take local functions, and commands in single quotes on purpose:
# shellcheck disable=SC2016,SC2034,SC2329
# Faults: make provision killed (SIGKILL, with everything it started) at three points of a first run — during the
# packages on fresh VMs, while K3s starts on the server, while the agents join — each followed by a re-run that
# converges (every node Ready); after the last, a run that changes nothing. Then an agent and a server rebooted
# through the Proxmox API come back Ready by themselves, with their pods running again; and a node that is down
# when make provision starts stops the run before anything changes anywhere, with a message that names it.

# provision_killed LOG PATTERN WHAT: make provision in the background, killed 2 s after its log shows PATTERN (the
# start of a task). Job control gives it a process group of its own, so the kill takes ansible-playbook, its
# workers and their ssh clients with it, as a crash of the operator's machine would.
provision_killed() {
  local log="$1" pattern="$2" what="$3" pid deadline=$((SECONDS + 600))
  : >"$log" # not an earlier run's log: the pattern must come from this one
  set -m
  provision "$log" >/dev/null &
  pid=$!
  set +m
  while ! grep -qF -- "$pattern" "$log" 2>/dev/null; do
    if ! kill -0 "$pid" 2>/dev/null || [ "$SECONDS" -ge "$deadline" ]; then
      kill -KILL -- "-$pid" 2>/dev/null || true
      wait "$pid" 2>/dev/null || true
      check "make provision reached '$pattern' ($what)" false
      return 0
    fi
    sleep 0.2
  done
  sleep 2
  kill -KILL -- "-$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  check "make provision killed $what (last task started: $(grep '^TASK \[' "$log" | tail -1 | sed 's/^TASK \[\(.*\)\] \**$/\1/'))" \
    bash -c '! grep -q "PLAY RECAP" "$1"' _ "$log"
}
# converges LOG: make provision again succeeds and every node is Ready.
converges() {
  local t0=$SECONDS
  provision "$1" >/dev/null || true
  check "the re-run succeeds ($((SECONDS - t0)) s)" grep -q "PLAY RECAP" "$1"
  check "... without a failed host" bash -c '! sed -n "/PLAY RECAP/,\$p" "$1" | grep -Eq "(failed|unreachable)=[1-9]"' _ "$1"
  check "... and every node is Ready" retry 60 2 all_ready
}
# reboot_vms NAME...: the VMs rebooted through the Proxmox API, as the web UI's Reboot does.
reboot_vms() {
  local name
  for name in "$@"; do api POST "/nodes/pve/qemu/$(vmid_of "$name")/status/reboot" >/dev/null; done
}
# pinned NODE: a one-pod Deployment of the locally built echo image bound to NODE (the system pods' images cannot
# be had here, so they never run; this one does).
pinned() {
  kubectl apply -f - >/dev/null <<EOF
apiVersion: apps/v1
kind: Deployment
metadata: { name: "pinned-$1", namespace: default }
spec:
  replicas: 1
  selector: { matchLabels: { app: "pinned-$1" } }
  template:
    metadata: { labels: { app: "pinned-$1" } }
    spec:
      nodeSelector: { kubernetes.io/hostname: "$1" }
      containers:
        - { name: echo, image: "$ECHO_IMAGE", imagePullPolicy: Never, readinessProbe: { httpGet: { path: /healthz, port: 8080 }, periodSeconds: 1 } }
EOF
}
# pinned_runs NODE: the pinned pod on NODE is Running and ready.
pinned_runs() {
  [ "$(kubectl get pods -l "app=pinned-$1" --field-selector "spec.nodeName=$1" -o jsonpath='{range .items[*]}{.status.phase}/{.status.containerStatuses[0].ready}{"\n"}{end}' 2>/dev/null)" = "Running/true" ]
}
# init_started HOST: when the host's init started (clock ticks since the runner booted: the lab's hosts share its
# kernel, so a reboot shows as a later start, not as a new boot id).
init_started() { on "$1" 'cut -d" " -f22 /proc/1/stat' </dev/null; }
rebooted() { [ "$(init_started "$1")" != "$2" ]; } # rebooted HOST START_BEFORE
provision_fails() { ! provision "$1" >/dev/null; }

scenario_faults() {
  local worker server started_worker started_server t0
  # shellcheck disable=SC2119
  configure
  step "fresh VMs, so that the first kill hits a real package installation"
  if [ -n "$(vm_ids)" ]; then
    make_logged "$RUN/destroy-before-faults.log" destroy CONFIRM=yes || die "make destroy failed (log $RUN/destroy-before-faults.log)"
  fi
  rm -f "$INVENTORY" "$RUN/kubeconfig"
  apply "$RUN/apply-faults.log" || die "make apply failed (log $RUN/apply-faults.log)"
  mirror_up
  mirror_add good "$K3S_BASE_DIR"

  step "make provision killed during the packages, then run again"
  provision_killed "$RUN/faults-kill-1.log" "TASK [base : Install the base packages (apt)]" "during the package installation"
  converges "$RUN/faults-converge-1.log"

  step "make reset; make provision killed while K3s starts on the server, then run again"
  make_logged "$RUN/faults-reset-2.log" reset CONFIRM=yes || die "make reset failed (log $RUN/faults-reset-2.log)"
  host_quirks
  provision_killed "$RUN/faults-kill-2.log" "TASK [k3s_master : Wait until systemd reports k3s started" "while K3s starts on the server"
  converges "$RUN/faults-converge-2.log"

  step "make reset; make provision killed while the agents join, then run again, then once more"
  make_logged "$RUN/faults-reset-3.log" reset CONFIRM=yes || die "make reset failed (log $RUN/faults-reset-3.log)"
  host_quirks
  provision_killed "$RUN/faults-kill-3.log" "TASK [k3s_worker : Wait until systemd reports k3s-agent started" "while the agents join"
  converges "$RUN/faults-converge-3.log"
  provision "$RUN/faults-noop.log" >/dev/null || true
  check "a further make provision reports changed=0 on every host" recap_unchanged "$RUN/faults-noop.log"

  step "an agent and a server rebooted through the Proxmox API come back by themselves"
  worker="${HOSTS[$((${#HOSTS[@]} - 1))]%%=*}"
  server="${HOSTS[0]%%=*}"
  pinned "$worker"
  pinned "$server"
  check "a pod runs on $worker and one on $server" retry 90 2 bash -c 'kubectl rollout status "deployment/pinned-$1" --timeout=5s && kubectl rollout status "deployment/pinned-$2" --timeout=5s' _ "$worker" "$server"
  started_worker="$(init_started "$worker")"
  started_server="$(init_started "$server")"
  t0=$SECONDS
  reboot_vms "$worker" "$server"
  sleep 5
  wait_ssh
  check "$worker was rebooted (its init started anew)" rebooted "$worker" "$started_worker"
  check "$server was rebooted (its init started anew)" rebooted "$server" "$started_server"
  check "every node is Ready again, with no make provision" retry 90 2 all_ready
  # cloud-init rewrites /etc/hosts at every boot (Proxmox's user-data: manage_etc_hosts): the block is in its template.
  check "$worker's /etc/hosts still names the server after the reboot" on "$worker" "grep -q '\\b$server\\b' /etc/hosts"
  check "the pod on $worker runs again" retry 60 2 pinned_runs "$worker"
  check "the pod on $server runs again" retry 60 2 pinned_runs "$server"
  timing "reboot of an agent and a server, until Ready and their pods run" "$((SECONDS - t0))s"

  step "a node that is down when make provision starts"
  local down="${HOSTS[$((${#HOSTS[@]} - 1))]%%=*}"
  api POST "/nodes/pve/qemu/$(vmid_of "$down")/status/stop" >/dev/null
  retry 30 1 bash -c '! ssh -F "$1" -o BatchMode=yes -o ConnectTimeout=1 "$2" true 2>/dev/null' _ "$RUN/ssh_config" "$down" || true
  check "make provision fails" provision_fails "$RUN/faults-down.log"
  check "... naming the node and what to check" log_says "$RUN/faults-down.log" "Cannot reach $down at"
  check "... before anything changed anywhere (changed=0 on every host)" \
    bash -c '! sed -n "/PLAY RECAP/,\$p" "$1" | grep -q "changed=[1-9]"' _ "$RUN/faults-down.log"
  check "... and before the OS was touched (no task of the base role ran)" bash -c '! grep -q "TASK \[base :" "$1"' _ "$RUN/faults-down.log"
  api POST "/nodes/pve/qemu/$(vmid_of "$down")/status/start" >/dev/null
  wait_ssh
  check "started again, $down is Ready again by itself" retry 90 2 all_ready
  kubectl delete deployment "pinned-$worker" "pinned-$server" --wait=false >/dev/null
}
