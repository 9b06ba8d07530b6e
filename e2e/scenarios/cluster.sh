# shellcheck shell=bash
# Sourced by e2e/run.sh after e2e/lib.sh. Checks take local functions, and commands in single quotes on purpose:
# shellcheck disable=SC2016,SC2034,SC2329
# The user's first run: make apply creates the VMs (cloned from the template make template built, or builds it
# first) and writes the inventory, make diff settles, make provision
# installs the default way (the K3s release downloaded and checked against its sha256sum file — from a local mirror
# laid out like K3s's releases) and changes nothing the second time. Then the hosts and the cluster are checked.

scenario_cluster() {
  local t0 counts entry host service sim_stats
  configure
  if [ -n "$(vm_ids)" ]; then
    note "VMs exist already (another scenario made them): make destroy first, so that make apply creates them"
    make_logged "$RUN/destroy-before-cluster.log" destroy CONFIRM=yes || die "make destroy failed (log $RUN/destroy-before-cluster.log)"
  fi
  rm -f "$INVENTORY"
  t0=$SECONDS
  apply "$RUN/apply-1.log" || die "make apply failed (log $RUN/apply-1.log)"
  timing "make apply, $((MASTERS + WORKERS)) VMs (until their hosts answer SSH)" "$((SECONDS - t0))s"
  counts="$(plan_counts "$RUN/apply-1.log")"
  check "make apply planned $((MASTERS + WORKERS)) VMs, the template check and the inventory: $counts" test "$counts" = "$((MASTERS + WORKERS + 2)) 0 0"
  check "the simulator has exactly those VMs: $(vm_ids)" test "$(vm_ids | wc -w)" -eq $((MASTERS + WORKERS))
  check "every VM is a running host ($(running_hosts))" test "$(running_hosts)" -eq $((MASTERS + WORKERS))
  check "the inventory comes from that apply" grep -q "^k3s-worker-$WORKERS ansible_host=$PREFIX.$((10 + 10 + WORKERS - 1))" "$INVENTORY"
  cat "$INVENTORY"
  cloned_from_built() {
    [ "$(grep -c "POST /api2/json/nodes/pve/qemu/9000/clone 200" "$LAB_DIR/pve/state/pve-sim.log")" -ge $((MASTERS + WORKERS)) ] &&
      [ "$(api GET /nodes/pve/qemu/9000/config | jq -r .data.description)" = "Cloud-init template built by k3s-proxmox (make template) from $IMAGE_URL. make template-destroy removes it." ]
  }
  check "every VM is a full clone of the template make template built" cloned_from_built
  make_logged "$RUN/diff-1.log" diff
  check "make diff right after: no changes in either stack, the template's and the VMs' (the refresh settles)" \
    test "$(plain "$RUN/diff-1.log" | grep -c "No changes. Your infrastructure matches the configuration.")" -eq 2
  sim_stats="$LAB_DIR/pve/state/stats.json"
  echo "API calls so far by endpoint (calls / parameters checked against the PVE $LAB_PVE_VERSION schema / property-string keys checked / refused):"
  jq -r 'to_entries | sort_by(.key)[] | "  \(.key): \(.value.calls) / \(.value.parameters) / \(.value.keys) / \(.value.rejected)"' "$sim_stats"
  jq -r '[.[]] | "  total: \(map(.calls) | add) calls, \(map(.parameters) | add) parameters and \(map(.keys) | add) keys checked"' "$sim_stats"
  cp "$sim_stats" "$RUN/api-stats-after-apply.json"

  mirror_up
  mirror_add good "$K3S_BASE_DIR"
  step "make provision (first run): K3s $K3S_BASE downloaded from $MIRROR/good"
  t0=$SECONDS
  provision "$RUN/provision-1.log" || { tail -40 "$RUN/provision-1.log"; die "the first provision failed"; }
  timing "first make provision" "$((SECONDS - t0))s"
  check "the nodes downloaded the binary from the release layout (/<version with %2B>/k3s)" \
    grep -q "GET /good/${K3S_BASE//+/%2B}/k3s HTTP" "$RUN/mirror.log"
  check "... and the air-gap images archive of the release" grep -q "GET /good/${K3S_BASE//+/%2B}/k3s-airgap-images-amd64.tar HTTP" "$RUN/mirror.log"
  step "make provision again: must change nothing"
  t0=$SECONDS
  provision "$RUN/provision-2.log" || true
  timing "second (idempotent) make provision" "$((SECONDS - t0))s"
  check "second provision reports changed=0 on every host" recap_unchanged "$RUN/provision-2.log"
  make_logged "$RUN/diff-2.log" diff
  check "make diff after provision: no changes (the guest agent now reports the addresses)" no_changes "$RUN/diff-2.log"

  step "the hosts"
  for entry in "${HOSTS[@]}"; do
    host="${entry%%=*}"
    service=k3s-agent
    [[ "$host" == *master* ]] && service=k3s
    check "$host: hostname is its inventory name (cloud-init, from the VM name)" test "$(on "$host" hostname)" = "$host"
    check "$host: eth0 has ${entry#*=} (cloud-init, from ipconfig0)" on "$host" "ip -4 -o addr show eth0 | grep -q ' ${entry#*=}/24 '"
    check "$host: the guest agent reports it to Proxmox" agent_reports "$(vmid_of "$host")" "${entry#*=}"
    check "$host: timezone Europe/Warsaw" test "$(on "$host" timedatectl show -p Timezone --value)" = Europe/Warsaw
    check "$host: packages vim, htop, curl, qemu-guest-agent installed" on "$host" dpkg-query -W vim htop curl qemu-guest-agent
    check "$host: /etc/hosts names the master and the node itself" on "$host" "grep -q '\\bk3s-master-1\\b' /etc/hosts && grep -q '\\b$host\\b' /etc/hosts"
    check "$host: no active swap, none in fstab" on "$host" '[ -z "$(swapon --noheadings)" ] && ! grep -Eq "^[^#].*\bswap\b" /etc/fstab'
    check "$host: net.ipv4.ip_forward = 1" test "$(on "$host" cat /proc/sys/net/ipv4/ip_forward)" = 1
    check "$host: bridge-nf-call-iptables = 1" test "$(on "$host" cat /proc/sys/net/bridge/bridge-nf-call-iptables)" = 1
    check "$host: K3s binary is the release's (sha256 of its sha256sum file)" test "$(on "$host" sha256sum /usr/local/bin/k3s | cut -d' ' -f1)" = "$(awk '$2 == "k3s" { print $1 }' "$K3S_BASE_DIR/sha256sum-amd64.txt")"
    check "$host: /etc/rancher/k3s/config.yaml is 0600 root" test "$(on "$host" sudo stat -c %a:%U /etc/rancher/k3s/config.yaml)" = 600:root
    check "$host: config.yaml has node-ip ${entry#*=}" on "$host" sudo grep -q "${entry#*=}" /etc/rancher/k3s/config.yaml
    check "$host: $service enabled and active" on "$host" systemctl is-enabled --quiet "$service" '&&' systemctl is-active --quiet "$service"
  done

  step "the cluster, through $RUN/kubeconfig"
  local master_ip="${HOSTS[0]#*=}"
  check "kubeconfig is 0600 and points at https://$master_ip:6443" \
    bash -c "[ \"\$(stat -c %a '$RUN/kubeconfig')\" = 600 ] && grep -q 'server: https://$master_ip:6443' '$RUN/kubeconfig'"
  check "API /readyz answers ok" bash -c "kubectl get --raw /readyz | grep -qx ok"
  check "${#HOSTS[@]}/${#HOSTS[@]} nodes Ready" retry 60 5 all_ready
  check "every node runs $K3S_BASE" versions_are "$K3S_BASE"
  kubectl get nodes -o wide || true
  check "k3s etcd-snapshot save writes a snapshot" \
    on "${HOSTS[0]%%=*}" 'sudo k3s etcd-snapshot save --name e2e >/dev/null 2>&1 && sudo ls /var/lib/rancher/k3s/server/db/snapshots/ | grep -q "^e2e-"'
  echo_deployment 1
  check "echo pod (locally built image, from the release's air-gap images) rolls out on a worker" kubectl rollout status deployment/echo --timeout=180s
  kubectl get pods -o wide || true
  check "NodePort $ECHO_PORT answers from the runner (${HOSTS[1]#*=})" retry 30 2 curl -fsS --max-time 3 "http://${HOSTS[1]#*=}:$ECHO_PORT/e2e"

  step "secrets"
  check "the K3s token, the Proxmox token and its secret appear in no log" \
    secrets_in_logs "$(on "${HOSTS[0]%%=*}" sudo cat /var/lib/rancher/k3s/server/token)" "$PROXMOX_VE_API_TOKEN" "${PROXMOX_VE_API_TOKEN#*=}"
}

# agent_reports VMID IP: the VM's guest agent (through the simulator's API) lists IP on eth0.
agent_reports() {
  api GET "/nodes/pve/qemu/$1/agent/network-get-interfaces" \
    | jq -e --arg ip "$2" '.data.result[] | select(.name == "eth0") | ."ip-addresses"[] | select(."ip-address" == $ip)' >/dev/null
}
