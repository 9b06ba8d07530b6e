# shellcheck shell=bash
# Sourced by e2e/run.sh after e2e/lib.sh. Checks take local functions, and commands in single quotes on purpose:
# shellcheck disable=SC2016,SC2034,SC2329
# HA: the one-server cluster grown to three servers behind the API's virtual IP (master_count 3 and api_vip in
# terraform.tfvars, make apply, make provision: the VIP is added to a running cluster). Then failovers under a
# kubectl loop through the VIP: K3s stopped on the server holding the VIP (three times), that server's VM powered
# off (etcd keeps quorum with 2 of 3), two of three servers down (make status reports the API unavailable, and it
# comes back when one returns); and the backup/restore drill on the HA cluster.

# vip_holder: the server whose interface carries the VIP ("" when none does).
vip_holder() {
  local host
  for host in $(servers); do
    if on "$host" "ip -4 -o address show | grep -qF ' $API_VIP/'" </dev/null 2>/dev/null; then echo "$host"; return 0; fi
  done
}
# through_vip: the API answers /readyz through the VIP, with the operator's kubeconfig.
through_vip() { kubectl get --raw /readyz --request-timeout=2s >/dev/null 2>&1; }
# kubectl_loop_start NAME / kubectl_loop_stop: one kubectl request through the VIP every 0.25 s, each logged as
# "ok" or "fail <time> <error>" in $RUN/kubectl-loop-NAME.log.
kubectl_loop_start() {
  LOOP_LOG="$RUN/kubectl-loop-$1.log"
  : >"$LOOP_LOG"
  rm -f "$RUN/kubectl-loop.stop"
  (
    while [ ! -e "$RUN/kubectl-loop.stop" ]; do
      if out="$(kubectl get --raw /readyz --request-timeout=2s 2>&1)"; then echo ok; else echo "fail $(date +%T.%N | cut -c1-12) ${out//$'\n'/ }"; fi
      sleep 0.25
    done >>"$LOOP_LOG"
  ) &
  LOOP_PID=$!
}
kubectl_loop_stop() {
  touch "$RUN/kubectl-loop.stop"
  wait "$LOOP_PID" || true
  local requests failures
  requests="$(wc -l <"$LOOP_LOG")"
  failures="$(grep -c '^fail' "$LOOP_LOG" || true)"
  echo "  kubectl loop through the VIP: $failures of $requests requests failed"
  # The errors, each kind once (times and addresses of the same kind folded together).
  { grep '^fail' "$LOOP_LOG" || true; } | cut -d' ' -f3- | cut -c1-150 | sed -E 's/[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+:[0-9]+->/…->/' | sort | uniq -c | sed 's/^/    /' | head -5
  LOOP_SUMMARY="$failures/$requests"
}
# since T0: seconds since T0 (date +%s.%N), to the tenth.
since() { awk -v t0="$1" -v t1="$(date +%s.%N)" 'BEGIN { printf "%.1f", t1 - t0 }'; }
# wait_failover FROM: until the API answers through the VIP again, held by another server (2 minutes at most):
# FAILOVER_TO is that server ("" if none), FAILOVER_S the seconds since FAILOVER_START.
wait_failover() {
  local from="$1" deadline=$((SECONDS + 120)) holder
  FAILOVER_TO=""
  FAILOVER_S=""
  while [ "$SECONDS" -lt "$deadline" ]; do
    if through_vip; then
      holder="$(vip_holder)"
      if [ -n "$holder" ] && [ "$holder" != "$from" ]; then
        FAILOVER_TO="$holder"
        FAILOVER_S="$(since "$FAILOVER_START")"
        return 0
      fi
    fi
    sleep 0.1
  done
  return 1
}
# agents_stayed_ready T0: every agent is Ready, and has been since before T0 (date +%s.%N): its Ready condition did
# not change during the failover. Asked through the VIP, a few times while the new holder's API settles.
agents_stayed_ready() {
  local entry out i
  for i in $(seq 10); do
    out="$(kubectl get nodes -o jsonpath='{range .items[*]}{.metadata.name} {.status.conditions[?(@.type=="Ready")].status} {.status.conditions[?(@.type=="Ready")].lastTransitionTime}{"\n"}{end}' --request-timeout=3s 2>&1)" && break
    sleep 1
  done
  for entry in "${HOSTS[@]:$MASTERS}"; do
    awk -v n="${entry%%=*}" -v t0="${1%.*}" '$1 == n { found = 1; cmd = "date -d " $3 " +%s"; cmd | getline t; close(cmd)
        if ($2 == "True" && t < t0) exit 0; print n ": Ready=" $2 " since " $3; exit 1 }
      END { if (!found) { print n ": not listed"; exit 1 } }' <<<"$out" || { echo "$out"; return 1; }
  done
}
# schedulable NAME: a new pod (the local echo image) is scheduled on an agent and becomes Ready; then it goes again.
schedulable() {
  # On an agent: the scheduler may otherwise pick the server just stopped (Ready for its 40 s grace period).
  kubectl run "$1" --image="$ECHO_IMAGE" --image-pull-policy=Never --restart=Never --labels=e2e=ha \
    --overrides='{"spec":{"affinity":{"nodeAffinity":{"requiredDuringSchedulingIgnoredDuringExecution":{"nodeSelectorTerms":[{"matchExpressions":[{"key":"node-role.kubernetes.io/control-plane","operator":"DoesNotExist"}]}]}}}}}' >/dev/null &&
    kubectl wait --for=condition=Ready "pod/$1" --timeout=120s >/dev/null &&
    kubectl delete pod "$1" --wait=false >/dev/null
}
# not_taken_back OLD: some server other than OLD holds the VIP (says which).
not_taken_back() {
  local now
  now="$(vip_holder)"
  echo "the VIP is at ${now:-no server}"
  [ -n "$now" ] && [ "$now" != "$1" ]
}
server_ready() { on "$1" "sudo k3s kubectl get --raw /readyz" </dev/null >/dev/null 2>&1; }
# status_says NAME TEXT: make status succeeds and says TEXT (the YAML output may wrap it over lines).
status_says() { make_logged "$RUN/status-$1.log" status && log_says "$RUN/status-$1.log" "$2"; }
FAILOVERS=()

scenario_ha() {
  local t0 holder vmid i value snapshot backups
  ensure_cluster
  echo_deployment 1
  kubectl rollout status deployment/echo --timeout=180s >/dev/null || true

  step "grow to 3 servers behind the virtual IP $API_VIP: make apply, then make provision (the VIP added to a running cluster)"
  MASTERS=3
  configure
  t0=$SECONDS
  apply "$RUN/apply-ha.log" || die "make apply (3 servers) failed (log $RUN/apply-ha.log)"
  # Created, replaced or destroyed: only the two servers. (An in-place update of the workers is what an earlier
  # scenario left: day2 changes their memory, and configure writes the default again.)
  check "make apply created the two new servers and replaced or destroyed nothing: $(vm_actions "$RUN/apply-ha.log" | paste -sd, -)" \
    test "$(vm_actions "$RUN/apply-ha.log" | grep -v ' updated in-place$' | paste -sd, -)" = "k3s-master-2 created,k3s-master-3 created"
  no_vm_has_vip() { ! awk -v a="ansible_host=$API_VIP" '$2 == a { f = 1 } END { exit !f }' "$INVENTORY"; }
  check "no VM got the VIP (the inventory from that apply)" no_vm_has_vip
  check "the stack's outputs name the VIP" log_says "$RUN/apply-ha.log" "api_vip = \"$API_VIP\""
  provision "$RUN/provision-ha.log" || { tail -40 "$RUN/provision-ha.log"; die "make provision (3 servers) failed"; }
  timing "grow to 3 servers with a VIP (make apply + make provision)" "$((SECONDS - t0))s"
  check "$((MASTERS + WORKERS))/$((MASTERS + WORKERS)) nodes Ready, 3 of them control-plane" \
    bash -c 'retry() { for _ in $(seq 60); do "$@" && return 0; sleep 5; done; return 1; }
      ready() { [ "$(kubectl get nodes --no-headers | awk "\$2 == \"Ready\"" | wc -l)" -eq "$1" ] &&
        [ "$(kubectl get nodes -l node-role.kubernetes.io/control-plane=true --no-headers | wc -l)" -eq 3 ]; }
      retry ready "$1"' _ "$((MASTERS + WORKERS))"
  check "the kubeconfig points at the VIP" test "$(kubectl config view -o jsonpath='{.clusters[0].cluster.server}')" = "https://$API_VIP:6443"
  check "the API answers /readyz through the VIP, the VIP in its certificate (kubectl verifies it)" through_vip
  check "... listed as a subject alternative name" bash -c \
    'openssl s_client -connect "$1:6443" </dev/null 2>/dev/null | openssl x509 -noout -ext subjectAltName | grep -q "IP Address:$1"' _ "$API_VIP"
  for i in "${!HOSTS[@]}"; do
    [ "$i" -ge "$MASTERS" ] || continue
    check "${HOSTS[$i]%%=*} registers through the VIP" on "${HOSTS[$i]%%=*}" "sudo grep -qx 'server: https://$API_VIP:6443' /etc/rancher/k3s/config.yaml"
  done
  holder="$(vip_holder)"
  check "exactly one server holds the VIP: ${holder:-none}" test "$(for h in $(servers); do on "$h" "ip -4 -o address show | grep -F ' $API_VIP/'" </dev/null; done | wc -l)" -eq 1
  check "make status: 3 of 3 servers ready, etcd has quorum" status_says healthy "3 of 3 servers ready; etcd has quorum (3 of 3 members healthy, 2 needed)"
  check "... and names the holder of the VIP" log_says "$RUN/status-healthy.log" "$holder ($(sed -n "s/^$holder ansible_host=\([^ ]*\).*/\1/p" "$INVENTORY")): k3s active, API ready, etcd healthy, holds the virtual IP"
  provision "$RUN/provision-ha-2.log" || true
  check "a second make provision changes nothing" recap_unchanged "$RUN/provision-ha-2.log"

  for i in 1 2 3; do
    holder="$(vip_holder)"
    step "failover $i: K3s stopped on $holder, which holds the VIP"
    kubectl_loop_start "stop-$i"
    sleep 1
    FAILOVER_START="$(date +%s.%N)"
    on "$holder" sudo systemctl stop k3s </dev/null
    wait_failover "$holder" || true
    check "the VIP moved to another server whose API answers: ${FAILOVER_TO:-none} after ${FAILOVER_S:-?} s" test -n "$FAILOVER_TO"
    [ -z "$FAILOVER_S" ] || FAILOVERS+=("$FAILOVER_S")
    timing "failover $i (k3s stopped on the holder): $holder -> ${FAILOVER_TO:-none}" "${FAILOVER_S:-?}s"
    sleep 2
    kubectl_loop_stop
    timing "failover $i: kubectl requests failed / sent" "$LOOP_SUMMARY"
    check "the agents stay Ready (their Ready condition unchanged since before the failover)" agents_stayed_ready "$FAILOVER_START"
    check "a new pod can be scheduled" schedulable "ha-stop-$i"
    on "$holder" sudo systemctl start k3s </dev/null
    check "$holder's API is ready again after K3s starts" retry 60 2 server_ready "$holder"
    # nopreempt: a returning server does not take the VIP back. (It may still move once more: etcd's leader change
    # when the old server rejoins can fail another server's /readyz for a moment.)
    check "$holder, back, does not take the VIP back (nopreempt)" retry 10 1 not_taken_back "$holder"
  done

  holder="$(vip_holder)"
  vmid="$(vmid_of "$holder")"
  step "failover 4: the VM of $holder (VM $vmid), which holds the VIP, powered off"
  kubectl_loop_start poweroff
  sleep 1
  FAILOVER_START="$(date +%s.%N)"
  api POST "/nodes/pve/qemu/$vmid/status/stop" >/dev/null
  wait_failover "$holder" || true
  check "the VIP moved to another server whose API answers: ${FAILOVER_TO:-none} after ${FAILOVER_S:-?} s" test -n "$FAILOVER_TO"
  [ -z "$FAILOVER_S" ] || FAILOVERS+=("$FAILOVER_S")
  timing "failover 4 (VM powered off): $holder -> ${FAILOVER_TO:-none}" "${FAILOVER_S:-?}s"
  sleep 2
  kubectl_loop_stop
  timing "failover 4: kubectl requests failed / sent" "$LOOP_SUMMARY"
  check "the VM is stopped (Proxmox's view)" test "$(api GET "/nodes/pve/qemu/$vmid/status/current" | jq -r .data.status)" = stopped
  check "etcd keeps quorum with 2 of 3 (make status: each member's /health through K3s's certificates)" \
    status_says poweroff "2 of 3 servers ready; etcd has quorum (2 of 3 members healthy, 2 needed)"
  check "... which names the powered-off server unreachable and warns that one more failure stops the API" \
    bash -c 'sed "s/^[ ]*//" "$2" | tr -s " \n" "  " | grep -q "$1 ([0-9.]*): unreachable over SSH.*one more server down stops the API"' _ "$holder" "$RUN/status-poweroff.log"
  check "the agents stay Ready (their Ready condition unchanged since before the failover)" agents_stayed_ready "$FAILOVER_START"
  check "a new pod can be scheduled" schedulable ha-poweroff
  api POST "/nodes/pve/qemu/$vmid/status/start" >/dev/null
  wait_ssh
  check "$holder boots, and K3s with it (enabled): its API is ready" retry 90 2 server_ready "$holder"
  check "$((MASTERS + WORKERS))/$((MASTERS + WORKERS)) nodes Ready again" retry 60 5 all_ready

  step "two of three servers down: the API is unavailable, and comes back when one returns"
  local down=() up
  for i in 0 1 2; do
    if [ "${#down[@]}" -lt 2 ]; then down+=("${HOSTS[$i]%%=*}"); else up="${HOSTS[$i]%%=*}"; fi
  done
  for holder in "${down[@]}"; do on "$holder" sudo systemctl stop k3s </dev/null; done
  check "the API through the VIP stops answering (the last server gives the VIP up: no etcd quorum)" retry 30 2 bash -c '! kubectl get --raw /readyz --request-timeout=2s >/dev/null 2>&1'
  status_fails() { ! make_logged "$RUN/status-down.log" status; }
  check "make status fails, saying the API is unavailable and why" status_fails
  check "... naming the quorum: 1 of 3 servers up is not enough" \
    log_says "$RUN/status-down.log" "The Kubernetes API is unavailable at https://$API_VIP:6443"
  check "... and what to do" log_says "$RUN/status-down.log" "etcd needs 2 for quorum. Start the servers that are down"
  plain "$RUN/status-down.log" | sed 's/^ *//' | tr -s ' \n' '  ' | grep -oE "(k3s-master-[0-9] \([0-9.]*\): [^'\"]*|The Kubernetes API is unavailable[^'\"]*)" | sed -e 's/ Nothing was changed\..*/ Nothing was changed./' -e 's/^/  /' | awk '!seen[$0]++'
  t0="$(date +%s.%N)"
  on "${down[0]}" sudo systemctl start k3s </dev/null
  check "the API answers through the VIP again once ${down[0]} is back (2 of 3)" retry 120 1 through_vip
  timing "API back through the VIP after the second server returned" "$(since "$t0")s"
  on "${down[1]}" sudo systemctl start k3s </dev/null
  check "$((MASTERS + WORKERS))/$((MASTERS + WORKERS)) nodes Ready with all three servers" retry 60 5 all_ready
  check "make status: 3 of 3 servers ready again" retry 30 2 status_says recovered "3 of 3 servers ready"

  step "backup and restore on the HA cluster"
  backups="$RUN/backups-ha"
  rm -rf "$backups"
  value="ha-restored-$RANDOM$RANDOM"
  kubectl delete configmap e2e-ha-restore -n default --ignore-not-found >/dev/null
  kubectl create configmap e2e-ha-restore -n default --from-literal=value="$value" >/dev/null
  make_logged "$RUN/backup-ha.log" backup BACKUP_DIR="$backups" || tail -30 "$RUN/backup-ha.log"
  snapshot="$(find "$backups" -name 'k3spve-*' -type f 2>/dev/null | head -1)"
  check "make backup copies a snapshot: $(basename "${snapshot:-none}")" test -s "$snapshot"
  kubectl delete configmap e2e-ha-restore -n default >/dev/null
  t0=$SECONDS
  make_logged "$RUN/restore-ha.log" restore SNAPSHOT="$snapshot" CONFIRM=yes || tail -30 "$RUN/restore-ha.log"
  timing "make restore, 3 servers" "$((SECONDS - t0))s"
  check "make restore succeeds on every server" bash -c '[ "$(grep -cE "^k3s-master-[0-9]+ +: ok=[0-9]+ +changed=[1-9][0-9]* .*failed=0" "$1")" -eq 3 ]' _ "$RUN/restore-ha.log"
  check "the ConfigMap is back with its value (through the VIP)" test "$(kubectl get configmap e2e-ha-restore -n default -o jsonpath='{.data.value}')" = "$value"
  check "$((MASTERS + WORKERS))/$((MASTERS + WORKERS)) nodes Ready after the restore" retry 60 5 all_ready
  check "make status: 3 of 3 servers ready, etcd has quorum" retry 30 2 status_says restored "3 of 3 servers ready; etcd has quorum (3 of 3 members healthy"
  kubectl delete pod -l e2e=ha --ignore-not-found >/dev/null

  local sorted
  [ "${#FAILOVERS[@]}" -gt 0 ] || return 0
  sorted="$(printf '%s\n' "${FAILOVERS[@]}" | sort -n)"
  timing "failover time over ${#FAILOVERS[@]}: min / median / max" \
    "$(head -1 <<<"$sorted") / $(awk '{ v[NR] = $1 } END { printf "%.1f", NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }' <<<"$sorted") / $(tail -1 <<<"$sorted") s"
}
