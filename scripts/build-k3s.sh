#!/usr/bin/env bash
# Builds a real K3s, offline, from its Go module, plus everything an agent needs beside it, into a cache
# outside the repository (keyed by version, so a re-run with everything present only verifies and exits):
#
#   ${K3SPVE_CACHE:-~/.cache/k3s-proxmox}/k3s/<K3S_VERSION>/
#     k3s                 the K3s binary, packaged the way upstream ships it: ./cmd/k3s with the data archive
#                         embedded (see "What is inside" below); install it as /usr/local/bin/k3s
#     sha256sum           "<sha256>  <file>" for k3s and every image tarball (the roles verify by it)
#     images/pause.tar    the pod sandbox image, tagged as K3s's default --pause-image (docker archive)
#     images/echo.tar     a tiny HTTP echo server image for the e2e NodePort test (docker archive)
#     install.sh          K3s's own installer from the same module (INSTALL_K3S_SKIP_DOWNLOAD=true air-gap path)
#     build-info.env      versions, commit, image names, checksums and build measurements (sourceable)
#
# Images are for /var/lib/rancher/k3s/agent/images/: K3s imports every tarball there into containerd at start.
#
# What is inside the k3s binary (the data archive it unpacks to /var/lib/rancher/k3s/data/<hash>/bin/):
#   k3s                    ./cmd/server of github.com/k3s-io/k3s (cgo, libseccomp, sqlite; K3s's build tags and
#                          -X version flags), plus its symlinks k3s-server, k3s-agent, kubectl, crictl, ctr,
#                          containerd, k3s-token, k3s-etcd-snapshot, ...
#   containerd-shim-runc-v2  from the containerd module K3s's go.mod pins (K3s's own fork, via its replace)
#   runc                   from the runc version K3s's go.mod pins (its replace)
#   host-local loopback bridge portmap bandwidth firewall   github.com/containernetworking/plugins at the version
#                          K3s's go.mod requires (upstream K3s ships these as one multi-call `cni` binary; here
#                          they are separate files in the same directory, which K3s finds the same way: its
#                          CNI bin dir is wherever `host-local` is on its PATH)
#   flannel                the flannel CNI plugin, scripts/images/cmd/flannel (the project's own: the module
#                          K3s uses for it is not served by the module proxy here)
#   check-config           K3s's kernel/config checker (contrib/util/check-config.sh)
# Not inside (upstream puts them in bin/aux from k3s-root): iptables, ipset, conntrack, ... -- see "hosts".
#
# What the hosts need from their package manager (Debian names): iptables, ipset, conntrack, plus the usual
# base (mount/util-linux, ca-certificates) and libseccomp2 + glibc >= the build machine's (the inner k3s is
# dynamically linked; Debian 12 build -> Debian 12 hosts). runc, containerd and the CNI plugins come from here.
#
# The version is pinned in versions.env (the one place):
#   K3S_VERSION       the version string the binary reports (a tag such as v1.33.4+k3s1, or K3s's own name for
#                     an untagged commit: <kubernetes version>+k3s-<commit[:8]>)
#   K3S_GO_VERSION    the Go module version (pseudo-version) of that commit that the module proxy serves
#   K3S_GO_SUM        the module's h1: hash (the checksum database does not know every K3s commit; the
#                     module is fetched with GONOSUMDB for it and checked against this pin instead)
#
# Air-gapped machines: point these at files you brought along and that part is not built:
#   K3S_BINARY=/path/to/k3s   K3S_PAUSE_IMAGE_TAR=/path/to/pause.tar   K3S_ECHO_IMAGE_TAR=/path/to/echo.tar
# (K3S_BINARY may be an official release binary; then set K3S_VERSION to its version.)
# Otherwise building needs Go (>= the module's go directive), gcc, libseccomp-dev, pkg-config and a Go module
# proxy. A first build takes ~10 min on 2 cores (longer on slow disks); later runs take seconds.
#
# Usage: scripts/build-k3s.sh [--force]     (--force or K3S_REBUILD=1 rebuilds even if the cache is complete)
# Prints the output directory on stdout; progress goes to stderr.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${K3SPVE_CACHE:-$HOME/.cache/k3s-proxmox}"
IMAGES_SRC="$ROOT/scripts/images"

log() { printf '[build-k3s] %s\n' "$*" >&2; }
die() { printf '[build-k3s] ERROR: %s\n' "$*" >&2; exit 1; }
# Durations come from the kernel's monotonic clock: the wall clock of a VM can jump.
now() { if [ -r /proc/uptime ]; then cut -d' ' -f1 /proc/uptime; else date +%s; fi; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1fs", b - a }'; }
T0="$(now)"

FORCE="${K3S_REBUILD:-}"
for arg in "$@"; do
  case "$arg" in
    --force) FORCE=1 ;;
    -h|--help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument: $arg (try --help)" ;;
  esac
done

# --- pinned version ----------------------------------------------------------------------------------
[ -f "$ROOT/versions.env" ] || die "missing $ROOT/versions.env"
# shellcheck disable=SC1091
. "$ROOT/versions.env"
[ -n "${K3S_VERSION:-}" ] || die "K3S_VERSION is not set in versions.env"
case "$K3S_VERSION" in v[0-9]*.[0-9]*.[0-9]*+k3s*) ;; *) die "K3S_VERSION=$K3S_VERSION does not look like v1.x.y+k3s..." ;; esac

OUT="$CACHE/k3s/$K3S_VERSION"
WORK="$CACHE/k3s/build/$K3S_VERSION"
mkdir -p "$OUT/images"

# Image names. The sandbox image must be exactly K3s's default --pause-image so containerd finds it without
# any flag (read from the module source when we build; this is the value of every K3s release since 1.20).
SANDBOX_IMAGE_DEFAULT="docker.io/rancher/mirrored-pause:3.6"
ECHO_IMAGE="${K3S_ECHO_IMAGE:-k3spve.local/echo:1.0}"

sha256_of() { sha256sum "$1" | cut -d' ' -f1; }
size_of() { du -h "$1" | cut -f1; }

# --- already complete? -------------------------------------------------------------------------------
complete() {
  [ -x "$OUT/k3s" ] && [ -s "$OUT/images/pause.tar" ] && [ -s "$OUT/images/echo.tar" ] \
    && [ -s "$OUT/sha256sum" ] && [ -s "$OUT/build-info.env" ] \
    && (cd "$OUT" && sha256sum --quiet -c sha256sum >/dev/null 2>&1)
}
if [ -z "$FORCE" ] && [ -z "${K3S_BINARY:-}${K3S_PAUSE_IMAGE_TAR:-}${K3S_ECHO_IMAGE_TAR:-}" ] && complete; then
  log "K3s $K3S_VERSION is cached and verified in $OUT ($(since "$T0"))"
  echo "$OUT"
  exit 0
fi

# --- tools -------------------------------------------------------------------------------------------
need_build_tools() {
  local missing=()
  command -v go >/dev/null 2>&1 || die "Go is needed to build K3s (or set K3S_BINARY, K3S_PAUSE_IMAGE_TAR, K3S_ECHO_IMAGE_TAR)"
  command -v gcc >/dev/null 2>&1 || missing+=(gcc libc6-dev)
  command -v pkg-config >/dev/null 2>&1 || missing+=(pkg-config)
  pkg-config --exists libseccomp 2>/dev/null || missing+=(libseccomp-dev)
  if [ "${#missing[@]}" -gt 0 ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
      log "installing build dependencies: ${missing[*]}"
      DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >&2 \
        || { apt-get update -q >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >&2; } \
        || die "could not install ${missing[*]}"
    else
      die "missing build dependencies: ${missing[*]} (install them, or set K3S_BINARY=/path/to/k3s)"
    fi
  fi
}

# module_dir MODULE@VERSION [DIR]: downloads a module (inside DIR, so DIR's go.mod/go.sum and replaces apply)
# and prints its source directory.
module_dir() {
  local json dir
  json="$(cd "${2:-$WORK}" && go mod download -json "$1" 2>&1)" || die "the Go module proxy does not serve $1:
$json"
  dir="$(printf '%s\n' "$json" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p' | head -n1)"
  [ -d "$dir" ] || die "go mod download gave no source directory for $1:
$json"
  printf '%s\n' "$dir"
}

# mod_field MODULE FIELD: a field of MODULE as the K3s main module resolves it (after its replace directives).
mod_field() {
  (cd "$SRC" && go list -m -f "{{if .Replace}}{{.Replace.$2}}{{else}}{{.$2}}{{end}}" "$1" 2>/dev/null) || true
}

# --- the images (pause, echo) ------------------------------------------------------------------------
build_images() {
  local sandbox="$1" bindir="$WORK/images-bin"
  mkdir -p "$bindir"
  if [ -n "${K3S_PAUSE_IMAGE_TAR:-}" ]; then
    [ -s "$K3S_PAUSE_IMAGE_TAR" ] || die "K3S_PAUSE_IMAGE_TAR=$K3S_PAUSE_IMAGE_TAR is not a file"
    install -m 0644 "$K3S_PAUSE_IMAGE_TAR" "$OUT/images/pause.tar"
    log "pause image: taken from $K3S_PAUSE_IMAGE_TAR"
  fi
  if [ -n "${K3S_ECHO_IMAGE_TAR:-}" ]; then
    [ -s "$K3S_ECHO_IMAGE_TAR" ] || die "K3S_ECHO_IMAGE_TAR=$K3S_ECHO_IMAGE_TAR is not a file"
    install -m 0644 "$K3S_ECHO_IMAGE_TAR" "$OUT/images/echo.tar"
    log "echo image: taken from $K3S_ECHO_IMAGE_TAR"
  fi
  [ -n "${K3S_PAUSE_IMAGE_TAR:-}" ] && [ -n "${K3S_ECHO_IMAGE_TAR:-}" ] && return 0
  command -v go >/dev/null 2>&1 || die "Go is needed to build the images (or set K3S_PAUSE_IMAGE_TAR and K3S_ECHO_IMAGE_TAR)"
  [ -f "$IMAGES_SRC/go.mod" ] || die "missing $IMAGES_SRC/go.mod"
  local t; t="$(now)"
  log "building the image tools and the pause/echo programs (static, CGO_ENABLED=0)"
  (cd "$IMAGES_SRC" && GOWORK=off CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$bindir/" \
    ./cmd/mkimage ./cmd/pause ./cmd/echo) || die "building scripts/images failed"
  if [ -z "${K3S_PAUSE_IMAGE_TAR:-}" ]; then
    "$bindir/mkimage" -binary "$bindir/pause" -path /pause -tag "$sandbox" -user 65535:65535 \
      -out "$OUT/images/pause.tar" || die "packing the pause image failed"
  fi
  if [ -z "${K3S_ECHO_IMAGE_TAR:-}" ]; then
    "$bindir/mkimage" -binary "$bindir/echo" -path /echo -tag "$ECHO_IMAGE" -user 65534:65534 -ports 8080/tcp \
      -out "$OUT/images/echo.tar" || die "packing the echo image failed"
  fi
  log "images: $sandbox ($(size_of "$OUT/images/pause.tar")), $ECHO_IMAGE ($(size_of "$OUT/images/echo.tar")) in $(since "$t")"
}

# --- K3s itself ---------------------------------------------------------------------------------------
build_k3s() {
  [ -n "${K3S_GO_VERSION:-}" ] || die "K3S_GO_VERSION is not set in versions.env (the module version to build)"
  need_build_tools
  local module="github.com/k3s-io/k3s" json srcdir sum commit t
  mkdir -p "$WORK"

  # 1. the module source, checked against the pinned hash, copied to a writable main-module directory
  t="$(now)"
  log "fetching $module@$K3S_GO_VERSION"
  json="$(cd "$WORK" && GONOSUMDB="${GONOSUMDB:+$GONOSUMDB,}$module" GOWORK=off \
    go mod download -json "$module@$K3S_GO_VERSION" 2>&1)" || die "the Go module proxy does not serve $module@$K3S_GO_VERSION:
$json"
  srcdir="$(printf '%s\n' "$json" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p' | head -n1)"
  sum="$(printf '%s\n' "$json" | sed -n 's/^[[:space:]]*"Sum": "\(.*\)",\{0,1\}$/\1/p' | head -n1)"
  commit="$(printf '%s\n' "$json" | sed -n 's/^[[:space:]]*"Hash": "\([0-9a-f]\{40\}\)".*$/\1/p' | head -n1)"
  [ -d "$srcdir" ] || die "go mod download gave no source directory:
$json"
  if [ -n "${K3S_GO_SUM:-}" ]; then
    [ "$sum" = "$K3S_GO_SUM" ] || die "checksum mismatch for $module@$K3S_GO_VERSION: got $sum, versions.env pins $K3S_GO_SUM"
  else
    log "WARNING: K3S_GO_SUM is not pinned in versions.env; the module's hash is $sum"
  fi
  if [ -z "$commit" ]; then
    commit="$(printf '%s\n' "$K3S_GO_VERSION" | sed -n 's/.*-\([0-9a-f]\{12\}\)$/\1/p')"
  fi
  SRC="$WORK/src"
  rm -rf "$SRC" "$WORK/data"
  cp -a "$srcdir" "$SRC"
  chmod -R u+w "$SRC"
  log "downloading K3s's dependencies (go mod download)"
  (cd "$SRC" && GOWORK=off go mod download) || die "downloading K3s's dependencies failed"
  log "module source and dependencies ready in $(since "$t")"

  # 2. versions, the way scripts/version.sh of the module derives them
  local k8s containerd_path containerd_version crictl runc_version cni_version flannel kube_router cri_dockerd
  k8s="$(mod_field k8s.io/kubernetes Version)"; k8s="${k8s%%-k3s*}"
  containerd_path="github.com/containerd/containerd/v2"
  containerd_version="$(mod_field "$containerd_path" Version)"
  if [ -z "$containerd_version" ]; then
    containerd_path="github.com/containerd/containerd"
    containerd_version="$(mod_field "$containerd_path" Version)"
  fi
  [ -n "$containerd_version" ] || die "K3s's go.mod pins no containerd module"
  crictl="$(mod_field sigs.k8s.io/cri-tools Version)"
  runc_version="$(mod_field github.com/opencontainers/runc Version)"
  cni_version="$(mod_field github.com/containernetworking/plugins Version)"
  flannel="$(mod_field github.com/flannel-io/flannel Version)"
  kube_router="$(mod_field github.com/cloudnativelabs/kube-router/v2 Version)"
  cri_dockerd="$(mod_field github.com/Mirantis/cri-dockerd Version)"
  [ -n "$k8s" ] && [ -n "$runc_version" ] && [ -n "$cni_version" ] || die "could not read versions from K3s's go.mod"
  case "$K3S_VERSION" in "$k8s"+*|"$k8s"-*) ;; *) die "K3S_VERSION=$K3S_VERSION does not match the module's Kubernetes $k8s" ;; esac
  SANDBOX_IMAGE="$(sed -n '/Name: *"pause-image"/,/Value:/s/^.*Value: *"\([^"]*\)".*$/\1/p' "$SRC/pkg/cli/cmds/agent.go" | head -n1)"
  [ -n "$SANDBOX_IMAGE" ] || SANDBOX_IMAGE="$SANDBOX_IMAGE_DEFAULT"
  case "$SANDBOX_IMAGE" in */*/*) ;; *) SANDBOX_IMAGE="docker.io/$SANDBOX_IMAGE" ;; esac
  log "K3s $K3S_VERSION (commit ${commit:0:8}): Kubernetes $k8s, containerd $containerd_version, runc $runc_version, CNI plugins $cni_version, flannel $flannel"

  # 3. the go:embed folders: the bundled manifests (what scripts/build copies); no charts in static/
  #    (traefik's chart is fetched from the internet by K3s's scripts/download, so traefik is left out: the
  #    project disables it and installs its own)
  local f
  find "$SRC/pkg/deploy/embed" "$SRC/pkg/static/embed" "$SRC/pkg/data/embed" -mindepth 1 ! -name .empty -exec rm -rf {} +
  for f in "$SRC"/manifests/*; do
    case "$(basename "$f")" in traefik.yaml) continue ;; esac
    cp -a "$f" "$SRC/pkg/deploy/embed/"
  done
  log "embedded manifests: $(cd "$SRC/pkg/deploy/embed" && find . -type f ! -name .empty | sed 's|^\./||' | sort | tr '\n' ' ')"

  # 4. the inner k3s (./cmd/server) with K3s's tags and version flags
  local gover build_date pkg="github.com/k3s-io/k3s" tags versionflags bin="$WORK/data/bin"
  gover="$(go env GOVERSION)"
  build_date="$(date -u '+%Y-%m-%dT%H:%M:%SZ')"
  tags="ctrd netcgo osusergo providerless urfave_cli_no_docs sqlite_omit_load_extension apparmor seccomp"
  versionflags="
    -X $pkg/pkg/version.Version=$K3S_VERSION
    -X $pkg/pkg/version.GitCommit=${commit:0:8}
    -X $pkg/pkg/version.UpstreamGolang=$gover
    -X k8s.io/client-go/pkg/version.gitVersion=$K3S_VERSION
    -X k8s.io/client-go/pkg/version.gitCommit=$commit
    -X k8s.io/client-go/pkg/version.gitTreeState=clean
    -X k8s.io/client-go/pkg/version.buildDate=$build_date
    -X k8s.io/component-base/version.gitVersion=$K3S_VERSION
    -X k8s.io/component-base/version.gitCommit=$commit
    -X k8s.io/component-base/version.gitTreeState=clean
    -X k8s.io/component-base/version.buildDate=$build_date
    -X sigs.k8s.io/cri-tools/pkg/version.Version=${crictl:-v0.0.0}
    -X $containerd_path/version.Version=$containerd_version
    -X $containerd_path/version.Package=$(mod_field "$containerd_path" Path)
    -X github.com/cloudnativelabs/kube-router/v2/pkg/version.Version=${kube_router:-v0.0.0}
    -X github.com/cloudnativelabs/kube-router/v2/pkg/version.BuildDate=$build_date
    -X github.com/Mirantis/cri-dockerd/cmd/version.Version=${cri_dockerd:-v0.0.0}
    -X github.com/Mirantis/cri-dockerd/cmd/version.GitCommit=HEAD
    -X github.com/Mirantis/cri-dockerd/cmd/version.BuildTime=$build_date
    -X go.etcd.io/etcd/api/v3/version.GitSHA=HEAD"
  mkdir -p "$bin"
  t="$(now)"
  log "compiling k3s ./cmd/server (cgo; the first time takes about 10 minutes on 2 cores)"
  local timed=()
  [ -x /usr/bin/time ] && timed=(/usr/bin/time -v -o "$WORK/time-k3s-server.txt")
  rm -f "$WORK/time-k3s-server.txt"
  (cd "$SRC" && GOWORK=off CGO_ENABLED=1 CGO_CFLAGS="-DSQLITE_ENABLE_DBSTAT_VTAB=1 -DSQLITE_USE_ALLOCA=1" \
    "${timed[@]}" go build -tags "$tags" -buildvcs=false -ldflags "$versionflags -w -s" -o "$bin/k3s" ./cmd/server) \
    || die "compiling k3s failed (see the output above)"
  K3S_SERVER_SECONDS="$(awk -v a="$t" -v b="$(now)" 'BEGIN { printf "%d", b - a }')"
  K3S_SERVER_PEAK_KB="$(sed -n 's/^[[:space:]]*Maximum resident set size (kbytes): //p' "$WORK/time-k3s-server.txt" 2>/dev/null || true)"
  log "k3s (inner) built: $(size_of "$bin/k3s") in $(since "$t")${K3S_SERVER_PEAK_KB:+, peak RSS of one build process $((K3S_SERVER_PEAK_KB / 1024)) MiB}"
  "$bin/k3s" --version >&2 || die "the built k3s does not run"
  for f in k3s-agent k3s-server k3s-token k3s-etcd-snapshot k3s-secrets-encrypt k3s-certificate k3s-completion \
    kubectl containerd crictl ctr; do
    ln -sfn k3s "$bin/$f"
  done

  # 5. containerd-shim-runc-v2 and runc, from the modules K3s pins, each built as its own main module
  local dir
  t="$(now)"
  dir="$(module_dir "$containerd_path" "$SRC")"
  log "compiling containerd-shim-runc-v2 ($(mod_field "$containerd_path" Path) $containerd_version)"
  (cd "$dir" && GOWORK=off GOFLAGS=-mod=readonly CGO_ENABLED=1 go build -tags "${tags/netcgo/netgo}" -buildvcs=false \
    -ldflags "-X $containerd_path/version.Version=$containerd_version -X $containerd_path/version.Package=$(mod_field "$containerd_path" Path) -w -s" \
    -o "$bin/containerd-shim-runc-v2" ./cmd/containerd-shim-runc-v2) || die "compiling containerd-shim-runc-v2 failed"
  dir="$(module_dir github.com/opencontainers/runc "$SRC")"
  log "compiling runc $runc_version"
  (cd "$dir" && GOWORK=off GOFLAGS=-mod=readonly CGO_ENABLED=1 go build -tags "seccomp urfave_cli_no_docs" -buildvcs=false \
    -ldflags "-X main.version=${runc_version#v} -X main.gitCommit=$runc_version -w -s" \
    -o "$bin/runc" .) || die "compiling runc failed"
  "$bin/runc" --version >&2 || die "the built runc does not run"

  # 6. CNI plugins: the reference plugins at the version K3s requires, and the flannel plugin
  dir="$(module_dir "github.com/containernetworking/plugins@$cni_version" "$SRC")"
  log "compiling CNI plugins $cni_version: host-local loopback bridge portmap bandwidth firewall"
  (cd "$dir" && GOWORK=off GOFLAGS=-mod=readonly CGO_ENABLED=0 go build -buildvcs=false \
    -ldflags "-X github.com/containernetworking/plugins/pkg/utils/buildversion.BuildVersion=$cni_version -w -s" \
    -o "$bin/" ./plugins/ipam/host-local ./plugins/main/loopback ./plugins/main/bridge \
      ./plugins/meta/portmap ./plugins/meta/bandwidth ./plugins/meta/firewall) || die "compiling the CNI plugins failed"
  log "compiling the flannel CNI plugin (scripts/images/cmd/flannel)"
  (cd "$IMAGES_SRC" && GOWORK=off CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$bin/flannel" ./cmd/flannel) \
    || die "compiling the flannel CNI plugin failed"
  install -m 0755 "$SRC/contrib/util/check-config.sh" "$bin/check-config"
  log "agent helpers built in $(since "$t")"

  # 7. the data archive and the outer k3s that embeds it (./cmd/k3s, static, no cgo)
  t="$(now)"
  local archive hash
  (cd "$IMAGES_SRC" && GOWORK=off CGO_ENABLED=0 go build -trimpath -o "$WORK/k3sdata" ./cmd/k3sdata) \
    || die "building scripts/images/cmd/k3sdata failed"
  archive="$WORK/data.tar.zst"
  "$WORK/k3sdata" -dir "$WORK/data" -out "$archive" || die "packing the data archive failed"
  hash="$(sha256_of "$archive")"
  cp "$archive" "$SRC/pkg/data/embed/$hash.tar.zst"
  log "data archive $(size_of "$archive") (data dir name $hash)"
  (cd "$SRC" && GOWORK=off CGO_ENABLED=0 go build -tags urfave_cli_no_docs -buildvcs=false \
    -ldflags "-X $pkg/pkg/version.Version=$K3S_VERSION -X $pkg/pkg/version.GitCommit=${commit:0:8} -X $pkg/pkg/version.UpstreamGolang=$gover -w -s -extldflags -static" \
    -o "$OUT/k3s.tmp" ./cmd/k3s) || die "compiling the outer k3s (./cmd/k3s) failed"
  mv -f "$OUT/k3s.tmp" "$OUT/k3s"
  install -m 0755 "$SRC/install.sh" "$OUT/install.sh"
  log "k3s packaged: $(size_of "$OUT/k3s") in $(since "$t")"
  rm -rf "$SRC"  # a rebuild copies the module afresh; Go's build cache is what makes it fast

  BUILD_INFO_EXTRA="K3S_COMMIT=$commit
K3S_GO_VERSION=$K3S_GO_VERSION
K3S_GO_SUM=$sum
KUBERNETES_VERSION=$k8s
CONTAINERD_VERSION=$containerd_version
RUNC_VERSION=$runc_version
CNI_PLUGINS_VERSION=$cni_version
FLANNEL_VERSION=$flannel
GO_VERSION=$gover
K3S_DATA_HASH=$hash
BUILD_K3S_SERVER_SECONDS=$K3S_SERVER_SECONDS
BUILD_K3S_SERVER_PEAK_RSS_KB=$K3S_SERVER_PEAK_KB
INNER_K3S_BYTES=$(stat -c %s "$bin/k3s")"
}

# --- main --------------------------------------------------------------------------------------------
SANDBOX_IMAGE="$SANDBOX_IMAGE_DEFAULT"
BUILD_INFO_EXTRA=""
if [ -n "${K3S_BINARY:-}" ]; then
  [ -f "$K3S_BINARY" ] || die "K3S_BINARY=$K3S_BINARY is not a file"
  install -m 0755 "$K3S_BINARY" "$OUT/k3s.tmp" && mv -f "$OUT/k3s.tmp" "$OUT/k3s"
  got="$("$OUT/k3s" --version 2>/dev/null | head -n1 || true)"
  log "k3s: taken from $K3S_BINARY (${got:-version unknown})"
  case "$got" in *" $K3S_VERSION "*) ;; *) log "WARNING: versions.env pins K3S_VERSION=$K3S_VERSION but $K3S_BINARY reports: ${got:-nothing}" ;; esac
  BUILD_INFO_EXTRA="K3S_SOURCE=$K3S_BINARY"
else
  build_k3s
fi
build_images "$SANDBOX_IMAGE"

(cd "$OUT" && sha256sum k3s images/pause.tar images/echo.tar > sha256sum.tmp && mv -f sha256sum.tmp sha256sum)
cat > "$OUT/build-info.env.tmp" <<EOF
# Written by scripts/build-k3s.sh on $(date -u '+%Y-%m-%dT%H:%M:%SZ')
K3S_VERSION=$K3S_VERSION
K3S_SHA256=$(sha256_of "$OUT/k3s")
K3S_BYTES=$(stat -c %s "$OUT/k3s")
SANDBOX_IMAGE=$SANDBOX_IMAGE
ECHO_IMAGE=$ECHO_IMAGE
PAUSE_IMAGE_SHA256=$(sha256_of "$OUT/images/pause.tar")
ECHO_IMAGE_SHA256=$(sha256_of "$OUT/images/echo.tar")
BUILD_SECONDS=$(awk -v a="$T0" -v b="$(now)" 'BEGIN { printf "%d", b - a }')
$BUILD_INFO_EXTRA
EOF
mv -f "$OUT/build-info.env.tmp" "$OUT/build-info.env"
"$OUT/k3s" --version >&2 || die "$OUT/k3s does not run"
log "done in $(since "$T0"): $OUT ($(size_of "$OUT/k3s") k3s, sandbox image $SANDBOX_IMAGE, echo image $ECHO_IMAGE)"
echo "$OUT"
