# shellcheck shell=bash
# Sourced by e2e/run.sh after e2e/lib.sh. Checks take local functions, and commands in single quotes on purpose:
# shellcheck disable=SC2016,SC2034,SC2329
# security_profile = "hardened" on the running cluster: make provision switches it, saying what it restarts; then
# from outside: secrets encrypted in etcd (a Secret's value absent from an etcd snapshot's raw data, the
# encryption prefix present), Pod Security `restricted` (a privileged pod refused, a compliant one from the local
# image running), the audit log recording a request, protect-kernel-defaults in force. The cluster is reset at the
# end (a K3s whose secrets are encrypted cannot simply go back), so a later scenario provisions a fresh one.

scenario_hardened() {
  local t0 master value snapshot
  ensure_cluster
  master="${HOSTS[0]%%=*}"
  configure 'security_profile = "hardened"'
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

  kubectl create namespace e2e-psa >/dev/null 2>&1 || true
  privileged_refused() {
    local out
    out="$(kubectl apply -n e2e-psa -f - 2>&1 <<POD
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
  check "Pod Security restricted: a privileged pod is refused in a namespace that sets no level" privileged_refused
  kubectl apply -n e2e-psa -f - >/dev/null <<POD
apiVersion: v1
kind: Pod
metadata: { name: compliant }
spec:
  securityContext: { runAsNonRoot: true, runAsUser: 65534, seccompProfile: { type: RuntimeDefault } }
  containers:
    - name: echo
      image: $ECHO_IMAGE
      imagePullPolicy: Never
      securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: [ALL] } }
POD
  check "... and a compliant one from the local test image runs" kubectl wait -n e2e-psa pod/compliant --for=condition=Ready --timeout=120s
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

  make_logged "$RUN/reset-hardened.log" reset CONFIRM=yes || tail -20 "$RUN/reset-hardened.log"
  k3s_gone() { ! on "$master" test -e /usr/local/bin/k3s </dev/null; }
  check "make reset takes K3s off again, for the scenarios after this one" k3s_gone
  configure
  make_logged "$RUN/synth-homelab.log" synth || die "make synth failed"
  rm -f "$RUN/kubeconfig"
}
