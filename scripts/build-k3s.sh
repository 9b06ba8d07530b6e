#!/usr/bin/env bash
# Builds a real K3s, offline, from its Go module, plus everything an agent needs beside it, into a cache
# outside the repository (keyed by version, so a re-run with everything present only verifies and exits):
#
#   ${K3SPVE_CACHE:-~/.cache/k3s-proxmox}/k3s/<version>/
#     k3s                 the K3s binary, packaged the way upstream ships it: ./cmd/k3s with the data archive
#                         embedded (see "What is inside" below); install it as /usr/local/bin/k3s
#     sha256sum           "<sha256>  <file>" for k3s, every image tarball and the air-gap archive (the roles
#                         verify by it)
#     images/pause.tar    the pod sandbox image, tagged as K3s's default --pause-image (docker archive)
#     images/echo.tar     a tiny HTTP echo server image for the e2e NodePort test (docker archive)
#     k3s-airgap-images-amd64.tar   both images in one docker archive, like the K3s release asset of that name
#     sha256sum-amd64.txt "<sha256>  k3s-airgap-images-amd64.tar" and "<sha256>  k3s": the K3s release's checksum
#                         file, so the folder can be served as a mirror laid out like K3s's GitHub releases
#     install.sh          K3s's own installer from the same module (INSTALL_K3S_SKIP_DOWNLOAD=true air-gap path)
#     build-info.env      versions, commit, image names, checksums and build measurements (sourceable)
# (amd64 is the architecture of the build machine; on arm64 the release names are k3s-airgap-images-arm64.tar,
# sha256sum-arm64.txt and k3s-arm64, a hard link to k3s.)
#
# Images are for /var/lib/rancher/k3s/agent/images/: K3s imports every tarball there into containerd at start
# (either images/*.tar or the one air-gap archive, not both).
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
# Two named builds, pinned in versions.env (the one place):
#   base      K3S_BUILD_VERSION: the module K3S_BUILD_GO_VERSION (a pseudo-version the module proxy serves) of
#             github.com/k3s-io/k3s, checked against K3S_BUILD_GO_SUM (its h1: hash: the checksum database does
#             not know every K3s commit, so the module is fetched with GONOSUMDB for it and checked against this
#             pin instead), built as it is. The version string is the one the binary reports: a tag such as
#             v1.33.4+k3s1, or K3s's own name for an untagged commit, <kubernetes version>+k3s-<commit[:8]>.
#   upgrade   K3S_UPGRADE_VERSION: the same module source, but every replace in its go.mod that points at
#             K3s's Kubernetes fork (github.com/k3s-io/kubernetes and its staging/src/... modules) at the base
#             build's fork version is re-pointed to K3S_UPGRADE_KUBERNETES (`go mod edit -replace`), and the
#             dependencies are resolved again (-mod=mod; GONOSUMDB covers github.com/k3s-io/*, which the checksum
#             database does not know). K3s names a build of such a modified tree
#             <kubernetes version>+k3s-<commit[:8]>-dirty; the binary reports it with git tree state "dirty".
# Either way the Kubernetes version read from the resolved go.mod must be the prefix of the build's version.
# Both builds share Go's build cache; the second one recompiles only what the Kubernetes bump changes.
#
# Air-gapped machines: point these at files you brought along and that part is not built:
#   K3S_BINARY=/path/to/k3s   K3S_PAUSE_IMAGE_TAR=/path/to/pause.tar   K3S_ECHO_IMAGE_TAR=/path/to/echo.tar
#   K3S_AIRGAP_IMAGES_TAR=/path/to/k3s-airgap-images-amd64.tar
# (K3S_BINARY may be an official release binary; the folder is still named after the build's version in
# versions.env, and a binary reporting another version is warned about.)
# Otherwise building needs Go (>= the module's go directive), gcc, libseccomp-dev, pkg-config and a Go module
# proxy. A first build takes ~10 min on 2 cores (longer on slow disks); later runs take seconds. If only the
# files beside k3s are missing (e.g. from an older version of this script), they are added without a rebuild.
#
# Usage: scripts/build-k3s.sh [base|upgrade] [--force]    (default base; --force or K3S_REBUILD=1 rebuilds even
#        if the cache is complete)
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
BUILD=""
for arg in "$@"; do
  case "$arg" in
    --force) FORCE=1 ;;
    base|upgrade)
      [ -z "$BUILD" ] || die "two builds named ($BUILD and $arg): build one at a time"
      BUILD="$arg" ;;
    -h|--help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument: $arg (the build is base or upgrade; try --help)" ;;
  esac
done
BUILD="${BUILD:-base}"

# --- pinned versions ---------------------------------------------------------------------------------
[ -f "$ROOT/versions.env" ] || die "missing $ROOT/versions.env"
# shellcheck disable=SC1091
. "$ROOT/versions.env"
# (versions.env's K3S_VERSION is the release users install, not a build: it is not used here.)
if [ "$BUILD" = upgrade ]; then
  VERSION_VAR=K3S_UPGRADE_VERSION
  VERSION="${K3S_UPGRADE_VERSION:-}"
  UPGRADE_KUBERNETES="${K3S_UPGRADE_KUBERNETES:-}"
  [ -n "$UPGRADE_KUBERNETES" ] || die "K3S_UPGRADE_KUBERNETES is not set in versions.env (the github.com/k3s-io/kubernetes version the upgrade build uses, e.g. v1.34.1-k3s1)"
  # The checksum database knows neither K3s's commits nor its Kubernetes fork: the fork's modules the bump
  # brings in are trusted as the module proxy serves them (their hashes are recorded in build-info.env).
  export GONOSUMDB="${GONOSUMDB:+$GONOSUMDB,}github.com/k3s-io/*"
else
  VERSION_VAR=K3S_BUILD_VERSION
  VERSION="${K3S_BUILD_VERSION:-}"
fi
[ -n "$VERSION" ] || die "$VERSION_VAR is not set in versions.env (the version the $BUILD build reports)"
case "$VERSION" in
  v[0-9]*.[0-9]*.[0-9]*+k3s*) ;;
  *) die "$VERSION_VAR=$VERSION in versions.env does not look like v1.x.y+k3s... (e.g. v1.34.0+k3s-857412ae)" ;;
esac

# K3s's release names for the build machine's architecture.
case "$(uname -m)" in
  x86_64|amd64) ARCH=amd64 ;;
  aarch64|arm64) ARCH=arm64 ;;
  armv7l|armhf) ARCH=arm ;;
  *) die "unsupported architecture $(uname -m) (K3s releases amd64, arm64 and arm)" ;;
esac
AIRGAP="k3s-airgap-images-$ARCH.tar"
RELEASE_SUMS="sha256sum-$ARCH.txt"
RELEASE_BINARY=k3s
[ "$ARCH" = amd64 ] || RELEASE_BINARY="k3s-$ARCH"

OUT="$CACHE/k3s/$VERSION"
WORK="$CACHE/k3s/build/$VERSION"
mkdir -p "$OUT/images" "$WORK"

# Image names. The sandbox image must be exactly K3s's default --pause-image so containerd finds it without
# any flag (read from the module source when we build; this is the value of every K3s release since 1.20).
SANDBOX_IMAGE_DEFAULT="docker.io/rancher/mirrored-pause:3.6"
# Its tag follows scripts/images/cmd/echo's version: a cached echo.tar of another name is built again.
ECHO_IMAGE="${K3S_ECHO_IMAGE:-k3spve.local/echo:1.1}"
# K3s's build tags for the inner k3s (scripts/build of the module).
TAGS="ctrd netcgo osusergo providerless urfave_cli_no_docs sqlite_omit_load_extension apparmor seccomp"

sha256_of() { sha256sum "$1" | cut -d' ' -f1; }
size_of() { du -h "$1" | cut -f1; }
# info KEY: KEY's value in the build-info.env of the output dir ('' if none).
info() { [ ! -f "$OUT/build-info.env" ] || sed -n "s/^$1=//p" "$OUT/build-info.env" | head -n1; }

# --- already complete? -------------------------------------------------------------------------------
# verified FILE...: every FILE (relative to $OUT) is listed in $OUT/sha256sum and matches its line.
verified() {
  local f line
  [ -s "$OUT/sha256sum" ] || return 1
  for f in "$@"; do
    line="$(awk -v f="$f" '$2 == f { print; exit }' "$OUT/sha256sum")"
    [ -n "$line" ] && [ -s "$OUT/$f" ] || return 1
    (cd "$OUT" && printf '%s\n' "$line" | sha256sum --quiet -c - >/dev/null 2>&1) || return 1
  done
}
# The release checksum file lists exactly the air-gap archive and the binary, in K3s's order, and they match.
release_sums_ok() {
  [ -s "$OUT/$RELEASE_SUMS" ] \
    && [ "$(awk '{ printf "%s ", $2 }' "$OUT/$RELEASE_SUMS")" = "$AIRGAP $RELEASE_BINARY " ] \
    && (cd "$OUT" && sha256sum --quiet -c "$RELEASE_SUMS" >/dev/null 2>&1)
}
# The binary is there, verified and recorded as this build (by a complete run of this script).
binary_cached() {
  [ -x "$OUT/k3s" ] && verified k3s && [ "$(info K3S_VERSION)" = "$VERSION" ] \
    && [ -n "$(info KUBERNETES_VERSION)$(info K3S_SOURCE)" ]
}
complete() {
  binary_cached && verified images/pause.tar images/echo.tar "$AIRGAP" && release_sums_ok \
    && [ "$(info AIRGAP_IMAGES_SHA256)" = "$(sha256_of "$OUT/$AIRGAP")" ] && [ "$(info ECHO_IMAGE)" = "$ECHO_IMAGE" ]
}
REUSE=""
if [ -z "$FORCE" ] && [ -z "${K3S_BINARY:-}${K3S_PAUSE_IMAGE_TAR:-}${K3S_ECHO_IMAGE_TAR:-}${K3S_AIRGAP_IMAGES_TAR:-}" ]; then
  if complete; then
    log "K3s $VERSION ($BUILD) is cached and verified in $OUT ($(since "$T0"))"
    echo "$OUT"
    exit 0
  fi
  if binary_cached; then
    REUSE=1
    log "K3s $VERSION ($BUILD): the k3s binary is cached and verified in $OUT; adding the files missing beside it (no rebuild)"
  fi
fi

# --- tools -------------------------------------------------------------------------------------------
need_build_tools() {
  local missing=()
  command -v go >/dev/null 2>&1 || die "Go is needed to build K3s (or set K3S_BINARY, K3S_PAUSE_IMAGE_TAR, K3S_ECHO_IMAGE_TAR, K3S_AIRGAP_IMAGES_TAR)"
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

# -mod=mod for the upgrade build, whose edited go.mod/go.sum go may complete; the base build's are used as they are.
MODFLAG=()
[ "$BUILD" = upgrade ] && MODFLAG=(-mod=mod)

# mod_field MODULE FIELD: a field of MODULE as the K3s main module resolves it (after its replace directives).
mod_field() {
  (cd "$SRC" && GOWORK=off go list "${MODFLAG[@]}" -m -f "{{if .Replace}}{{.Replace.$2}}{{else}}{{.$2}}{{end}}" "$1" 2>/dev/null) || true
}

# replaces: "OLD[@VERSION] NEW NEW_VERSION" for every replace directive of $SRC/go.mod (go's own formatting of
# it, so one directive per line; directory replacements, which have no version, are left out).
replaces() {
  (cd "$SRC" && GOWORK=off go mod edit -print) | awk '
    /^replace[ \t]*\([ \t]*$/ { block = 1; next }
    block && /^\)/ { block = 0; next }
    {
      sub(/[ \t]*\/\/.*$/, "")
      if (!block) { if ($1 != "replace") next; sub(/^replace[ \t]+/, "") }
      $1 = $1
      if ($2 == "=>" && NF == 4) print $1, $3, $4
      else if ($3 == "=>" && NF == 5) print $1 "@" $2, $4, $5
    }'
}

# --- the upgrade: K3s's Kubernetes fork one version later ---------------------------------------------
retarget_kubernetes() {
  local fork="github.com/k3s-io/kubernetes" to="$UPGRADE_KUBERNETES" from old new ver edits=() left
  from="$(replaces | awk -v f="$fork" '$1 == "k8s.io/kubernetes" && $2 == f { print $3; exit }')"
  [ -n "$from" ] || die "K3s $K3S_BUILD_GO_VERSION's go.mod does not replace k8s.io/kubernetes with $fork: the upgrade build (K3S_UPGRADE_KUBERNETES) cannot re-point it"
  [ "$from" != "$to" ] || die "K3S_UPGRADE_KUBERNETES=$to in versions.env is the version K3s $K3S_BUILD_GO_VERSION already uses: nothing to upgrade (set a later github.com/k3s-io/kubernetes version)"
  while read -r old new ver; do
    case "$new" in "$fork"|"$fork"/staging/src/*) ;; *) continue ;; esac
    [ "$ver" = "$from" ] || continue
    edits+=("-replace=$old=$new@$to")
  done < <(replaces)
  log "re-pointing ${#edits[@]} replaces from $fork $from to $to (go mod edit -replace)"
  (cd "$SRC" && GOWORK=off go mod edit "${edits[@]}") || die "go mod edit failed in $SRC"
  left="$(replaces | awk -v f="$fork" -v v="$from" '($2 == f || index($2, f "/staging/src/") == 1) && $3 == v { print $1 }')"
  [ -z "$left" ] || die "replaces still at $fork $from after go mod edit: $left"
  log "resolving K3s's dependencies again (-mod=mod; GONOSUMDB=$GONOSUMDB)"
  (cd "$SRC" && GOWORK=off go list -mod=mod -tags "$TAGS" -deps ./cmd/server ./cmd/k3s >/dev/null) \
    || die "K3s's dependencies do not resolve with $fork $to (K3S_UPGRADE_KUBERNETES; see the output above)"
}

# --- the images (pause, echo) and the air-gap archive ------------------------------------------------
# image_source NAME VAR [NAME_KEY WANTED]: where images/NAME.tar comes from: "file" (the air-gap variable VAR
# names one), "keep" (adding missing files to a cached build, and it is verified there, under the name
# build-info.env's NAME_KEY records, if given, being WANTED) or "build".
image_source() {
  if [ -n "${!2:-}" ]; then echo file
  elif [ -n "$REUSE" ] && verified "images/$1.tar" && { [ -z "${3:-}" ] || [ "$(info "$3")" = "$4" ]; }; then echo keep
  else echo build
  fi
}
build_images() {
  local sandbox="$1" bindir="$WORK/images-bin" pause echo airgap tools=() t
  mkdir -p "$bindir"
  pause="$(image_source pause K3S_PAUSE_IMAGE_TAR)"
  echo="$(image_source echo K3S_ECHO_IMAGE_TAR ECHO_IMAGE "$ECHO_IMAGE")"
  airgap="build"
  [ -n "${K3S_AIRGAP_IMAGES_TAR:-}" ] && airgap="file"
  case "$pause $echo" in *build*) tools+=(./cmd/mkimage) ;; esac
  [ "$pause" = build ] && tools+=(./cmd/pause)
  [ "$echo" = build ] && tools+=(./cmd/echo)
  [ "$airgap" = build ] && tools+=(./cmd/mergeimages)
  if [ "${#tools[@]}" -gt 0 ]; then
    command -v go >/dev/null 2>&1 || die "Go is needed to build the images (or set K3S_PAUSE_IMAGE_TAR, K3S_ECHO_IMAGE_TAR and K3S_AIRGAP_IMAGES_TAR)"
    [ -f "$IMAGES_SRC/go.mod" ] || die "missing $IMAGES_SRC/go.mod"
    t="$(now)"
    log "building the image tools and programs (static, CGO_ENABLED=0): ${tools[*]}"
    (cd "$IMAGES_SRC" && GOWORK=off CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$bindir/" "${tools[@]}") \
      || die "building scripts/images failed"
    log "image tools built in $(since "$t")"
  fi
  case "$pause" in
    file)
      [ -s "$K3S_PAUSE_IMAGE_TAR" ] || die "K3S_PAUSE_IMAGE_TAR=$K3S_PAUSE_IMAGE_TAR is not a file"
      install -m 0644 "$K3S_PAUSE_IMAGE_TAR" "$OUT/images/pause.tar"
      log "pause image: taken from $K3S_PAUSE_IMAGE_TAR" ;;
    keep) log "pause image: kept (verified) $OUT/images/pause.tar" ;;
    build)
      "$bindir/mkimage" -binary "$bindir/pause" -path /pause -tag "$sandbox" -user 65535:65535 \
        -out "$OUT/images/pause.tar" || die "packing the pause image failed" ;;
  esac
  case "$echo" in
    file)
      [ -s "$K3S_ECHO_IMAGE_TAR" ] || die "K3S_ECHO_IMAGE_TAR=$K3S_ECHO_IMAGE_TAR is not a file"
      install -m 0644 "$K3S_ECHO_IMAGE_TAR" "$OUT/images/echo.tar"
      log "echo image: taken from $K3S_ECHO_IMAGE_TAR" ;;
    keep) log "echo image: kept (verified) $OUT/images/echo.tar" ;;
    build)
      "$bindir/mkimage" -binary "$bindir/echo" -path /echo -tag "$ECHO_IMAGE" -user 65534:65534 -ports 8080/tcp \
        -out "$OUT/images/echo.tar" || die "packing the echo image failed" ;;
  esac
  if [ "$airgap" = file ]; then
    [ -s "$K3S_AIRGAP_IMAGES_TAR" ] || die "K3S_AIRGAP_IMAGES_TAR=$K3S_AIRGAP_IMAGES_TAR is not a file"
    install -m 0644 "$K3S_AIRGAP_IMAGES_TAR" "$OUT/$AIRGAP"
    log "air-gap images archive: taken from $K3S_AIRGAP_IMAGES_TAR"
  else
    "$bindir/mergeimages" -out "$OUT/$AIRGAP" "$OUT/images/pause.tar" "$OUT/images/echo.tar" \
      || die "writing the air-gap images archive $AIRGAP (scripts/images/cmd/mergeimages) failed"
  fi
  log "images: $sandbox ($(size_of "$OUT/images/pause.tar")), $ECHO_IMAGE ($(size_of "$OUT/images/echo.tar")); both in $AIRGAP ($(size_of "$OUT/$AIRGAP"))"
}

# --- K3s itself ---------------------------------------------------------------------------------------
build_k3s() {
  [ -n "${K3S_BUILD_GO_VERSION:-}" ] || die "K3S_BUILD_GO_VERSION is not set in versions.env (the K3s module version to build)"
  need_build_tools
  local module="github.com/k3s-io/k3s" json srcdir sum commit t
  mkdir -p "$WORK"

  # 1. the module source, checked against the pinned hash, copied to a writable main-module directory
  t="$(now)"
  log "fetching $module@$K3S_BUILD_GO_VERSION"
  json="$(cd "$WORK" && GONOSUMDB="${GONOSUMDB:+$GONOSUMDB,}$module" GOWORK=off \
    go mod download -json "$module@$K3S_BUILD_GO_VERSION" 2>&1)" || die "the Go module proxy does not serve $module@$K3S_BUILD_GO_VERSION:
$json"
  srcdir="$(printf '%s\n' "$json" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p' | head -n1)"
  sum="$(printf '%s\n' "$json" | sed -n 's/^[[:space:]]*"Sum": "\(.*\)",\{0,1\}$/\1/p' | head -n1)"
  commit="$(printf '%s\n' "$json" | sed -n 's/^[[:space:]]*"Hash": "\([0-9a-f]\{40\}\)".*$/\1/p' | head -n1)"
  [ -d "$srcdir" ] || die "go mod download gave no source directory:
$json"
  if [ -n "${K3S_BUILD_GO_SUM:-}" ]; then
    [ "$sum" = "$K3S_BUILD_GO_SUM" ] || die "checksum mismatch for $module@$K3S_BUILD_GO_VERSION: got $sum, versions.env pins K3S_BUILD_GO_SUM=$K3S_BUILD_GO_SUM"
  else
    log "WARNING: K3S_BUILD_GO_SUM is not pinned in versions.env; the module's hash is $sum"
  fi
  if [ -z "$commit" ]; then
    commit="$(printf '%s\n' "$K3S_BUILD_GO_VERSION" | sed -n 's/.*-\([0-9a-f]\{12\}\)$/\1/p')"
  fi
  # K3s's name of an untagged build carries the commit: it must be this one.
  local named
  named="$(printf '%s\n' "$VERSION" | sed -n 's/^.*+k3s-\([0-9a-f]\{8\}\)\(-dirty\)\{0,1\}$/\1/p')"
  [ -z "$named" ] || [ "$named" = "${commit:0:8}" ] \
    || die "$VERSION_VAR=$VERSION names commit $named, but K3S_BUILD_GO_VERSION=$K3S_BUILD_GO_VERSION is commit ${commit:0:8}"
  SRC="$WORK/src"
  rm -rf "$SRC" "$WORK/data"
  cp -a "$srcdir" "$SRC"
  chmod -R u+w "$SRC"
  [ "$BUILD" = upgrade ] && retarget_kubernetes
  log "downloading K3s's dependencies (go mod download)"
  (cd "$SRC" && GOWORK=off go mod download) || die "downloading K3s's dependencies failed"
  log "module source and dependencies ready in $(since "$t")"

  # 2. versions, the way scripts/version.sh of the module derives them
  local k8s k8s_module k8s_sum containerd_path containerd_version crictl runc_version cni_version flannel kube_router cri_dockerd
  k8s_module="$(mod_field k8s.io/kubernetes Path)@$(mod_field k8s.io/kubernetes Version)"
  k8s_sum="$(awk -v m="${k8s_module%@*}" -v v="${k8s_module##*@}" '$1 == m && $2 == v { print $3; exit }' "$SRC/go.sum")"
  if [ "$BUILD" = upgrade ]; then
    [ -n "${K3S_UPGRADE_KUBERNETES_SUM:-}" ] || die "K3S_UPGRADE_KUBERNETES_SUM is not set in versions.env (the h1: hash of github.com/k3s-io/kubernetes@$UPGRADE_KUBERNETES; the checksum database does not know it)"
    [ "$k8s_sum" = "$K3S_UPGRADE_KUBERNETES_SUM" ] \
      || die "checksum mismatch for $k8s_module: the module proxy served ${k8s_sum:-nothing}, versions.env pins $K3S_UPGRADE_KUBERNETES_SUM"
  fi
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
  case "$VERSION" in "$k8s"+*|"$k8s"-*) ;; *) die "$VERSION_VAR=$VERSION in versions.env does not match the module's Kubernetes $k8s ($k8s_module)" ;; esac
  SANDBOX_IMAGE="$(sed -n '/Name: *"pause-image"/,/Value:/s/^.*Value: *"\([^"]*\)".*$/\1/p' "$SRC/pkg/cli/cmds/agent.go" | head -n1)"
  [ -n "$SANDBOX_IMAGE" ] || SANDBOX_IMAGE="$SANDBOX_IMAGE_DEFAULT"
  case "$SANDBOX_IMAGE" in */*/*) ;; *) SANDBOX_IMAGE="docker.io/$SANDBOX_IMAGE" ;; esac
  log "K3s $VERSION ($BUILD build, commit ${commit:0:8}): Kubernetes $k8s ($k8s_module), containerd $containerd_version, runc $runc_version, CNI plugins $cni_version, flannel $flannel"

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
  local gover build_date pkg="github.com/k3s-io/k3s" versionflags tree=clean bin="$WORK/data/bin"
  [ "$BUILD" = upgrade ] && tree=dirty
  gover="$(go env GOVERSION)"
  build_date="$(date -u '+%Y-%m-%dT%H:%M:%SZ')"
  versionflags="
    -X $pkg/pkg/version.Version=$VERSION
    -X $pkg/pkg/version.GitCommit=${commit:0:8}
    -X $pkg/pkg/version.UpstreamGolang=$gover
    -X k8s.io/client-go/pkg/version.gitVersion=$VERSION
    -X k8s.io/client-go/pkg/version.gitCommit=$commit
    -X k8s.io/client-go/pkg/version.gitTreeState=$tree
    -X k8s.io/client-go/pkg/version.buildDate=$build_date
    -X k8s.io/component-base/version.gitVersion=$VERSION
    -X k8s.io/component-base/version.gitCommit=$commit
    -X k8s.io/component-base/version.gitTreeState=$tree
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
    "${timed[@]}" go build "${MODFLAG[@]}" -tags "$TAGS" -buildvcs=false -ldflags "$versionflags -w -s" -o "$bin/k3s" ./cmd/server) \
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
  (cd "$dir" && GOWORK=off GOFLAGS=-mod=readonly CGO_ENABLED=1 go build -tags "${TAGS/netcgo/netgo}" -buildvcs=false \
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
  (cd "$SRC" && GOWORK=off CGO_ENABLED=0 go build "${MODFLAG[@]}" -tags urfave_cli_no_docs -buildvcs=false \
    -ldflags "-X $pkg/pkg/version.Version=$VERSION -X $pkg/pkg/version.GitCommit=${commit:0:8} -X $pkg/pkg/version.UpstreamGolang=$gover -w -s -extldflags -static" \
    -o "$OUT/k3s.tmp" ./cmd/k3s) || die "compiling the outer k3s (./cmd/k3s) failed"
  mv -f "$OUT/k3s.tmp" "$OUT/k3s"
  install -m 0755 "$SRC/install.sh" "$OUT/install.sh"
  log "k3s packaged: $(size_of "$OUT/k3s") in $(since "$t")"
  # What was built (the upgrade's edited go.mod and go.sum), for reference; a rebuild copies the module afresh
  # and Go's build cache is what makes it fast.
  cp -f "$SRC/go.mod" "$SRC/go.sum" "$WORK/"
  rm -rf "$SRC"

  BUILD_INFO_EXTRA="K3S_COMMIT=$commit
K3S_GO_VERSION=$K3S_BUILD_GO_VERSION
K3S_GO_SUM=$sum
KUBERNETES_VERSION=$k8s
KUBERNETES_MODULE=$k8s_module
KUBERNETES_MODULE_SUM=$k8s_sum
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
# build-info.env keys this script writes at the top every time; the others describe how k3s was made.
HEAD_KEYS="K3S_VERSION K3S_BUILD K3S_SHA256 K3S_BYTES SANDBOX_IMAGE ECHO_IMAGE PAUSE_IMAGE_SHA256 ECHO_IMAGE_SHA256 AIRGAP_IMAGES_SHA256 BUILD_SECONDS"
SANDBOX_IMAGE="$SANDBOX_IMAGE_DEFAULT"
BUILD_INFO_EXTRA=""
BUILD_SECONDS=""
if [ -n "$REUSE" ]; then
  # Keep what the cached build-info.env says about the binary, and the sandbox image's name (the echo image is
  # kept only under the name wanted now).
  SANDBOX_IMAGE="$(info SANDBOX_IMAGE)"; SANDBOX_IMAGE="${SANDBOX_IMAGE:-$SANDBOX_IMAGE_DEFAULT}"
  BUILD_SECONDS="$(info BUILD_SECONDS)"
  BUILD_INFO_EXTRA="$(awk -v head=" $HEAD_KEYS " '/^[A-Z0-9_]+=/ { k = $0; sub(/=.*/, "", k); if (index(head, " " k " ") == 0) print }' "$OUT/build-info.env")"
  kept="$(info KUBERNETES_VERSION)"
  kept="${kept:+Kubernetes $kept}"
  log "k3s: kept $OUT/k3s (${kept:-taken from $(info K3S_SOURCE)}${BUILD_SECONDS:+, its build took ${BUILD_SECONDS}s})"
elif [ -n "${K3S_BINARY:-}" ]; then
  [ -f "$K3S_BINARY" ] || die "K3S_BINARY=$K3S_BINARY is not a file"
  install -m 0755 "$K3S_BINARY" "$OUT/k3s.tmp" && mv -f "$OUT/k3s.tmp" "$OUT/k3s"
  got="$("$OUT/k3s" --version 2>/dev/null | head -n1 || true)"
  log "k3s: taken from $K3S_BINARY (${got:-version unknown})"
  case "$got" in *" $VERSION "*) ;; *) log "WARNING: versions.env pins $VERSION_VAR=$VERSION but $K3S_BINARY reports: ${got:-nothing}" ;; esac
  BUILD_INFO_EXTRA="K3S_SOURCE=$K3S_BINARY"
else
  build_k3s
fi
build_images "$SANDBOX_IMAGE"

# The release's file names: on amd64 the binary is k3s itself, elsewhere k3s-<arch> (a hard link).
[ "$RELEASE_BINARY" = k3s ] || ln -f "$OUT/k3s" "$OUT/$RELEASE_BINARY"
(cd "$OUT" && sha256sum k3s images/pause.tar images/echo.tar "$AIRGAP" > sha256sum.tmp && mv -f sha256sum.tmp sha256sum)
(cd "$OUT" && sha256sum "$AIRGAP" "$RELEASE_BINARY" > "$RELEASE_SUMS.tmp" && mv -f "$RELEASE_SUMS.tmp" "$RELEASE_SUMS")
cat > "$OUT/build-info.env.tmp" <<EOF
# Written by scripts/build-k3s.sh on $(date -u '+%Y-%m-%dT%H:%M:%SZ')
K3S_VERSION=$VERSION
K3S_BUILD=$BUILD
K3S_SHA256=$(sha256_of "$OUT/k3s")
K3S_BYTES=$(stat -c %s "$OUT/k3s")
SANDBOX_IMAGE=$SANDBOX_IMAGE
ECHO_IMAGE=$ECHO_IMAGE
PAUSE_IMAGE_SHA256=$(sha256_of "$OUT/images/pause.tar")
ECHO_IMAGE_SHA256=$(sha256_of "$OUT/images/echo.tar")
AIRGAP_IMAGES_SHA256=$(sha256_of "$OUT/$AIRGAP")
BUILD_SECONDS=${BUILD_SECONDS:-$(awk -v a="$T0" -v b="$(now)" 'BEGIN { printf "%d", b - a }')}
$BUILD_INFO_EXTRA
EOF
mv -f "$OUT/build-info.env.tmp" "$OUT/build-info.env"
"$OUT/k3s" --version >&2 || die "$OUT/k3s does not run"
log "done in $(since "$T0"): $OUT ($(size_of "$OUT/k3s") k3s, sandbox image $SANDBOX_IMAGE, echo image $ECHO_IMAGE)"
echo "$OUT"
