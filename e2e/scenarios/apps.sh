# shellcheck shell=bash
# Sourced by e2e/run.sh after e2e/lib.sh. Checks take local functions, and commands in single quotes on purpose:
# shellcheck disable=SC2016,SC2034,SC2329
# make deploy-apps on the real API server: the generated manifests accepted by a server-side dry run, applied,
# idempotent; Traefik's certificate from the cluster CA; the NodePorts and IngressClass; the dashboard's login
# token; an app removed from terraform.tfvars is removed from the cluster. The apps' images come from container
# registries this machine cannot reach (see the NOTE below), so their pods are scheduled but not run.

scenario_apps() {
  local manifests="$RUN/manifests" master_ip manifest
  ensure_cluster
  master_ip="${HOSTS[0]#*=}"
  make_logged "$RUN/synth-apps.log" synth || die "make synth failed (log $RUN/synth-apps.log)"
  # Server-side dry run first: the namespaces, then (once they exist: objects in a missing namespace cannot be
  # dry-run) every other manifest. The namespaces are then created for real by kubectl, the rest by the playbook.
  check "server-side dry run accepts 00-namespaces.yaml" kubectl apply --dry-run=server -f "$manifests/00-namespaces.yaml"
  kubectl apply -f "$manifests/00-namespaces.yaml" >/dev/null || true
  for manifest in "$manifests"/[1-9]*.yaml; do
    check "server-side dry run accepts $(basename "$manifest")" kubectl apply --dry-run=server -f "$manifest"
  done
  apps_deploy "$RUN/deploy-apps-1.log" || tail -30 "$RUN/deploy-apps-1.log"
  check "make deploy-apps succeeds" grep -Eq '^localhost +: ok=[0-9]+ +changed=[1-9][0-9]* .*failed=0' "$RUN/deploy-apps-1.log"
  check "it prints the design document's URLs" grep -q "Whoami: http://$master_ip:30081/" "$RUN/deploy-apps-1.log"
  issued() { kubectl get secret -n kube-system traefik-tls -o jsonpath='{.data.tls\.crt}' | base64 -d | openssl verify -CAfile "$RUN/cluster-ca.crt"; }
  check "it issued Traefik's certificate from the cluster CA, whose certificate it wrote beside the kubeconfig" issued
  apps_deploy "$RUN/deploy-apps-2.log" || true
  check "second make deploy-apps reports changed=0" recap_unchanged "$RUN/deploy-apps-2.log"
  check "every object of manifests/ exists in the cluster" kubectl get -f "$manifests" -o name
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
  local token
  token="$(dashboard_token dashboard-token)"
  check "make dashboard-token prints a token" test -n "$token"
  check "the token authenticates as system:serviceaccount:monitoring:headlamp-admin" \
    test "$(as_token "$token" auth whoami -o jsonpath='{.status.userInfo.username}')" = system:serviceaccount:monitoring:headlamp-admin
  check "and may read the cluster (kubectl get nodes)" as_token "$token" get nodes
  check "the dashboard token appears in no log" secrets_in_logs "$token"

  step "an app removed from terraform.tfvars is removed from the cluster"
  configure "whoami_enabled = false"
  make_logged "$RUN/synth-apps-2.log" synth || die "make synth failed"
  check "synth moved Whoami's manifest to manifests/removed/" test -f "$manifests/removed/30-whoami.yaml" -a ! -e "$manifests/30-whoami.yaml"
  apps_deploy "$RUN/deploy-apps-3.log" || tail -30 "$RUN/deploy-apps-3.log"
  whoami_gone() { [ -z "$(kubectl get deployments,services,ingresses -n apps -l app.kubernetes.io/instance=whoami -o name)" ]; }
  check "Whoami's Deployment, Service and Ingress are gone" whoami_gone
  check "the other apps stay" kubectl get deployment -n kube-system traefik -o name
  configure
  make_logged "$RUN/synth-apps-3.log" synth || die "make synth failed"
  apps_deploy "$RUN/deploy-apps-4.log" >/dev/null || tail -30 "$RUN/deploy-apps-4.log"
  check "enabled again, Whoami is back" kubectl get deployment -n apps whoami -o name
}
