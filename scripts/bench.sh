#!/usr/bin/env bash
# make bench: how long the project's steps take on this machine, and how much memory they need. It prints
# figures; nothing here passes or fails on a time.
#
#   always                 make synth (warm; median of BENCH_ROUNDS, default 5), the size of the generated
#                          provider bindings (.gen/), make setup and make test on the warm caches, and the
#                          figures scripts/build-k3s.sh recorded for the cached K3s build (if there is one)
#   BENCH_COLD=1           also make setup + make test in a fresh clone with empty caches (npm, Go, the
#                          project's ~/.cache/k3s-proxmox): what a new machine goes through (downloads from
#                          the package registries; ~10 min)
#   BENCH_K3S_COLD=1       also scripts/build-k3s.sh with empty caches (~10 min on 2 cores)
#   (as root on Linux)     make provision on the lab (scripts/bench-provision.sh; BENCH_PROVISION=0 skips it), on
#                          fresh VMs in each of BENCH_PROVISION_ROUNDS rounds (default 3): make apply, the first
#                          provision, the re-run (changed=0), one worker joining, make destroy, and the slowest
#                          tasks; BENCH_SCALE=1 adds the first provision of 1+2 vs 1+8 VMs
#
# "peak memory" is the largest sum of the resident memory of the command and all its descendants, sampled
# every second.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
ROUNDS="${BENCH_ROUNDS:-5}"
SCRATCH="$(mktemp -d "${TMPDIR:-/tmp}/k3spve-bench-XXXXXX")"
cleanup() {
  chmod -R u+w "$SCRATCH" 2>/dev/null || true # the Go module cache is read-only
  rm -rf "$SCRATCH"
}
trap cleanup EXIT

now() { cut -d' ' -f1 /proc/uptime; }
# The resident memory (KiB) of process $1 and all its descendants.
tree_rss() {
  ps -e -o pid=,ppid=,rss= | awk -v root="$1" '
    { parent[$1] = $2; rss[$1] = $3 }
    END { for (p in parent) { q = p; while (q != root && q in parent && q > 1) q = parent[q]; if (q == root) sum += rss[p] }
          print sum + 0 }'
}
# measure LOG COMMAND...: runs COMMAND (output to LOG); sets SECONDS_TAKEN and PEAK_MIB; returns its status.
measure() {
  local log="$1" t0 pid peak=0 rss rc=0
  shift
  t0="$(now)"
  "$@" >"$log" 2>&1 </dev/null &
  pid=$!
  while kill -0 "$pid" 2>/dev/null; do
    rss="$(tree_rss "$pid")"
    [ "$rss" -gt "$peak" ] && peak="$rss"
    sleep 1
  done
  wait "$pid" || rc=$?
  SECONDS_TAKEN="$(awk -v a="$t0" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }')"
  PEAK_MIB=$((peak / 1024))
  [ "$rc" -eq 0 ] || { echo "bench: '$*' failed (exit $rc); its output: $log" >&2; tail -20 "$log" >&2; }
  return "$rc"
}
# stats N...: "median M s (min A, max B, of K)"
stats() { printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END { m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
  printf "median %.1f s (min %.1f, max %.1f, of %d)", m, v[1], v[NR], NR }'; }
row() { printf '  %-44s %s\n' "$1" "$2"; }
keep() { mkdir -p "$SCRATCH/logs"; echo "$SCRATCH/logs/$1.log"; }

echo "k3s-proxmox bench, $(date -u +%FT%TZ): $(nproc) cores, $(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo), $(node --version 2>/dev/null || echo no-node) on PATH"

# --- synth --------------------------------------------------------------------------------------------
# The operator's command with the test fixture's configuration, written to a scratch directory so that the
# checkout's generated files stay as they are.
synth() {
  TFVARS="$ROOT/__tests__/terraform/fixtures/workers-2.tfvars" K3SPVE_OUTPUT_DIR="$SCRATCH/synth" \
    npx --no-install cdktn synth --output "$SCRATCH/synth/cdktf.out"
}
if [ ! -d node_modules ] || [ ! -d .gen ]; then echo "bench: run 'make setup' first (no node_modules/ or .gen/)" >&2; exit 1; fi
mkdir -p "$SCRATCH/synth"
export CHECKPOINT_DISABLE=1
measure "$(keep synth-warmup)" synth
times=()
for ((i = 1; i <= ROUNDS; i++)); do
  measure "$(keep "synth-$i")" synth
  times+=("$SECONDS_TAKEN")
done
row "make synth (warm)" "$(stats "${times[@]}"), peak memory $PEAK_MIB MiB"
row "provider bindings (.gen/)" "$(du -sk .gen | cut -f1) KiB in $(find .gen -type f | wc -l) files"

# --- setup and test -------------------------------------------------------------------------------------
measure "$(keep setup-warm)" make --no-print-directory setup
row "make setup (warm caches)" "$SECONDS_TAKEN s, peak memory $PEAK_MIB MiB"
measure "$(keep test-warm)" make --no-print-directory test
row "make test (warm caches)" "$SECONDS_TAKEN s, peak memory $PEAK_MIB MiB"

if [ -n "${BENCH_COLD:-}" ]; then
  git clone --quiet "$ROOT" "$SCRATCH/clone"
  cold_env=(env K3SPVE_CACHE="$SCRATCH/cache" GOCACHE="$SCRATCH/go-build" GOMODCACHE="$SCRATCH/go-mod"
    npm_config_cache="$SCRATCH/npm")
  measure "$(keep setup-cold)" "${cold_env[@]}" make --no-print-directory -C "$SCRATCH/clone" setup
  row "make setup (fresh clone, empty caches)" "$SECONDS_TAKEN s, peak memory $PEAK_MIB MiB"
  measure "$(keep test-cold)" "${cold_env[@]}" make --no-print-directory -C "$SCRATCH/clone" test
  row "make test (right after)" "$SECONDS_TAKEN s, peak memory $PEAK_MIB MiB"
fi

# --- K3s ------------------------------------------------------------------------------------------------
# shellcheck disable=SC1091
. "$ROOT/versions.env"
# The base build of scripts/build-k3s.sh (K3S_VERSION in versions.env is the release users install, not built here).
INFO="${K3SPVE_CACHE:-$HOME/.cache/k3s-proxmox}/k3s/$K3S_BUILD_VERSION/build-info.env"
if [ -f "$INFO" ]; then
  info() { sed -n "s/^$1=//p" "$INFO"; }
  row "K3s $K3S_BUILD_VERSION (cached build)" "$(($(info K3S_BYTES) / 1048576)) MiB binary; its build took $(info BUILD_SECONDS) s (k3s itself $(info BUILD_K3S_SERVER_SECONDS) s), the largest build process $(($(info BUILD_K3S_SERVER_PEAK_RSS_KB) / 1024)) MiB"
else
  row "K3s $K3S_BUILD_VERSION" "not built yet (scripts/build-k3s.sh; BENCH_K3S_COLD=1 times a build)"
fi
if [ -n "${BENCH_K3S_COLD:-}" ]; then
  measure "$(keep k3s-cold)" env K3SPVE_CACHE="$SCRATCH/k3s-cache" GOCACHE="$SCRATCH/k3s-go-build" \
    GOMODCACHE="$SCRATCH/k3s-go-mod" bash scripts/build-k3s.sh
  row "K3s build (empty caches)" "$SECONDS_TAKEN s, peak memory $PEAK_MIB MiB"
fi

# --- the lab: apply, provision, destroy ----------------------------------------------------------------
# scripts/bench-provision.sh: fresh VMs each round; first provision, re-run, join, and with BENCH_SCALE=1 2 vs 8 agents.
if [ "${BENCH_PROVISION:-1}" = 0 ]; then
  :
elif [ "$(uname -s)" = Linux ] && [ "$(id -u)" = 0 ]; then
  BENCH_ROUNDS="${BENCH_PROVISION_ROUNDS:-3}" bash "$ROOT/scripts/bench-provision.sh"
else
  row "make provision on the lab" "skipped: needs root on Linux (the lab's hosts are systemd-nspawn machines)"
fi
