# shellcheck shell=bash
# Sourced by e2e/run.sh after e2e/lib.sh. Checks take local functions, and commands in single quotes on purpose:
# shellcheck disable=SC2016,SC2034,SC2329
# Day 2 through the operator's commands: an etcd snapshot round trip (make backup, make restore, and the snapshots
# restore refuses); scaling through Terraform (worker_count + 1: make apply adds exactly that VM and make
# provision changes only it; back again: make apply drains and deletes the node, then destroys exactly its VM);
# an in-place change (worker memory) that updates the VMs without replacing them; make reset and a fresh provision.

scenario_day2() {
  local master backups value t0 snapshot started echo_pod new_host ids_before vmids
  ensure_cluster
  master="${HOSTS[0]%%=*}"
  echo_deployment 1
  kubectl rollout status deployment/echo --timeout=180s >/dev/null || true

  step "make backup, then make restore: an etcd snapshot round trip"
  backups="$RUN/backups"
  rm -rf "$backups"
  value="restored-$RANDOM$RANDOM"
  kubectl delete configmap e2e-restore -n default --ignore-not-found >/dev/null
  kubectl create configmap e2e-restore -n default --from-literal=value="$value" >/dev/null
  t0=$SECONDS
  make_logged "$RUN/backup.log" backup BACKUP_DIR="$backups" || tail -30 "$RUN/backup.log"
  timing "make backup" "$((SECONDS - t0))s"
  snapshot="$(find "$backups" -name 'k3spve-*' -type f 2>/dev/null | head -1)"
  check "make backup copies a snapshot to the runner: $(basename "${snapshot:-none}")" test -s "$snapshot"
  check "the copy is readable by its owner only" test "$(stat -c %a "$snapshot" 2>/dev/null)" = 600
  kubectl delete configmap e2e-restore -n default >/dev/null
  k3s_started_at() { on "$master" systemctl show -p ActiveEnterTimestampMonotonic --value k3s; }
  started="$(k3s_started_at)"
  cp "$snapshot" "$RUN/corrupt-snapshot"
  printf 'XXXX' | dd of="$RUN/corrupt-snapshot" bs=1 seek=$(($(stat -c %s "$snapshot") / 2)) conv=notrunc status=none
  check "a corrupt snapshot is refused" refused "$RUN/restore-corrupt.log" "is not a usable etcd snapshot: its SHA-256 does not match" \
    restore SNAPSHOT="$RUN/corrupt-snapshot" CONFIRM=yes
  check "a missing snapshot is refused" refused "$RUN/restore-missing.log" "is not a usable etcd snapshot: it does not exist" \
    restore SNAPSHOT="$RUN/no-such-snapshot" CONFIRM=yes
  check "without CONFIRM=yes (and no terminal) restore refuses" refused "$RUN/restore-unconfirmed.log" "Not confirmed, nothing was changed" \
    restore SNAPSHOT="$snapshot"
  check "after the refusals K3s on the master was never restarted" test "$(k3s_started_at)" = "$started"
  check "... and the deleted ConfigMap is still gone" bash -c '! kubectl get configmap e2e-restore -n default >/dev/null 2>&1'
  t0=$SECONDS
  make_logged "$RUN/restore.log" restore SNAPSHOT="$snapshot" CONFIRM=yes || tail -30 "$RUN/restore.log"
  timing "make restore" "$((SECONDS - t0))s"
  check "make restore succeeds" grep -Eq "^$master +: ok=[0-9]+ +changed=[1-9][0-9]* .*failed=0" "$RUN/restore.log"
  check "the ConfigMap is back with its value" test "$(kubectl get configmap e2e-restore -n default -o jsonpath='{.data.value}')" = "$value"
  check "${#HOSTS[@]}/${#HOSTS[@]} nodes Ready after the restore" retry 60 5 all_ready
  check "the echo Deployment is available again" kubectl rollout status deployment/echo --timeout=180s

  step "scaling up through Terraform: worker_count $WORKERS -> $((WORKERS + 1))"
  echo_pod="$(kubectl get pods -l app.kubernetes.io/name=echo -o jsonpath='{.items[0].metadata.uid} {.items[0].status.containerStatuses[0].restartCount}')"
  ids_before="$(vm_ids)"
  WORKERS=$((WORKERS + 1)) configure
  t0=$SECONDS
  apply "$RUN/apply-scale-up.log" || die "make apply (scale up) failed (log $RUN/apply-scale-up.log)"
  check "make apply planned exactly one VM: $(vm_actions "$RUN/apply-scale-up.log")" \
    test "$(vm_actions "$RUN/apply-scale-up.log")" = "k3s-worker-$((WORKERS + 1)) created"
  check "one VM more in the simulator ($(vm_ids))" test "$(vm_ids | wc -w)" -eq $(($(wc -w <<<"$ids_before") + 1))
  new_host="${HOSTS[${#HOSTS[@]} - 1]%%=*}"
  provision "$RUN/provision-scale-up.log" || true
  timing "join one worker (make apply + make provision)" "$((SECONDS - t0))s"
  check "make provision changed only $new_host" only_changed "$RUN/provision-scale-up.log" "$new_host"
  check "${#HOSTS[@]}/${#HOSTS[@]} nodes Ready, $new_host among them" retry 60 5 all_ready
  check "the echo pod kept running: same pod, no restart" \
    test "$(kubectl get pods -l app.kubernetes.io/name=echo -o jsonpath='{.items[0].metadata.uid} {.items[0].status.containerStatuses[0].restartCount}')" = "$echo_pod"

  step "scaling down through Terraform: worker_count back to $WORKERS; make apply drains and deletes the node first"
  # Something to evict: the echo pod, moved onto the node that goes (preferred, so it may move away again).
  kubectl patch deployment echo --type=merge -p "{\"spec\":{\"template\":{\"spec\":{\"affinity\":{\"nodeAffinity\":{\"preferredDuringSchedulingIgnoredDuringExecution\":
    [{\"weight\":100,\"preference\":{\"matchExpressions\":[{\"key\":\"kubernetes.io/hostname\",\"operator\":\"In\",\"values\":[\"$new_host\"]}]}}]}}}}}}" >/dev/null
  kubectl rollout status deployment/echo --timeout=180s >/dev/null || true
  echo_only_on() { test "$(kubectl get pods -l app.kubernetes.io/name=echo -o jsonpath='{.items[*].spec.nodeName}')" = "$1"; }
  check "the echo pod runs on $new_host before the removal" retry 30 2 echo_only_on "$new_host"
  configure
  check "without CONFIRM=yes (and no terminal) make apply refuses to remove the node" refused "$RUN/apply-unconfirmed.log" "Not confirmed" apply
  check "... and the node is still there" kubectl get node "$new_host"
  make_logged "$RUN/apply-scale-down.log" apply CONFIRM=yes || tail -30 "$RUN/apply-scale-down.log"
  check "make apply drained $new_host" grep -q "node/$new_host drained" "$RUN/apply-scale-down.log"
  check "... deleted it from Kubernetes" bash -c '! kubectl get node "$1" >/dev/null 2>&1' _ "$new_host"
  check "... then destroyed exactly its VM: $(vm_actions "$RUN/apply-scale-down.log")" test "$(vm_actions "$RUN/apply-scale-down.log")" = "$new_host destroyed"
  check "... in that order (the drain before Terraform)" bash -c 'grep -n "node/$1 drained" "$2" | cut -d: -f1 | head -1 | { read -r d; [ "$d" -lt "$(grep -n "Destroying..." "$2" | head -1 | cut -d: -f1)" ]; }' _ "$new_host" "$RUN/apply-scale-down.log"
  check "the simulator has the VMs it had before ($ids_before)" test "$(vm_ids)" = "$ids_before"
  check "... and $((MASTERS + WORKERS)) hosts run" test "$(running_hosts)" -eq $((MASTERS + WORKERS))
  mapfile -t HOSTS < <(inventory_hosts)
  check "the inventory lists ${#HOSTS[@]} hosts again" test "${#HOSTS[@]}" = $((MASTERS + WORKERS))
  check "no pod is left bound to $new_host" test -z "$(kubectl get pods -A --field-selector "spec.nodeName=$new_host" -o name)"
  check "the evicted echo pod runs again elsewhere" kubectl rollout status deployment/echo --timeout=180s
  check "${#HOSTS[@]}/${#HOSTS[@]} nodes Ready" retry 60 5 all_ready

  step "an in-place change: worker_memory_mib 4096 -> 3072 (the VMs are updated and rebooted, not replaced)"
  vmids="$(vm_ids)"
  configure "worker_memory_mib = 3072"
  t0=$SECONDS
  make_logged "$RUN/apply-memory.log" apply CONFIRM=yes || tail -30 "$RUN/apply-memory.log"
  check "make apply updated the $WORKERS workers in place: $(vm_actions "$RUN/apply-memory.log" | paste -sd, -)" \
    test "$(vm_actions "$RUN/apply-memory.log" | paste -sd, -)" = "$(for i in $(seq 1 "$WORKERS"); do echo "k3s-worker-$i updated in-place"; done | paste -sd, -)"
  check "... the same VM ids ($vmids)" test "$(vm_ids)" = "$vmids"
  check "... whose config says 3072 MiB" workers_memory_is 3072
  wait_ssh
  check "the rebooted workers come back Ready by themselves" retry 60 5 all_ready
  timing "in-place memory change (apply with reboots, until Ready)" "$((SECONDS - t0))s"
  make_logged "$RUN/diff-memory.log" diff
  check "make diff after it: no changes" no_changes "$RUN/diff-memory.log"
  configure

  step "make reset: K3s leaves every node, and make provision starts clean"
  check "without CONFIRM=yes (and no terminal) reset refuses" refused "$RUN/reset-unconfirmed.log" "Not confirmed" reset
  check "... and K3s still answers" bash -c "kubectl get --raw /readyz | grep -qx ok"
  make_logged "$RUN/reset.log" reset CONFIRM=yes || tail -30 "$RUN/reset.log"
  sed -n '/PLAY RECAP/,$p' "$RUN/reset.log"
  # Not `! ... | grep -q`: with pipefail, ssh killed by SIGPIPE after an early match would read as "none".
  # shellcheck disable=SC2143
  no_k3s_process() { [ -z "$(on "$1" ps -eo comm= | grep -E '^(k3s|containerd)')" ]; }
  local entry host
  for entry in "${HOSTS[@]}"; do
    host="${entry%%=*}"
    check "$host: no K3s or containerd process" no_k3s_process "$host"
    check "$host: no k3s or k3s-agent unit" on "$host" '! systemctl cat k3s k3s-agent >/dev/null 2>&1 && [ ! -e /etc/systemd/system/k3s.service ] && [ ! -e /etc/systemd/system/k3s-agent.service ]'
    check "$host: no K3s data, configuration or binary" on "$host" '[ ! -e /var/lib/rancher/k3s ] && [ ! -e /etc/rancher/k3s ] && [ ! -e /usr/local/bin/k3s ] && [ ! -e /var/lib/kubelet ]'
    check "$host: no cni0 or flannel.1 interface" on "$host" '! ip link show cni0 >/dev/null 2>&1 && ! ip link show flannel.1 >/dev/null 2>&1'
  done
  make_logged "$RUN/reset-2.log" reset CONFIRM=yes || true
  check "a second make reset changes nothing" recap_unchanged "$RUN/reset-2.log"
  host_quirks
  provision "$RUN/provision-after-reset.log" || tail -30 "$RUN/provision-after-reset.log"
  check "make provision after the reset: ${#HOSTS[@]}/${#HOSTS[@]} nodes Ready" retry 60 5 all_ready
}

# workers_memory_is MIB: every worker VM's configuration (as GET config shows it) has that memory.
workers_memory_is() {
  local id
  for id in $(api GET /nodes/pve/qemu | jq -r '.data[] | select(.name | startswith("k3s-worker-")) | .vmid'); do
    [ "$(api GET "/nodes/pve/qemu/$id/config" | jq -r '.data.memory')" = "$1" ] || return 1
  done
}
