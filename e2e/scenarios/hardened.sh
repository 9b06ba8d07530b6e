# shellcheck shell=bash
# Sourced by e2e/run.sh after e2e/lib.sh. Checks take local functions, and commands in single quotes on purpose:
# shellcheck disable=SC2016,SC2034,SC2329
# security_profile = "hardened" on the running cluster: make provision refuses an admin_cidrs that would shut the
# runner out, then switches it, saying what it restarts; then from outside: the host firewall's port matrix (probed
# from the runner inside admin_cidrs, from a second runner address outside it, and from node to node), the pod and
# service networks through it (a NodePort and a ClusterIP to a pod on another node), secrets encrypted in
# etcd (a Secret's value absent from an etcd snapshot's raw data, the encryption prefix present), Pod Security
# `restricted` (a privileged pod refused, a compliant one from the local image running), the audit log recording a
# request, protect-kernel-defaults in force; the apps' namespaces enforcing restricted (every app's pod admitted, a
# privileged one refused), their NetworkPolicies (apps and monitoring apart, the API only for Headlamp, the apps
# reached by Traefik only), HTTPS through Traefik built from its Go module (the cluster CA's certificate verified,
# plain HTTP redirected or unserved, no NodePort of the apps' own), and the dashboard's tokens (read-only, and the
# separate cluster-admin one). The cluster is
# reset at the end (a K3s whose secrets are encrypted cannot simply go back), so a later scenario provisions a fresh
# one; the next homelab provision takes the firewall off.

# The runner's second address on the lab bridge: outside admin_cidrs (which is the runner's first, $GATEWAY/32).
OUTSIDER="$PREFIX.250"
# The NodePort of this scenario's own echo pod (ECHO_PORT may be taken by the echo Deployment of another scenario).
COMPLIANT_PORT=30998
# probe SOURCE DEST PORT (python3, here or on a node): "open" (connected), "refused" (let through, nothing listens)
# or "filtered" (dropped: no answer in 2 s). An empty SOURCE lets the system pick.
PROBE='import socket, sys
s = socket.socket()
s.settimeout(2)
if sys.argv[1]:
    s.bind((sys.argv[1], 0))
try:
    s.connect((sys.argv[2], int(sys.argv[3])))
    print("open")
except ConnectionRefusedError:
    print("refused")
except OSError:
    print("filtered")'
addr_of() { local entry; for entry in "${HOSTS[@]}"; do [ "${entry%%=*}" != "$1" ] || { echo "${entry#*=}"; return; }; done; echo "$1"; }

# port_matrix: every row "FROM TO PORT EXPECTED" probed and printed as a table; fails when a row differs.
# FROM is runner (from $GATEWAY, inside admin_cidrs), outsider (from $OUTSIDER) or a node; TO a node or an address.
port_matrix() {
  local from to port want got bad=0
  printf '%-24s %-24s %-6s %-9s %s\n' FROM TO PORT EXPECTED GOT
  while read -r from to port want; do
    [ -n "$from" ] || continue
    case "$from" in
      runner) got="$(python3 -c "$PROBE" "$GATEWAY" "$(addr_of "$to")" "$port")" ;;
      outsider) got="$(python3 -c "$PROBE" "$OUTSIDER" "$(addr_of "$to")" "$port")" ;;
      *) got="$(on "$from" python3 - "''" "$(addr_of "$to")" "$port" <<<"$PROBE")" ;;
    esac
    [ "$got" = "$want" ] || bad=$((bad + 1))
    printf '%-24s %-24s %-6s %-9s %s%s\n' "$from" "$to" "$port" "$want" "$got" "$([ "$got" = "$want" ] || echo '   <-- differs')"
  done
  [ "$bad" -eq 0 ]
}

scenario_hardened() {
  local t0 master value snapshot traefik_dir traefik_image
  # Traefik's image, built from its Go module (scripts/build-traefik.sh), in the background since the run began.
  build_result traefik traefik_dir
  traefik_image="$(sed -n 's/^TRAEFIK_IMAGE=//p' "$traefik_dir/build-info.env")"
  ensure_cluster
  master="${HOSTS[0]%%=*}"
  # An admin_cidrs without the runner: the firewall would shut make provision out, so it is refused on every node
  # before the firewall changes.
  configure 'security_profile = "hardened"' "admin_cidrs = [\"$OUTSIDER/32\"]"
  make_logged "$RUN/synth-lockout.log" synth || die "make synth failed (log $RUN/synth-lockout.log)"
  local rc=0
  provision "$RUN/provision-lockout.log" || rc=$?
  check "make provision refuses an admin_cidrs that leaves out the machine it runs on (exit $rc)" test "$rc" -ne 0
  check "... naming the node, the address and the networks" log_says "$RUN/provision-lockout.log" "$master sees this machine (where make provision runs) at $GATEWAY, which is in none of admin_cidrs ($OUTSIDER/32)"
  no_table() { local host; for host in $(servers) k3s-worker-1; do ! on "$host" 'sudo nft list table inet k3s_proxmox' </dev/null >/dev/null 2>&1 || return 1; done; }
  check "... and loads no firewall anywhere" no_table

  # Whoami's and Headlamp's images come from container registries this machine cannot reach: the local echo image
  # stands in for both, so that their NetworkPolicies and routes are tried on running pods. Traefik is the real
  # one, built from its Go module.
  local hardened_lines=('security_profile = "hardened"' "admin_cidrs = [\"$GATEWAY/32\"]" "whoami_image = \"$ECHO_IMAGE\""
    "dashboard_image = \"$ECHO_IMAGE\"" "traefik_image = \"$traefik_image\"")
  configure "${hardened_lines[@]}"
  make_logged "$RUN/synth-hardened.log" synth || die "make synth failed (log $RUN/synth-hardened.log)"
  t0=$SECONDS
  provision "$RUN/provision-hardened.log" || { tail -40 "$RUN/provision-hardened.log"; die "make provision to the hardened profile failed"; }
  timing "make provision, homelab -> hardened" "$((SECONDS - t0))s"
  check "make provision says what it restarts, and why" \
    log_says "$RUN/provision-hardened.log" "k3s on $master restarts now: /etc/rancher/k3s/config.yaml, /etc/rancher/k3s/pod-security.yaml, /etc/rancher/k3s/audit-policy.yaml changed."
  check "... and on the agents" log_says "$RUN/provision-hardened.log" "k3s-agent on k3s-worker-1 restarts now: /etc/rancher/k3s/config.yaml changed."
  retry 60 2 all_ready
  check "every node is Ready again ($(kubectl get nodes --no-headers 2>/dev/null | awk '$2 == "Ready"' | wc -l)/${#HOSTS[@]})" all_ready
  provision "$RUN/provision-hardened-2.log" || true
  check "a second make provision changes nothing" recap_unchanged "$RUN/provision-hardened-2.log"

  step "hardened: the host firewall"
  # A compliant echo pod on an agent behind a NodePort: reached through the first server, it crosses Flannel.
  kubectl create namespace e2e-psa >/dev/null 2>&1 || true
  kubectl apply -n e2e-psa -f - >/dev/null <<POD
apiVersion: v1
kind: Pod
metadata: { name: compliant, labels: { app.kubernetes.io/name: compliant } }
spec:
  affinity:
    nodeAffinity:
      requiredDuringSchedulingIgnoredDuringExecution:
        nodeSelectorTerms: [{ matchExpressions: [{ key: node-role.kubernetes.io/control-plane, operator: DoesNotExist }] }]
  securityContext: { runAsNonRoot: true, runAsUser: 65534, seccompProfile: { type: RuntimeDefault } }
  containers:
    - name: echo
      image: $ECHO_IMAGE
      imagePullPolicy: Never
      ports: [{ containerPort: 8080 }]
      securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: [ALL] } }
---
apiVersion: v1
kind: Service
metadata: { name: compliant }
spec:
  type: NodePort
  selector: { app.kubernetes.io/name: compliant }
  ports: [{ port: 80, targetPort: 8080, nodePort: $COMPLIANT_PORT }]
POD
  check "a compliant pod from the local test image runs in a namespace that sets no level (Pod Security restricted)" \
    kubectl wait -n e2e-psa pod/compliant --for=condition=Ready --timeout=120s
  firewall_enabled() { local h; for h in "${HOSTS[@]%%=*}"; do on "$h" systemctl is-enabled --quiet k3s-firewall.service </dev/null || return 1; done; }
  check "k3s-firewall.service is enabled on every node (it loads the table at boot, before K3s)" firewall_enabled
  ip addr add "$OUTSIDER/32" dev "$LAB_BRIDGE" 2>/dev/null || true
  local rows="" worker1=k3s-worker-1 worker2=k3s-worker-2
  rows+="runner $master 22 open
runner $master 6443 open
runner $master $COMPLIANT_PORT open
runner $master 10250 filtered
runner $master 2379 filtered
runner $master 2380 filtered
runner $master 8080 filtered
runner $worker1 22 open
runner $worker1 $COMPLIANT_PORT open
runner $worker1 10250 filtered
runner $worker1 6443 filtered
outsider $master 22 filtered
outsider $master 6443 filtered
outsider $master $COMPLIANT_PORT filtered
outsider $worker1 22 filtered
outsider $worker1 $COMPLIANT_PORT filtered
$worker1 $master 6443 open
$worker1 $master 10250 open
$worker1 $master 2379 filtered
$worker1 $master 22 filtered
$worker1 $worker2 10250 open
$worker1 $worker2 22 filtered
$worker1 $worker2 $COMPLIANT_PORT filtered
"
  if [ "$MASTERS" -gt 1 ]; then
    rows+="runner $API_VIP 6443 open
outsider $API_VIP 6443 filtered
k3s-master-2 $master 2379 open
k3s-master-2 $master 2380 open
k3s-master-2 $master 6443 open
"
  fi
  local matrix matrix_rc=0
  matrix="$(port_matrix <<<"$rows")" || matrix_rc=$?
  # shellcheck disable=SC2001 # indents every line
  sed 's/^/        /' <<<"$matrix"
  check "the port matrix above: every allowed port open, every other one dropped" test "$matrix_rc" -eq 0
  ip addr del "$OUTSIDER/32" dev "$LAB_BRIDGE" 2>/dev/null || true
  check "NodePort $COMPLIANT_PORT through the first server reaches the pod on an agent (kube-proxy, Flannel's VXLAN)" \
    retry 10 2 curl -fsS --max-time 3 -o /dev/null "http://$(addr_of "$master"):$COMPLIANT_PORT/firewall"
  # CoreDNS's image comes from a container registry this machine cannot reach, so DNS itself cannot answer here;
  # the service network is checked through the echo Service's ClusterIP instead, from a node with no echo pod.
  echo "NOTE: CoreDNS's image cannot be pulled here (no registry): the service network is checked with a ClusterIP, not a DNS name."
  through_cluster_ip() {
    local ip
    ip="$(kubectl get service -n e2e-psa compliant -o jsonpath='{.spec.clusterIP}')"
    on k3s-master-2 python3 -c "'import urllib.request; print(urllib.request.urlopen(\"http://$ip/firewall\", timeout=3).read().decode())'" </dev/null \
      | grep -x "hostname: compliant"
  }
  check "a server reaches the pod on an agent through its Service's ClusterIP (kube-proxy, Flannel's VXLAN)" retry 5 2 through_cluster_ip

  protected() { local h; for h in "$master" k3s-worker-1; do on "$h" 'sudo grep -qx "protect-kernel-defaults: true" /etc/rancher/k3s/config.yaml' </dev/null || return 1; done; }
  check "the kubelet runs with protect-kernel-defaults, on a server and an agent" protected
  check "k3s secrets-encrypt status: Enabled" on "$master" 'sudo k3s secrets-encrypt status | grep -q "Encryption Status: Enabled"'

  if [ "$MASTERS" -gt 1 ]; then
    # Each server restarted with the flag; the ones already in the cluster must have taken the first one's key.
    one_key() {
      local host sums=()
      for host in $(servers); do
        sums+=("$(on "$host" 'sudo sha256sum /var/lib/rancher/k3s/server/cred/encryption-config.json' </dev/null | cut -d' ' -f1)")
      done
      printf '%s\n' "${sums[@]}"
      [ -n "${sums[0]}" ] && [ "$(printf '%s\n' "${sums[@]}" | sort -u | wc -l)" -eq 1 ]
    }
    check "all $MASTERS servers encrypt with the same key (the same encryption-config.json hash)" one_key
    check "... and K3s says so: Server Encryption Hashes: All hashes match" \
      on "$master" 'sudo k3s secrets-encrypt status | grep -q "Server Encryption Hashes: All hashes match"'
  fi

  value="e2e-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
  kubectl create secret generic e2e-hardened -n default --from-literal=value="$value" >/dev/null
  on "$master" "sudo k3s etcd-snapshot save --name e2e-hardened >/dev/null 2>&1" </dev/null
  snapshot="$(on "$master" 'sudo ls -t /var/lib/rancher/k3s/server/db/snapshots/ | grep "^e2e-hardened-" | head -1' </dev/null)"
  check "a Secret's value is not in etcd's raw data (snapshot $snapshot)" \
    on "$master" "! sudo grep -qaF '$value' /var/lib/rancher/k3s/server/db/snapshots/$snapshot"
  check "... where the Secret is stored with the encryption prefix k8s:enc:" \
    on "$master" "sudo grep -qaF 'k8s:enc:' /var/lib/rancher/k3s/server/db/snapshots/$snapshot"
  check "... and the API still gives its value back" test "$(kubectl get secret e2e-hardened -n default -o jsonpath='{.data.value}' | base64 -d)" = "$value"

  privileged_refused() { # privileged_refused NAMESPACE
    local out
    out="$(kubectl apply -n "$1" -f - 2>&1 <<POD
apiVersion: v1
kind: Pod
metadata: { name: privileged }
spec:
  containers: [{ name: c, image: "$ECHO_IMAGE", imagePullPolicy: Never, securityContext: { privileged: true } }]
POD
)" && { echo "admitted: $out"; return 1; }
    echo "$out"
    grep -q 'violates PodSecurity "restricted:latest"' <<<"$out"
  }
  check "Pod Security restricted: a privileged pod is refused in a namespace that sets no level" privileged_refused e2e-psa
  # With several servers behind the VIP the request reached one of them: its audit log has the entry, and no
  # server's log has the value.
  audited() {
    local host log=/var/lib/rancher/k3s/server/logs/audit.log recorded=
    for host in $(servers); do
      if on "$host" "sudo grep -F '\"resource\":\"secrets\"' $log | grep -F '\"name\":\"e2e-hardened\"' | grep -qF '\"verb\":\"create\"'" </dev/null; then
        echo "recorded on $host"; recorded=1
      fi
      if on "$host" "sudo grep -qaF '$value' $log" </dev/null; then echo "the value is in $host's audit log"; return 1; fi
    done
    [ -n "$recorded" ]
  }
  check "the audit log records the Secret's creation (its metadata, not its value)" audited

  step "hardened: the apps under Pod Security restricted, the dashboard's read-only token"
  echo "NOTE: Traefik's image is built here from its Go module ($traefik_image, $(du -h "$traefik_dir/traefik.tar" | cut -f1)), imported on every node."
  imported() { local host; for host in "${HOSTS[@]%%=*}"; do on "$host" 'sudo k3s ctr -n k8s.io images import - >/dev/null' <"$traefik_dir/traefik.tar" || return 1; done; }
  check "Traefik's image imported into containerd on every node" imported
  apps_deploy "$RUN/deploy-apps-hardened.log" || tail -30 "$RUN/deploy-apps-hardened.log"
  check "make deploy-apps succeeds" grep -Eq '^localhost +: ok=[0-9]+ +changed=[1-9][0-9]* .*failed=0' "$RUN/deploy-apps-hardened.log"
  enforced() { kubectl get namespace apps monitoring -o jsonpath='{range .items[*]}{.metadata.name}={.metadata.labels.pod-security\.kubernetes\.io/enforce}{"\n"}{end}'; }
  check "the apps' namespaces say what they enforce: $(enforced | paste -sd' ')" test "$(enforced | paste -sd' ')" = "apps=restricted monitoring=restricted"
  check "a privileged pod is refused in apps" privileged_refused apps
  # A pod that violated the level would never be made (its ReplicaSet reports FailedCreate): made means admitted.
  admitted() { [ "$(app_pods apps whoami)" -ge 2 ] && [ "$(app_pods monitoring headlamp)" -ge 1 ] && [ "$(app_pods monitoring uptime-kuma)" -ge 1 ]; }
  check "every app's pod in apps and monitoring is admitted under restricted (Whoami 2, Headlamp, Uptime Kuma)" retry 30 2 admitted
  step "hardened: NetworkPolicies (the local echo image standing in for Whoami and Headlamp)"
  echo "NOTE: Whoami and Headlamp run the local echo image here ($ECHO_IMAGE): their own images come from registries this machine cannot reach."
  # Headlamp listens on 4466; the echo image does where PORT says.
  kubectl set env -n monitoring deployment/headlamp PORT=4466 >/dev/null
  check "Whoami's and Headlamp's stand-ins roll out" \
    bash -c 'kubectl rollout status -n apps deployment/whoami --timeout=120s && kubectl rollout status -n monitoring deployment/headlamp --timeout=120s'

  pod_ip() { # a running pod's address, not one that is going away after the rollout
    kubectl get pods -n "$1" -l "app.kubernetes.io/instance=$2" -o json \
      | jq -r '[.items[] | select(.metadata.deletionTimestamp == null and .status.phase == "Running")][0].status.podIP'
  }
  # fetch NAMESPACE WORKLOAD URL: the stand-in's client (echo get) run in the workload's pod: "200 OK"-like, or
  # "no answer: ..." (exit 1) when the packets went nowhere.
  fetch() { kubectl exec -n "$1" "$2" -- /echo get "$3"; }
  blocked() { local out; out="$(fetch "$@" 2>&1)" && { echo "answered: $out"; return 1; }; echo "$out"; grep -q "^no answer:" <<<"$out"; }
  local whoami_ip headlamp_ip
  whoami_ip="$(pod_ip apps whoami)"
  headlamp_ip="$(pod_ip monitoring headlamp)"
  check "a pod in apps (Whoami) cannot reach a pod in monitoring (Headlamp, $headlamp_ip)" blocked apps deployment/whoami "http://$headlamp_ip:4466/np"
  check "... nor the Kubernetes API (it has no need to)" blocked apps deployment/whoami "https://10.43.0.1/version"
  check "a pod in monitoring (Headlamp) reaches the Kubernetes API, as its policy allows" fetch monitoring deployment/headlamp "https://10.43.0.1/version"
  check "... but not a pod in apps (Whoami, $whoami_ip)" blocked monitoring deployment/headlamp "http://$whoami_ip:8080/np"
  check "a pod of another namespace cannot reach Whoami's port either (only Traefik may)" blocked e2e-psa pod/compliant "http://$whoami_ip:8080/np"

  step "hardened: the apps only through Traefik, over HTTPS with the cluster CA's certificate"
  local ca="$RUN/cluster-ca.crt" node_ip worker_ip
  node_ip="$(addr_of "$master")"
  worker_ip="$(addr_of k3s-worker-1)"
  check "make deploy-apps wrote the cluster CA's certificate beside the kubeconfig" openssl x509 -in "$ca" -noout -subject
  check "Traefik (built from its Go module) rolls out" kubectl rollout status -n kube-system deployment/traefik --timeout=180s
  # answers URL LINE: an HTTPS GET trusting the cluster CA only (curl --cacert trusts nothing else) whose answer
  # has a line starting with LINE (the echo image's "hostname: <pod>").
  answers() { local got; got="$(curl -fsS --max-time 5 --cacert "$ca" "$1" 2>&1)"; grep "^$2" <<<"$got" || { echo "${got:0:200}"; return 1; }; }
  check "https://$node_ip:30443/whoami reaches Whoami through Traefik, its certificate verified by the cluster CA" \
    retry 15 2 answers "https://$node_ip:30443/whoami" "hostname: whoami-"
  check "... on an agent's address too (the certificate names every node)" answers "https://$worker_ip:30443/whoami" "hostname: whoami-"
  check "https://$node_ip:30081/ (Whoami's port, now Traefik's HTTPS entry point)" answers "https://$node_ip:30081/" "hostname: whoami-"
  check "https://$node_ip:30090/ (the dashboard's, Headlamp's stand-in behind it)" answers "https://$node_ip:30090/" "hostname: headlamp-"
  check "the Traefik API on its HTTPS dashboard port reports the version built" \
    bash -c 'curl -fsS --max-time 5 --cacert "$1" "$2" | jq -e --arg v "$3" ".Version == \$v"' _ "$ca" "https://$node_ip:30880/api/version" "${traefik_image##*:}"
  redirect() { curl -sS --max-time 5 -o /dev/null -w '%{http_code} %{redirect_url}' "$1"; }
  check "plain HTTP redirects to HTTPS: $(redirect "http://$node_ip:30080/whoami")" \
    test "$(redirect "http://$node_ip:30080/whoami")" = "301 https://$node_ip:30443/whoami"
  plain_refused() { local got; got="$(curl -sS --max-time 5 "$1" 2>&1)"; echo "${got:0:100}"; ! grep -q "^hostname:" <<<"$got"; }
  check "plain HTTP to Whoami's port gets no app (a TLS entry point: no plain-HTTP route there)" plain_refused "http://$node_ip:30081/"
  own_node_ports() { kubectl get services -n apps -o jsonpath='{range .items[*]}{.spec.type}{"\n"}{end}'; kubectl get services -n monitoring -o jsonpath='{range .items[*]}{.spec.type}{"\n"}{end}'; }
  check "the apps' own Services have no NodePort: $(own_node_ports | sort | uniq -c | paste -sd' ')" test "$(own_node_ports | sort -u)" = ClusterIP
  apps_deploy "$RUN/deploy-apps-hardened-2.log" || tail -30 "$RUN/deploy-apps-hardened-2.log"
  check "a second make deploy-apps changes nothing (the certificate is kept)" recap_unchanged "$RUN/deploy-apps-hardened-2.log"
  local ca_key issued_key
  ca_key="$(kubectl get secret -n kube-system k3s-proxmox-ca -o jsonpath='{.data.tls\.key}' | base64 -d | sed -n 2p)"
  issued_key="$(kubectl get secret -n kube-system traefik-tls -o jsonpath='{.data.tls\.key}' | base64 -d | sed -n 2p)"

  # The operator's own certificate instead (tls_certificate_file, tls_key_file): Traefik rolls and presents it.
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=e2e-own \
    -addext "subjectAltName=IP:$node_ip,IP:$worker_ip" -keyout "$RUN/own.key" -out "$RUN/own.crt" 2>/dev/null
  configure "${hardened_lines[@]}" "tls_certificate_file = \"$RUN/own.crt\"" "tls_key_file = \"$RUN/own.key\""
  make_logged "$RUN/synth-own-cert.log" synth || die "make synth failed (log $RUN/synth-own-cert.log)"
  apps_deploy "$RUN/deploy-apps-own-cert.log" || tail -30 "$RUN/deploy-apps-own-cert.log"
  presents_own() { curl -fsS --max-time 5 --cacert "$RUN/own.crt" "https://$node_ip:30443/whoami" | grep "^hostname: whoami-"; }
  # The new certificate's hash rolled Traefik: once the old pod is gone, only the new certificate is presented.
  check "a new certificate rolls Traefik" bash -c 'sleep 2; kubectl rollout status -n kube-system deployment/traefik --timeout=180s'
  check "with tls_certificate_file and tls_key_file, Traefik presents the operator's certificate (verified with it alone)" retry 15 2 presents_own
  check "... and no longer the cluster CA's" bash -c '! curl -fsS --max-time 5 --cacert "$1" -o /dev/null "$2"' _ "$ca" "https://$node_ip:30443/whoami"
  check "no key (the CA's, the one it issued, the operator's) in a log" secrets_in_logs "$ca_key" "$issued_key" "$(sed -n 2p "$RUN/own.key")"

  local viewer admin
  viewer="$(dashboard_token dashboard-token)"
  check "make dashboard-token logs in as monitoring/headlamp-viewer" \
    test "$(as_token "$viewer" auth whoami -o jsonpath='{.status.userInfo.username}')" = system:serviceaccount:monitoring:headlamp-viewer
  check "... which may read the cluster (kubectl get pods -A)" as_token "$viewer" get pods -A -o name
  read_only() { for verb in "create deployments -n apps" "delete pods -n apps" "get secrets -n monitoring" "create clusterrolebindings"; do
    # shellcheck disable=SC2086 # the verb and its resource are separate words
    [ "$(as_token "$viewer" auth can-i $verb 2>/dev/null)" = no ] || { echo "can $verb"; return 1; }
  done; }
  check "... and change nothing, nor read a Secret" read_only
  admin="$(dashboard_token dashboard-admin-token)"
  check "make dashboard-admin-token logs in as monitoring/headlamp-admin, with every right" \
    test "$(as_token "$admin" auth can-i '*' '*' 2>/dev/null)" = yes
  check "neither token appears in a log" secrets_in_logs "$viewer" "$admin"

  make_logged "$RUN/reset-hardened.log" reset CONFIRM=yes || tail -20 "$RUN/reset-hardened.log"
  k3s_gone() { ! on "$master" test -e /usr/local/bin/k3s </dev/null; }
  check "make reset takes K3s off again, for the scenarios after this one" k3s_gone
  configure
  make_logged "$RUN/synth-homelab.log" synth || die "make synth failed"
  rm -f "$RUN/kubeconfig"
}
