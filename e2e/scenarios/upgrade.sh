# shellcheck shell=bash
# Sourced by e2e/run.sh after e2e/lib.sh. Checks take local functions, and commands in single quotes on purpose:
# shellcheck disable=SC2016,SC2034,SC2329
# make upgrade: from the e2e's base K3s build to the upgrade build (same commit, Kubernetes one patch later),
# through the release download from the mirror. Refused first, with nothing touched: a mirror whose binary does not
# match its sha256sum file, a downgrade, a skipped minor. Then the rolling upgrade, servers first, one node at a
# time, each drained and uncordoned, under a request loop against a 2-replica Deployment; then again: no change.

scenario_upgrade() {
  local master binary_sum started loop_pid t0 order
  upgrade_build
  ensure_cluster "$K3S_BASE"
  master="${HOSTS[0]%%=*}"
  mirror_add good "$K3S_UPGRADE_DIR"
  mirror_add tampered "$K3S_UPGRADE_DIR"
  echo_deployment 2
  kubectl rollout status deployment/echo --timeout=180s >/dev/null || true
  binary_sum="$(on "$master" sha256sum /usr/local/bin/k3s | cut -d' ' -f1)"
  started="$(on "$master" systemctl show -p ActiveEnterTimestampMonotonic --value k3s)"
  untouched() { # nothing changed on the cluster: the binary, the service, every node's version and schedulability
    [ "$(on "$master" sha256sum /usr/local/bin/k3s | cut -d' ' -f1)" = "$binary_sum" ] &&
      [ "$(on "$master" systemctl show -p ActiveEnterTimestampMonotonic --value k3s)" = "$started" ] &&
      versions_are "$K3S_BASE" && [ -z "$(kubectl get nodes -o jsonpath='{.items[*].spec.unschedulable}')" ]
  }

  step "refused before anything changes"
  K3S_WANT="$K3S_UPGRADE" configure
  check "a mirror whose binary does not match its sha256sum file is refused" \
    refused "$RUN/upgrade-tampered.log" "could not download and verify" upgrade ANSIBLE_ARGS="$(download_vars tampered)"
  check "... naming the file and the checksum file" log_says "$RUN/upgrade-tampered.log" "$MIRROR/tampered/${K3S_UPGRADE//+/%2B}/k3s"
  check "... and nothing changed: same binary, K3s not restarted, no node cordoned, all at $K3S_BASE" untouched
  K3S_WANT=v1.33.4+k3s1 configure
  check "a downgrade (to v1.33.4+k3s1) is refused, saying what to do instead" refused "$RUN/upgrade-downgrade.log" "downgrade" upgrade ANSIBLE_ARGS="$(download_vars good)"
  K3S_WANT=v1.36.5+k3s1 configure
  check "a skipped minor (to v1.36.5+k3s1) is refused, saying what to do instead" refused "$RUN/upgrade-skip.log" "v1.35" upgrade ANSIBLE_ARGS="$(download_vars good)"
  check "... and after the refusals nothing changed" untouched
  K3S_WANT="$K3S_UPGRADE" configure
  make_logged "$RUN/synth-version-change.log" synth || die "make synth failed"
  make_logged "$RUN/provision-version-change.log" provision ANSIBLE_ARGS="$(download_vars good)" && note "make provision upgraded?"
  check "make provision with a new k3s_version refuses to upgrade a running cluster, pointing at make upgrade" \
    log_says "$RUN/provision-version-change.log" "make upgrade"
  check "... and nothing changed" untouched

  step "make upgrade: $K3S_BASE -> $K3S_UPGRADE, one node at a time, under a request loop"
  # The loop: one request every 0.2 s to the NodePort of each agent; every failure is counted.
  : >"$RUN/request-loop.log"
  (
    while [ ! -e "$RUN/request-loop.stop" ]; do
      for entry in "${HOSTS[@]:$MASTERS}"; do
        if curl -fsS --max-time 2 -o /dev/null "http://${entry#*=}:$ECHO_PORT/upgrade"; then echo ok; else echo "fail $(date +%T) ${entry%%=*}"; fi
      done
      sleep 0.2
    done >>"$RUN/request-loop.log"
  ) &
  loop_pid=$!
  t0=$SECONDS
  reported "$RUN/upgrade-1.log" upgrade ANSIBLE_ARGS="$(download_vars good)" || tail -40 "$RUN/upgrade-1.log"
  timing "make upgrade, $((MASTERS + WORKERS)) nodes" "$((SECONDS - t0))s"
  touch "$RUN/request-loop.stop"
  wait "$loop_pid" || true
  rm -f "$RUN/request-loop.stop"
  check "make upgrade succeeds" grep -q "PLAY RECAP" "$RUN/upgrade-1.log"
  check "every node reports $K3S_UPGRADE" retry 30 5 versions_are "$K3S_UPGRADE"
  check "${#HOSTS[@]}/${#HOSTS[@]} nodes Ready" retry 30 5 all_ready
  order="$(grep -o 'upgraded k3s-[a-z]*-[0-9]*' "$RUN/upgrade-1.log" | awk '{ print $2 }' | paste -sd' ' -)"
  check "servers first, then agents, one at a time: $order" \
    test "$order" = "$(for e in "${HOSTS[@]}"; do printf '%s ' "${e%%=*}"; done | sed 's/ $//')"
  # "upgraded <node> from <old> to <new> in <n> s", which the YAML output may wrap over two lines.
  local node n
  while read -r _ node _ _ _ _ _ n _; do
    timing "make upgrade: $node" "${n}s"
    echo "  upgraded $node in $n s"
  done < <(plain "$RUN/upgrade-1.log" | tr -s ' \n' '  ' | grep -o 'upgraded k3s-[a-z]*-[0-9]* from [^ ]* to [^ ]* in [0-9]* s')
  local entry
  for entry in "${HOSTS[@]}"; do
    check "${entry%%=*} was drained" grep -q "node/${entry%%=*} drained" "$RUN/upgrade-1.log"
  done
  check "every node is schedulable again (uncordoned)" test -z "$(kubectl get nodes -o jsonpath='{.items[*].spec.unschedulable}')"
  local requests failures
  requests="$(wc -l <"$RUN/request-loop.log")"
  failures="$(grep -c '^fail' "$RUN/request-loop.log" || true)"
  timing "request loop during the upgrade: requests / failures" "$requests / $failures"
  check "the 2-replica Deployment answered throughout: $failures of $requests requests failed" test "$failures" -eq 0
  [ "$failures" -eq 0 ] || grep '^fail' "$RUN/request-loop.log" | head -10
  reported "$RUN/upgrade-2.log" upgrade ANSIBLE_ARGS="$(download_vars good)" || true
  check "a second make upgrade changes nothing" recap_unchanged "$RUN/upgrade-2.log"
  K3S_WANT="$K3S_UPGRADE"
}
