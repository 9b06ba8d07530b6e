#!/usr/bin/env bash
# make bench BENCH_PROVISION=1: how long make provision takes on the lab's hosts (the e2e's: real Debian 12 hosts
# behind the Proxmox VE API simulator), each figure the median, min and max over BENCH_ROUNDS rounds, every round
# on fresh VMs:
#   make apply        the 1+2 VMs, until their hosts answer SSH
#   first             make provision on the fresh VMs (K3s downloaded from a local mirror laid out like its releases)
#   re-run            make provision again; it must report changed=0 on every host
#   join              make apply of one more worker, then make provision: the new worker joins, the others stay
#                     unchanged (changed=0)
#   make destroy
# With BENCH_SCALE=1 also the first provision of 1+2 and of 1+8 fresh VMs, and their ratio.
# Each run's per-task profile (ansible.posix.profile_tasks) is kept; the slowest tasks of the first provision and of
# the re-run are printed. Root, Linux; the K3s build of the e2e (made if missing). Nothing passes or fails on a time.
set -euo pipefail
# MASTERS and WORKERS are read by e2e/lib.sh's configure:
# shellcheck disable=SC2034

export E2E_RUN_DIR="${BENCH_RUN_DIR:-/tmp/k3spve-bench}"
export E2E_SUBNET="${BENCH_SUBNET:-10.213.61.0/24}" E2E_BRIDGE=k3spve-bench0 E2E_NFT_TABLE=k3spve_bench
# shellcheck source=e2e/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../e2e/lib.sh"
cd "$ROOT"
ROUNDS="${BENCH_ROUNDS:-3}"
TOP="${BENCH_TOP:-12}"
[ "$(uname -s)" = Linux ] && [ "$(id -u)" = 0 ] || die "BENCH_PROVISION=1 needs root on Linux (the lab's hosts are systemd-nspawn machines)"
export ANSIBLE_CALLBACKS_ENABLED=ansible.posix.profile_tasks PROFILE_TASKS_TASK_OUTPUT_LIMIT=all PROFILE_TASKS_SORT_ORDER=descending

cleanup() {
  local rc=$?
  mirror_down
  lab_down || true
  restore_sysctls
  exit "$rc"
}
tools >/dev/null
set_kubelet_sysctls
trap cleanup EXIT

# timed NAME COMMAND...: runs COMMAND; its seconds go to FIGURES[NAME] (space-separated, one per round).
declare -A FIGURES=()
timed() {
  local name="$1" t0
  shift
  t0="$(date +%s.%N)"
  "$@"
  FIGURES[$name]+="$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }') "
}
# stats N...: "median M s (min A, max B, of K)"
stats() { printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END { m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
  printf "median %5.1f s   min %5.1f   max %5.1f   (%d rounds)", m, v[1], v[NR], NR }'; }
# slowest LOG: the slowest tasks of a run, from its profile_tasks lines ("<task> ---- 12.34s").
slowest() {
  sed -n 's/^\(.*[^ -]\) -\{2,\} \([0-9.]*\)s$/\2 \1/p' "$1" | sort -rn | head -"$TOP" | awk '{ t = $1; $1 = ""; printf "    %6.1f s %s\n", t, $0 }'
}
# fresh MASTERS WORKERS: a new lab, configured for that many VMs, and the mirror with the base build.
fresh() {
  MASTERS="$1" WORKERS="$2"
  lab_down
  lab_up >/dev/null
  # shellcheck disable=SC2119
  configure
  rm -f "$INVENTORY"
  mirror_up
  mirror_add good "$K3S_BASE_DIR"
}
must_apply() { apply "$1" || die "make apply failed (log $1)"; }
must_provision() { provision "$1" >/dev/null || { tail -30 "$1" >&2; die "make provision failed (log $1)"; }; }
unchanged() { recap_unchanged "$1" || { sed -n '/PLAY RECAP/,$p' "$1" >&2; die "$2 changed something (log $1)"; }; }

echo "make provision on the lab, $(nproc) cores, $ROUNDS rounds of fresh VMs (K3s $K3S_BASE)"
for ((round = 1; round <= ROUNDS; round++)); do
  echo "  round $round/$ROUNDS"
  fresh 1 2
  timed apply must_apply "$RUN/bench-apply.log"
  timed first must_provision "$RUN/bench-first-$round.log"
  timed rerun must_provision "$RUN/bench-rerun-$round.log"
  unchanged "$RUN/bench-rerun-$round.log" "the re-run"
  WORKERS=3
  # shellcheck disable=SC2119
  configure
  must_apply "$RUN/bench-join-apply.log"
  timed join must_provision "$RUN/bench-join-$round.log"
  only_changed "$RUN/bench-join-$round.log" k3s-worker-3 || { sed -n '/PLAY RECAP/,$p' "$RUN/bench-join-$round.log" >&2; die "the join changed more than k3s-worker-3 (log $RUN/bench-join-$round.log)"; }
  retry 60 2 all_ready || die "not every node is Ready after the join"
  timed destroy make_logged "$RUN/bench-destroy.log" destroy CONFIRM=yes
done
if [ -n "${BENCH_SCALE:-}" ]; then
  echo "  scale: 1+2, then 1+8 fresh VMs"
  fresh 1 2
  must_apply "$RUN/bench-apply.log"
  timed scale-2 must_provision "$RUN/bench-scale-2.log"
  fresh 1 8
  must_apply "$RUN/bench-apply.log"
  timed scale-8 must_provision "$RUN/bench-scale-8.log"
  retry 60 5 all_ready || die "not every node is Ready after provisioning 1+8"
fi

row() { printf '  %-40s %s\n' "$1" "$2"; }
echo
# shellcheck disable=SC2086 # the figures are space-separated numbers
{
  row "make apply, 1+2 VMs (until SSH)" "$(stats ${FIGURES[apply]})"
  row "make provision, first (fresh VMs)" "$(stats ${FIGURES[first]})"
  row "make provision, re-run (changed=0)" "$(stats ${FIGURES[rerun]})"
  row "make provision, join 1 worker" "$(stats ${FIGURES[join]})"
  row "make destroy, 4 VMs" "$(stats ${FIGURES[destroy]})"
  if [ -n "${BENCH_SCALE:-}" ]; then
    row "first provision, 1+2 / 1+8" "${FIGURES[scale-2]% } s / ${FIGURES[scale-8]% } s: ratio $(awk -v a="${FIGURES[scale-2]}" -v b="${FIGURES[scale-8]}" 'BEGIN { printf "%.2f", b / a }')"
  fi
}
echo
echo "  the slowest tasks of the last first provision ($RUN/bench-first-$ROUNDS.log):"
slowest "$RUN/bench-first-$ROUNDS.log"
echo "  ... of the last re-run:"
slowest "$RUN/bench-rerun-$ROUNDS.log"
echo "  ... of the last join:"
slowest "$RUN/bench-join-$ROUNDS.log"
