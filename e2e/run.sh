#!/usr/bin/env bash
# make e2e: the project's real flow on real hosts, with only Proxmox absent.
#
#   1. tools: OpenTofu + providers, the Python venv, a K3s built offline (scripts/build-k3s.sh)
#   2. a terraform.tfvars for the test subnet -> make synth -> a real `tofu apply` of the inventory file
#      (the Proxmox VMs are the only resources not applied: -target=local_file.inventory)
#   3. systemd-nspawn Debian 12 hosts at the inventory's addresses (e2e/hosts.sh)
#   4. make provision, through K3s's air-gap path (the built binary and images), then again: changed=0
#   5. checks on the hosts (OS roles, files, services) and on the cluster: /readyz, every node Ready through
#      the fetched kubeconfig, an etcd snapshot, a pod from a locally built image answering on a NodePort;
#      the node token appears in no log
#   6. tear-down (E2E_KEEP=1 keeps the hosts up: e2e/hosts.sh down removes them)
#
# Needs root on Linux. Environment: E2E_RUN_DIR (default /tmp/k3spve-e2e), E2E_SUBNET (default
# 10.213.57.0/24), E2E_MASTERS (default 1; 3 for embedded-etcd HA), E2E_WORKERS (default 2), E2E_KEEP, K3SPVE_CACHE,
# E2E_STOP_AFTER=provision (stop after the two provisions and their checks; `make bench` times those).
#
# Checks written as bash -c '...' _ ARGS take their values as positional parameters, on purpose:
# shellcheck disable=SC2016
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export E2E_RUN_DIR="${E2E_RUN_DIR:-/tmp/k3spve-e2e}"
export E2E_SUBNET="${E2E_SUBNET:-10.213.57.0/24}"
RUN="$E2E_RUN_DIR"
MASTERS="${E2E_MASTERS:-1}"
WORKERS="${E2E_WORKERS:-2}"
NET="${E2E_SUBNET%/*}"
PREFIX="${NET%.*}"
ECHO_PORT=30999
START=$SECONDS
passed=0
failed=0

elapsed() { printf '%4ds' $((SECONDS - START)); }
step() { printf '\n=== [e2e %s] %s\n' "$(elapsed)" "$*"; }
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
on() { local host="$1"; shift; ssh -F "$RUN/ssh_config" -o BatchMode=yes "$host" "$@"; }

[ "$(uname -s)" = Linux ] && [ "$(id -u)" = 0 ] || die "make e2e needs root on Linux (it creates bridges, mounts and containers)"

# The kubelet insists on these kernel settings and writes them when they differ; /proc/sys is read-only inside
# the containers, so the runner gets them for the run (they are machine-wide) and its own values back after.
# containerd's CRI plugin also needs inotify instances, which three containers' systemd exhaust at the default 128.
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
  for kv in "${SAVED_SYSCTLS[@]}"; do sysctl -q -w "$kv" || true; done
}

cleanup() {
  local rc=$?
  if [ -n "${E2E_KEEP:-}" ]; then
    echo "[e2e] E2E_KEEP is set: hosts left running (ssh -F $RUN/ssh_config <name>; e2e/hosts.sh down removes them)"
  else
    step "tear-down"
    bash e2e/hosts.sh down || rc=1
    restore_sysctls
  fi
  exit "$rc"
}

step "tools"
bash scripts/setup-tools.sh >&2
VENV_BIN="$(bash scripts/setup-python.sh)"
K3S_DIR="$(bash scripts/build-k3s.sh)"
[ -x "$K3S_DIR/k3s" ] || die "scripts/build-k3s.sh gave no k3s binary in $K3S_DIR"
K3S_VERSION="$(sed -n 's/^K3S_VERSION=//p' "$K3S_DIR/build-info.env")"
TOFU="${K3SPVE_CACHE:-$HOME/.cache/k3s-proxmox}/tools/bin/tofu"
[ -x "$TOFU" ] || TOFU="$(command -v tofu)" || die "no tofu: scripts/setup-tools.sh should have provided one"
mkdir -p "$RUN/bin"
ln -sf "$K3S_DIR/k3s" "$RUN/bin/kubectl" # the K3s binary is kubectl when called so
export PATH="$RUN/bin:$VENV_BIN:$PATH" KUBECONFIG="$RUN/kubeconfig"
echo "K3s $K3S_VERSION from $K3S_DIR"

INVENTORY="$RUN/ansible/inventory/hosts.ini"
[ -f "$RUN/id_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -C k3spve-e2e -f "$RUN/id_ed25519"
# synthesize WORKERS [TFVARS_LINE...]: write terraform.tfvars and make synth (Terraform JSON, group_vars and
# manifests/ into $RUN); apply_inventory: a real `tofu apply` of the inventory file; configure: both, the
# operator's steps up to the inventory.
synthesize() {
  local workers="$1"
  shift
  cat >"$RUN/terraform.tfvars" <<EOF
# e2e: the same configuration an operator writes, for the test hosts (Proxmox is never contacted).
proxmox_endpoint     = "https://proxmox.invalid:8006/"
template_vm_id       = 9000
master_count         = $MASTERS
worker_count         = $workers
node_cidr            = "$PREFIX.0/24"
gateway              = "$PREFIX.1"
dns_servers          = ["$PREFIX.1"]
first_ip             = "$PREFIX.10"
ssh_user             = "debian"
ssh_public_key_file  = "$RUN/id_ed25519.pub"
k3s_version          = "$K3S_VERSION"
EOF
  printf '%s\n' "$@" >>"$RUN/terraform.tfvars"
  rm -rf "$RUN/cdktf.out" # a previous run from another checkout left its backend path in .terraform/
  TFVARS="$RUN/terraform.tfvars" K3SPVE_OUTPUT_DIR="$RUN" npx --no-install cdktn synth --output "$RUN/cdktf.out" >"$RUN/synth.log" 2>&1 \
    || { cat "$RUN/synth.log" >&2; die "synth failed"; }
}
apply_inventory() {
  (
    cd "$RUN/cdktf.out/stacks/k3s"
    export TF_CLI_CONFIG_FILE="${K3SPVE_CACHE:-$HOME/.cache/k3s-proxmox}/tools/tofurc" CHECKPOINT_DISABLE=1
    "$TOFU" init -input=false -no-color -reconfigure >"$RUN/tofu-init.log" 2>&1 || { cat "$RUN/tofu-init.log" >&2; exit 1; }
    # A state of our own, not the operator's terraform.k3s.tfstate.
    "$TOFU" apply -input=false -no-color -auto-approve -target=local_file.inventory -state="$RUN/e2e.tfstate" \
      -var "output_dir=$RUN" >"$RUN/tofu-apply.log" 2>&1 || { cat "$RUN/tofu-apply.log" >&2; exit 1; }
  ) || die "tofu apply of the inventory failed"
}
configure() { synthesize "$@" && apply_inventory; }
inventory_hosts() { awk '/ansible_host=/ { sub("ansible_host=", "", $2); print $1 "=" $2 }' "$INVENTORY"; }

step "configuration: $RUN/terraform.tfvars ($MASTERS master(s), $WORKERS workers on $E2E_SUBNET), make synth, tofu apply of the inventory"
configure "$WORKERS"
cat "$INVENTORY"
mapfile -t HOSTS < <(inventory_hosts)
MASTER="${HOSTS[0]%%=*}"
MASTER_IP="${HOSTS[0]#*=}"

step "test hosts: ${HOSTS[*]}"
trap cleanup EXIT
set_kubelet_sysctls
bash e2e/hosts.sh up "${HOSTS[@]}"

# Test hosts only: this runner's processes lack CAP_SYS_RESOURCE, so nothing may lower its OOM score and runc
# fails every pod sandbox ("failed to update /proc/self/oom_score_adj"). containerd's restrict_oom_score_adj,
# imported through K3s's own config-template mechanism, makes it clamp the score instead. VMs do not need it.
test_host_quirks() { # test_host_quirks NAME
  on "$1" 'sudo install -d -m 0755 /var/lib/rancher/k3s/agent/etc/containerd && cd /var/lib/rancher/k3s/agent/etc/containerd &&
    printf "%s\n" "version = 3" "[plugins.\"io.containerd.cri.v1.runtime\"]" "  restrict_oom_score_adj = true" | sudo tee test-host-oom.toml >/dev/null &&
    printf "%s\n" "imports = [\"/var/lib/rancher/k3s/agent/etc/containerd/test-host-oom.toml\"]" "{{ template \"base\" . }}" | sudo tee config-v3.toml.tmpl >/dev/null'
}
for entry in "${HOSTS[@]}"; do test_host_quirks "${entry%%=*}"; done

# The air-gap path an operator without internet uses: the binary and images from a local folder.
cat >"$RUN/airgap.yml" <<EOF
k3s_binary_airgap_path: $K3S_DIR/k3s
k3s_binary_airgap_checksum: $(awk '$2 == "k3s" { print $1 }' "$K3S_DIR/sha256sum")
k3s_binary_airgap_images_dir: $K3S_DIR/images
k3s_master_kubeconfig_path: $RUN/kubeconfig
EOF

# Ansible trusts exactly the host keys e2e/hosts.sh made for this run, never ~/.ssh/known_hosts: every run
# makes new keys for the same addresses.
export ANSIBLE_SSH_COMMON_ARGS="-o UserKnownHostsFile=$RUN/known_hosts"

# make_logged LOG TARGET [ARGS...]: a make target on the e2e inventory, without a terminal, output in LOG.
make_logged() {
  local log="$1"
  shift
  make --no-print-directory "$@" INVENTORY="$INVENTORY" >"$log" 2>&1 </dev/null
}
# reported LOG TARGET [ARGS...]: make_logged, then its exit code, duration and play recap on the console.
reported() {
  local t0=$SECONDS rc=0
  make_logged "$@" || rc=$?
  echo "make $2: exit $rc in $((SECONDS - t0))s (log $1)"
  sed -n '/PLAY RECAP/,$p' "$1"
  return "$rc"
}
provision() { reported "$1" provision ANSIBLE_ARGS="-e @$RUN/airgap.yml"; } # provision LOG
recap_unchanged() { # every host: changed=0 failed=0 unreachable=0
  awk '/PLAY RECAP/ { r = 1; next } r && /ok=/ { n++; if ($0 !~ /changed=0 / || $0 !~ /unreachable=0 / || $0 !~ /failed=0 /) bad++ }
       END { exit !(n > 0 && bad == 0) }' "$1"
}

step "make provision (first run)"
t0=$SECONDS
provision "$RUN/provision-1.log" || { tail -40 "$RUN/provision-1.log"; die "the first provision failed"; }
FIRST_PROVISION_SECONDS=$((SECONDS - t0))
step "make provision again: must change nothing"
t0=$SECONDS
provision "$RUN/provision-2.log" || true
REPROVISION_SECONDS=$((SECONDS - t0))
check "second provision reports changed=0 on every host" recap_unchanged "$RUN/provision-2.log"
TIMINGS="first provision ${FIRST_PROVISION_SECONDS}s, second (idempotent) provision ${REPROVISION_SECONDS}s"
finish() {
  echo "timings: $TIMINGS"
  step "done in $((SECONDS - START))s"
  echo "e2e: $passed passed, $failed failed"
  [ "$failed" -eq 0 ]
}
if [ "${E2E_STOP_AFTER:-}" = provision ]; then finish; exit; fi

step "the hosts"
for entry in "${HOSTS[@]}"; do
  host="${entry%%=*}"
  service=k3s-agent
  [[ "$host" == *master* ]] && service=k3s
  check "$host: hostname is its inventory name" test "$(on "$host" hostname)" = "$host"
  check "$host: timezone Europe/Warsaw" test "$(on "$host" timedatectl show -p Timezone --value)" = Europe/Warsaw
  check "$host: packages vim, htop, curl installed" on "$host" dpkg-query -W vim htop curl
  check "$host: /etc/hosts names the master and the node itself" on "$host" "grep -q '\\b$MASTER\\b' /etc/hosts && grep -q '\\b$host\\b' /etc/hosts"
  check "$host: no active swap, none in fstab" on "$host" '[ -z "$(swapon --noheadings)" ] && ! grep -Eq "^[^#].*\bswap\b" /etc/fstab'
  check "$host: net.ipv4.ip_forward = 1" test "$(on "$host" cat /proc/sys/net/ipv4/ip_forward)" = 1
  check "$host: bridge-nf-call-iptables = 1" test "$(on "$host" cat /proc/sys/net/bridge/bridge-nf-call-iptables)" = 1
  check "$host: K3s binary is the built one (sha256)" test "$(on "$host" sha256sum /usr/local/bin/k3s | cut -d' ' -f1)" = "$(sha256sum "$K3S_DIR/k3s" | cut -d' ' -f1)"
  check "$host: /etc/rancher/k3s/config.yaml is 0600 root" test "$(on "$host" sudo stat -c %a:%U /etc/rancher/k3s/config.yaml)" = 600:root
  check "$host: config.yaml has node-ip ${entry#*=}" on "$host" sudo grep -q "${entry#*=}" /etc/rancher/k3s/config.yaml
  check "$host: $service enabled and active" on "$host" systemctl is-enabled --quiet "$service" '&&' systemctl is-active --quiet "$service"
done

step "the cluster, through $RUN/kubeconfig"
check "kubeconfig is 0600 and points at https://$MASTER_IP:6443" \
  bash -c "[ \"\$(stat -c %a '$RUN/kubeconfig')\" = 600 ] && grep -q 'server: https://$MASTER_IP:6443' '$RUN/kubeconfig'"
check "API /readyz answers ok" bash -c "kubectl get --raw /readyz | grep -qx ok"
all_ready() { [ "$(kubectl get nodes --no-headers 2>/dev/null | awk '$2 == "Ready"' | wc -l)" -eq "${#HOSTS[@]}" ]; }
check "${#HOSTS[@]}/${#HOSTS[@]} nodes Ready" retry 60 5 all_ready
kubectl get nodes -o wide || true

check "k3s etcd-snapshot save writes a snapshot" \
  on "$MASTER" 'sudo k3s etcd-snapshot save --name e2e >/dev/null 2>&1 && sudo ls /var/lib/rancher/k3s/server/db/snapshots/ | grep -q "^e2e-"'

kubectl apply -f - >/dev/null <<EOF
apiVersion: apps/v1
kind: Deployment
metadata: { name: echo, namespace: default, labels: { app.kubernetes.io/name: echo } }
spec:
  replicas: 1
  selector: { matchLabels: { app.kubernetes.io/name: echo } }
  template:
    metadata: { labels: { app.kubernetes.io/name: echo } }
    spec:
      affinity:
        nodeAffinity:
          requiredDuringSchedulingIgnoredDuringExecution:
            nodeSelectorTerms: [{ matchExpressions: [{ key: node-role.kubernetes.io/control-plane, operator: DoesNotExist }] }]
      containers:
        - name: echo
          image: $(sed -n 's/^ECHO_IMAGE=//p' "$K3S_DIR/build-info.env")
          imagePullPolicy: Never
          ports: [{ containerPort: 8080 }]
---
apiVersion: v1
kind: Service
metadata: { name: echo, namespace: default }
spec:
  type: NodePort
  selector: { app.kubernetes.io/name: echo }
  ports: [{ port: 80, targetPort: 8080, nodePort: $ECHO_PORT }]
EOF
check "echo pod (locally built image) rolls out on a worker" kubectl rollout status deployment/echo --timeout=180s
kubectl get pods -o wide || true
WORKER_IP="${HOSTS[1]#*=}"
check "NodePort $ECHO_PORT answers from the runner ($WORKER_IP)" retry 30 2 curl -fsS --max-time 3 "http://$WORKER_IP:$ECHO_PORT/e2e"

# Kept for the log check at the end (make reset removes it from the hosts).
K3S_TOKEN="$(on "$MASTER" sudo cat /var/lib/rancher/k3s/server/token)"

step "make deploy-apps: the generated manifests on the real API server"
MANIFESTS="$RUN/manifests"
# No waiting for rollouts: the apps' images cannot be pulled here (no registry); see the checks below.
APPS_ARGS="-e k3s_apps_manifests_dir=$MANIFESTS -e k3s_apps_kubeconfig=$RUN/kubeconfig -e k3s_apps_wait=false"
deploy_apps() { reported "$1" deploy-apps ANSIBLE_ARGS="$APPS_ARGS"; } # deploy_apps LOG
# Server-side dry run first: the namespaces, then (once they exist: objects in a missing namespace cannot be
# dry-run) every other manifest. The namespaces are then created for real by kubectl, the rest by the playbook.
check "server-side dry run accepts 00-namespaces.yaml" kubectl apply --dry-run=server -f "$MANIFESTS/00-namespaces.yaml"
kubectl apply -f "$MANIFESTS/00-namespaces.yaml" >/dev/null || true
for manifest in "$MANIFESTS"/[1-9]*.yaml; do
  check "server-side dry run accepts $(basename "$manifest")" kubectl apply --dry-run=server -f "$manifest"
done
deploy_apps "$RUN/deploy-apps-1.log" || tail -30 "$RUN/deploy-apps-1.log"
check "make deploy-apps succeeds" grep -Eq '^localhost +: ok=[0-9]+ +changed=[1-9][0-9]* .*failed=0' "$RUN/deploy-apps-1.log"
check "it prints the design document's URLs" grep -q "Whoami: http://$MASTER_IP:30081/" "$RUN/deploy-apps-1.log"
deploy_apps "$RUN/deploy-apps-2.log" || true
check "second make deploy-apps reports changed=0" recap_unchanged "$RUN/deploy-apps-2.log"
check "every object of manifests/ exists in the cluster" kubectl get -f "$MANIFESTS" -o name
node_ports() { kubectl get services -A -l app.kubernetes.io/managed-by=k3s-proxmox -o jsonpath='{range .items[*].spec.ports[*]}{.nodePort}{"\n"}{end}' | sort | paste -sd' '; }
check "NodePorts 30080 30081 30082 30090 30443 30880 are taken by the apps" test "$(node_ports)" = "30080 30081 30082 30090 30443 30880"
check "traefik is the default IngressClass" \
  test "$(kubectl get ingressclass traefik -o jsonpath='{.metadata.annotations.ingressclass\.kubernetes\.io/is-default-class}')" = true
scheduled() { # scheduled NAMESPACE INSTANCE COUNT: at least COUNT of the app's pods are bound to a node
  [ "$(kubectl get pods -n "$1" -l "app.kubernetes.io/instance=$2" -o jsonpath='{range .items[*]}{.spec.nodeName}{"\n"}{end}' | grep -c .)" -ge "$3" ]
}
check "Traefik's pod is scheduled" retry 30 2 scheduled kube-system traefik 1
check "Headlamp's pod is scheduled" retry 30 2 scheduled monitoring headlamp 1
check "Whoami's 2 pods are scheduled" retry 30 2 scheduled apps whoami 2
selected_node() { kubectl get pvc -n monitoring uptime-kuma-data -o jsonpath='{.metadata.annotations.volume\.kubernetes\.io/selected-node}' | grep -q .; }
check "Uptime Kuma: the scheduler picked a node for its local-path volume" retry 30 2 selected_node
echo "NOTE: the apps' images (Traefik, Headlamp, Whoami, Uptime Kuma) and K3s's local-path provisioner image come"
echo "      from container registries this machine cannot reach, so their pods stay in ErrImagePull/ImagePullBackOff"
echo "      and Uptime Kuma's volume is never provisioned; Whoami's and Traefik's answers are not checked here."
kubectl get pods -A -l app.kubernetes.io/managed-by=k3s-proxmox -o wide \
  -o custom-columns='NAMESPACE:.metadata.namespace,POD:.metadata.name,NODE:.spec.nodeName,WAITING:.status.containerStatuses[0].state.waiting.reason' || true

step "make dashboard-token: a token that logs in as the dashboard's ServiceAccount"
# Captured, never printed: it must not reach a log.
DASHBOARD_TOKEN="$(make --no-print-directory -s dashboard-token INVENTORY="$INVENTORY" 2>&1 | grep -o 'eyJ[A-Za-z0-9._-]*' | head -1 || true)"
check "make dashboard-token prints a token" test -n "$DASHBOARD_TOKEN"
TOKEN_KUBECONFIG="$(mktemp)"
chmod 0600 "$TOKEN_KUBECONFIG"
cat >"$TOKEN_KUBECONFIG" <<EOF
apiVersion: v1
kind: Config
clusters: [{ name: e2e, cluster: { server: "https://$MASTER_IP:6443", certificate-authority-data: $(kubectl config view --raw -o jsonpath='{.clusters[0].cluster.certificate-authority-data}') } }]
users: [{ name: dashboard, user: { token: "$DASHBOARD_TOKEN" } }]
contexts: [{ name: e2e, context: { cluster: e2e, user: dashboard } }]
current-context: e2e
EOF
check "the token authenticates as system:serviceaccount:monitoring:headlamp-admin" \
  test "$(kubectl --kubeconfig "$TOKEN_KUBECONFIG" auth whoami -o jsonpath='{.status.userInfo.username}')" = system:serviceaccount:monitoring:headlamp-admin
check "and may read the cluster (kubectl get nodes)" kubectl --kubeconfig "$TOKEN_KUBECONFIG" get nodes
rm -f "$TOKEN_KUBECONFIG"

step "an app removed from terraform.tfvars is removed from the cluster"
configure "$WORKERS" "whoami_enabled = false"
check "synth moved Whoami's manifest to manifests/removed/" test -f "$MANIFESTS/removed/30-whoami.yaml" -a ! -e "$MANIFESTS/30-whoami.yaml"
deploy_apps "$RUN/deploy-apps-3.log" || tail -30 "$RUN/deploy-apps-3.log"
whoami_gone() { [ -z "$(kubectl get deployments,services,ingresses -n apps -l app.kubernetes.io/instance=whoami -o name)" ]; }
check "Whoami's Deployment, Service and Ingress are gone" whoami_gone
check "the other apps stay" kubectl get deployment -n kube-system traefik -o name
configure "$WORKERS"
deploy_apps "$RUN/deploy-apps-4.log" >/dev/null || tail -30 "$RUN/deploy-apps-4.log"
check "enabled again, Whoami is back" kubectl get deployment -n apps whoami -o name

# refused LOG PATTERN TARGET [ARGS...]: the target fails and its log says why.
refused() {
  local log="$1" pattern="$2"
  shift 2
  ! make_logged "$log" "$@" && grep -q -- "$pattern" "$log"
}

step "make backup, then make restore: an etcd snapshot round trip"
BACKUPS="$RUN/backups"
rm -rf "$BACKUPS"
RESTORE_VALUE="restored-$RANDOM$RANDOM"
kubectl delete configmap e2e-restore -n default --ignore-not-found >/dev/null
kubectl create configmap e2e-restore -n default --from-literal=value="$RESTORE_VALUE" >/dev/null
t0=$SECONDS
make_logged "$RUN/backup.log" backup BACKUP_DIR="$BACKUPS" || tail -30 "$RUN/backup.log"
BACKUP_SECONDS=$((SECONDS - t0))
SNAPSHOT="$(find "$BACKUPS" -name 'k3spve-*' -type f 2>/dev/null | head -1)"
check "make backup copies a snapshot to the runner (${BACKUP_SECONDS}s): $(basename "${SNAPSHOT:-none}")" test -s "$SNAPSHOT"
check "the copy is readable by its owner only" test "$(stat -c %a "$SNAPSHOT" 2>/dev/null)" = 600
kubectl delete configmap e2e-restore -n default >/dev/null
k3s_started_at() { on "$MASTER" systemctl show -p ActiveEnterTimestampMonotonic --value k3s; }
STARTED="$(k3s_started_at)"
cp "$SNAPSHOT" "$RUN/corrupt-snapshot"
printf 'XXXX' | dd of="$RUN/corrupt-snapshot" bs=1 seek=$(($(stat -c %s "$SNAPSHOT") / 2)) conv=notrunc status=none
check "a corrupt snapshot is refused" refused "$RUN/restore-corrupt.log" "is not a usable etcd snapshot: its SHA-256 does not match" \
  restore SNAPSHOT="$RUN/corrupt-snapshot" CONFIRM=yes
check "a missing snapshot is refused" refused "$RUN/restore-missing.log" "is not a usable etcd snapshot: it does not exist" \
  restore SNAPSHOT="$RUN/no-such-snapshot" CONFIRM=yes
check "without CONFIRM=yes (and no terminal) restore refuses" refused "$RUN/restore-unconfirmed.log" "Not confirmed, nothing was changed" \
  restore SNAPSHOT="$SNAPSHOT"
check "after the refusals K3s on the master was never restarted" test "$(k3s_started_at)" = "$STARTED"
check "... and the deleted ConfigMap is still gone" bash -c '! kubectl get configmap e2e-restore -n default >/dev/null 2>&1'
t0=$SECONDS
make_logged "$RUN/restore.log" restore SNAPSHOT="$SNAPSHOT" CONFIRM=yes || tail -30 "$RUN/restore.log"
RESTORE_SECONDS=$((SECONDS - t0))
check "make restore succeeds (${RESTORE_SECONDS}s)" grep -Eq "^$MASTER +: ok=[0-9]+ +changed=[1-9][0-9]* .*failed=0" "$RUN/restore.log"
check "the ConfigMap is back with its value" test "$(kubectl get configmap e2e-restore -n default -o jsonpath='{.data.value}')" = "$RESTORE_VALUE"
check "${#HOSTS[@]}/${#HOSTS[@]} nodes Ready after the restore" retry 60 5 all_ready
check "the echo Deployment is available again" kubectl rollout status deployment/echo --timeout=180s

step "scaling up: worker_count $WORKERS -> $((WORKERS + 1)); only the new node may change"
ECHO_POD="$(kubectl get pods -l app.kubernetes.io/name=echo -o jsonpath='{.items[0].metadata.uid} {.items[0].status.containerStatuses[0].restartCount}')"
configure "$((WORKERS + 1))"
mapfile -t HOSTS < <(inventory_hosts)
NEW_HOST="${HOSTS[${#HOSTS[@]} - 1]%%=*}"
bash e2e/hosts.sh up "${HOSTS[@]}"
test_host_quirks "$NEW_HOST"
t0=$SECONDS
provision "$RUN/provision-scale-up.log" || true
JOIN_SECONDS=$((SECONDS - t0))
only_new_changed() { # every existing host changed=0, the new one changed>0, no failure
  awk -v new="$NEW_HOST" '/PLAY RECAP/ { r = 1; next }
    r && /ok=/ { if ($0 !~ /failed=0 / || $0 !~ /unreachable=0 /) bad++
                 else if ($1 == new) { if ($0 ~ /changed=0 /) bad++; seen++ }
                 else if ($1 != "localhost" && $0 !~ /changed=0 /) bad++ }
    END { exit !(seen == 1 && bad == 0) }' "$1"
}
check "make provision changed only $NEW_HOST (${JOIN_SECONDS}s)" only_new_changed "$RUN/provision-scale-up.log"
check "${#HOSTS[@]}/${#HOSTS[@]} nodes Ready, $NEW_HOST among them" retry 60 5 all_ready
check "the echo pod kept running: same pod, no restart" \
  test "$(kubectl get pods -l app.kubernetes.io/name=echo -o jsonpath='{.items[0].metadata.uid} {.items[0].status.containerStatuses[0].restartCount}')" = "$ECHO_POD"

step "scaling down: worker_count back to $WORKERS; the node is drained and deleted before its host goes"
synthesize "$WORKERS" # group_vars now list the nodes to keep; the inventory still has $NEW_HOST, as before make apply
# Something to evict: the echo pod, moved onto the node that goes (preferred, so it may move away again).
kubectl patch deployment echo --type=merge -p "{\"spec\":{\"template\":{\"spec\":{\"affinity\":{\"nodeAffinity\":{\"preferredDuringSchedulingIgnoredDuringExecution\":
  [{\"weight\":100,\"preference\":{\"matchExpressions\":[{\"key\":\"kubernetes.io/hostname\",\"operator\":\"In\",\"values\":[\"$NEW_HOST\"]}]}}]}}}}}}" >/dev/null
kubectl rollout status deployment/echo --timeout=180s >/dev/null || true
echo_only_on() { test "$(kubectl get pods -l app.kubernetes.io/name=echo -o jsonpath='{.items[*].spec.nodeName}')" = "$1"; }
check "the echo pod runs on $NEW_HOST before the removal" retry 30 2 echo_only_on "$NEW_HOST"
check "without CONFIRM=yes (and no terminal) remove-nodes refuses" refused "$RUN/remove-unconfirmed.log" "Not confirmed" remove-nodes
make_logged "$RUN/remove-nodes.log" remove-nodes CONFIRM=yes || tail -30 "$RUN/remove-nodes.log"
check "make remove-nodes drained $NEW_HOST" grep -q "node/$NEW_HOST drained" "$RUN/remove-nodes.log"
check "... and deleted it from Kubernetes" bash -c '! kubectl get node "$1" >/dev/null 2>&1' _ "$NEW_HOST"
check "... while its host was still running (the VM is destroyed after)" bash -c 'bash e2e/hosts.sh status 2>&1 | grep -E "^$1 .* running"' _ "$NEW_HOST"
check "no pod is left bound to $NEW_HOST" test -z "$(kubectl get pods -A --field-selector "spec.nodeName=$NEW_HOST" -o name)"
check "the evicted echo pod runs again elsewhere" kubectl rollout status deployment/echo --timeout=180s
apply_inventory
mapfile -t HOSTS < <(inventory_hosts)
bash e2e/hosts.sh remove "$NEW_HOST"
check "the inventory lists ${#HOSTS[@]} hosts again" test "${#HOSTS[@]}" = $((MASTERS + WORKERS))
check "${#HOSTS[@]}/${#HOSTS[@]} nodes Ready" retry 60 5 all_ready
make_logged "$RUN/remove-nodes-2.log" remove-nodes CONFIRM=yes || true
check "remove-nodes with nothing to remove changes nothing" recap_unchanged "$RUN/remove-nodes-2.log"

step "make reset: K3s leaves every node, and make provision starts clean"
check "without CONFIRM=yes (and no terminal) reset refuses" refused "$RUN/reset-unconfirmed.log" "Not confirmed" reset
check "... and K3s still answers" bash -c "kubectl get --raw /readyz | grep -qx ok"
make_logged "$RUN/reset.log" reset CONFIRM=yes || tail -30 "$RUN/reset.log"
sed -n '/PLAY RECAP/,$p' "$RUN/reset.log"
# Not `! ... | grep -q`: with pipefail, ssh killed by SIGPIPE after an early match would read as "none".
# shellcheck disable=SC2143
no_k3s_process() { [ -z "$(on "$1" ps -eo comm= | grep -E '^(k3s|containerd)')" ]; }
for entry in "${HOSTS[@]}"; do
  host="${entry%%=*}"
  check "$host: no K3s or containerd process" no_k3s_process "$host"
  check "$host: no k3s or k3s-agent unit" on "$host" '! systemctl cat k3s k3s-agent >/dev/null 2>&1 && [ ! -e /etc/systemd/system/k3s.service ] && [ ! -e /etc/systemd/system/k3s-agent.service ]'
  check "$host: no K3s data, configuration or binary" on "$host" '[ ! -e /var/lib/rancher/k3s ] && [ ! -e /etc/rancher/k3s ] && [ ! -e /usr/local/bin/k3s ] && [ ! -e /var/lib/kubelet ]'
  check "$host: no cni0 or flannel.1 interface" on "$host" '! ip link show cni0 >/dev/null 2>&1 && ! ip link show flannel.1 >/dev/null 2>&1'
done
make_logged "$RUN/reset-2.log" reset CONFIRM=yes || true
check "a second make reset changes nothing" recap_unchanged "$RUN/reset-2.log"
for entry in "${HOSTS[@]}"; do test_host_quirks "${entry%%=*}"; done
provision "$RUN/provision-after-reset.log" || tail -30 "$RUN/provision-after-reset.log"
check "make provision after the reset: ${#HOSTS[@]}/${#HOSTS[@]} nodes Ready" retry 60 5 all_ready

step "secrets"
check "the K3s token appears in no log" bash -c '! grep -rqF -- "$1" "$2"/*.log' _ "$K3S_TOKEN" "$RUN"
check "the dashboard token appears in no log" bash -c '! grep -rqF -- "$1" "$2"/*.log' _ "$DASHBOARD_TOKEN" "$RUN"
unset K3S_TOKEN DASHBOARD_TOKEN

TIMINGS+=", backup ${BACKUP_SECONDS}s, restore ${RESTORE_SECONDS}s, worker join (make provision with a new worker) ${JOIN_SECONDS}s"
finish
