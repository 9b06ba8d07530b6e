#!/usr/bin/env bash
# Installs OpenTofu and the two Terraform providers the stack uses (bpg/proxmox, hashicorp/local) into a
# cache outside the repository, lays the providers out as a filesystem mirror and writes a CLI config, so
# `tofu init` (and `terraform init`) work with no network:
#
#   ${K3SPVE_CACHE:-~/.cache/k3s-proxmox}/tools/
#     bin/tofu                               the OpenTofu the Makefile and the tests use (a symlink)
#     opentofu/<version>/tofu                OpenTofu built from its Go module
#     providers/<name>/<version>/...         provider binaries built from their Go modules
#     mirror/<host>/<ns>/<type>/<version>/<os_arch>/terraform-provider-<type>_v<version>
#     tofurc                                 TF_CLI_CONFIG_FILE=<this> makes init take them from the mirror
#     registry-host                          the registry host name tofu gives "bpg/proxmox" (asked of tofu)
#
# Versions come from versions.env (the one place they are pinned). Everything is keyed by version, so a
# re-run with everything present only checks and finishes in about a second.
#
# A suitable OpenTofu (>= 1.8: `tofu test` with override_resource) already on PATH is used instead of
# building one. Air-gapped machines: point these at binaries you brought along and nothing is built:
#   TOFU_BIN=/path/to/tofu  PROXMOX_PROVIDER_BIN=/path/to/provider  LOCAL_PROVIDER_BIN=/path/to/provider
# Otherwise building needs Go (>= 1.24; OpenTofu's module asks for 1.26, which Go fetches itself through
# the module proxy when GOTOOLCHAIN allows) and a reachable Go module proxy.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${K3SPVE_CACHE:-$HOME/.cache/k3s-proxmox}"
TOOLS="$CACHE/tools"
MIRROR="$TOOLS/mirror"
TOFURC="$TOOLS/tofurc"
export CHECKPOINT_DISABLE=1 # no version check-ins from terraform

log() { printf '[setup-tools] %s\n' "$*" >&2; }
die() { printf '[setup-tools] ERROR: %s\n' "$*" >&2; exit 1; }
now() { cut -d' ' -f1 /proc/uptime 2>/dev/null || date +%s; } # monotonic where /proc is there
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1fs", b - a }'; }
size_of() { du -Dh "$1" | cut -f1; }
T0="$(now)"

# --- pinned versions ---------------------------------------------------------------------------------
[ -f "$ROOT/versions.env" ] || die "missing $ROOT/versions.env"
# shellcheck disable=SC1091
. "$ROOT/versions.env"
for v in OPENTOFU_VERSION PROXMOX_PROVIDER_VERSION LOCAL_PROVIDER_VERSION LOCAL_PROVIDER_GO_VERSION; do
  [ -n "${!v:-}" ] || die "$v is not set in versions.env"
done

case "$(uname -m)" in
  x86_64 | amd64) arch=amd64 ;;
  aarch64 | arm64) arch=arm64 ;;
  *) arch="$(uname -m)" ;;
esac
OS_ARCH="$(uname -s | tr '[:upper:]' '[:lower:]')_$arch"
mkdir -p "$TOOLS/bin" "$MIRROR"

# Two runs at once (make -j, two terminals) must not build into the same files.
if command -v flock >/dev/null 2>&1; then
  exec 9>"$TOOLS/.lock"
  flock 9
fi

# --- helpers -----------------------------------------------------------------------------------------
need_go() {
  command -v go >/dev/null 2>&1 || die "Go is needed to build $1 (or set $2=/path/to/binary)"
}

# go_build MODULE VERSION PACKAGE OUT [LDFLAGS]
# Builds PACKAGE of MODULE@VERSION inside the downloaded module itself. That makes the module the main
# module, so its own go.mod (OpenTofu's `replace` of hcl included) and go.sum apply exactly as in an
# upstream build: the same effect as a wrapper module repeating the replace, without a copy of it to
# keep in step. -mod=readonly: nothing in the module cache is written.
go_build() {
  local module="$1" version="$2" pkg="$3" out="$4" ldflags="${5:-}" json dir
  json="$(cd "$TOOLS" && GOWORK=off GOFLAGS='' go mod download -json "$module@$version" 2>&1)" \
    || die "the Go module proxy does not serve $module@$version:
$json
Pick a version it serves (go list -m -versions $module) and update versions.env."
  dir="$(printf '%s\n' "$json" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')"
  [ -d "$dir" ] || die "go mod download gave no source directory for $module@$version"
  mkdir -p "$(dirname "$out")"
  (cd "$dir" && GOWORK=off GOFLAGS=-mod=readonly CGO_ENABLED=0 \
    go build -trimpath -ldflags "-s -w $ldflags" -o "$out.tmp" "$pkg") \
    || { rm -f "$out.tmp"; die "building $module@$version failed (see the Go errors above)"; }
  mv -f "$out.tmp" "$out"
}

# tofu_version BIN: prints the x.y.z OpenTofu version of BIN, or nothing if BIN is not OpenTofu.
tofu_version() {
  TF_CLI_CONFIG_FILE=/dev/null "$1" version 2>/dev/null | sed -n '1s/^OpenTofu v\([0-9][0-9.]*[^ ]*\).*/\1/p'
}

# version_ge A B: A >= B for dotted versions.
version_ge() {
  [ "$(printf '%s\n%s\n' "$1" "$2" | sort -V | head -n1)" = "$2" ]
}

# --- OpenTofu ----------------------------------------------------------------------------------------
# `tofu test` with override_resource needs OpenTofu >= 1.8.
TOFU_MIN=1.8.0
tofu=""
if [ -n "${TOFU_BIN:-}" ]; then
  [ -x "$TOFU_BIN" ] || die "TOFU_BIN=$TOFU_BIN is not an executable file"
  v="$(tofu_version "$TOFU_BIN")"
  if [ -z "$v" ] || ! version_ge "$v" "$TOFU_MIN"; then die "TOFU_BIN=$TOFU_BIN is not OpenTofu >= $TOFU_MIN"; fi
  tofu="$TOFU_BIN"
  log "OpenTofu $v: using TOFU_BIN=$tofu"
else
  # A suitable tofu already on PATH (other than our own link) is used as is.
  onpath="$(PATH="$(printf '%s' "$PATH" | tr ':' '\n' | grep -vxF "$TOOLS/bin" | paste -sd: -)" command -v tofu || true)"
  if [ -n "$onpath" ]; then
    v="$(tofu_version "$onpath")"
    if [ -n "$v" ] && version_ge "$v" "$TOFU_MIN"; then
      tofu="$onpath"
      log "OpenTofu $v: using $tofu from PATH"
    else
      log "ignoring $onpath on PATH (not OpenTofu >= $TOFU_MIN)"
    fi
  fi
fi
if [ -z "$tofu" ]; then
  tofu="$TOOLS/opentofu/$OPENTOFU_VERSION/tofu"
  if [ -x "$tofu" ] && [ "$(tofu_version "$tofu")" = "$OPENTOFU_VERSION" ]; then
    log "OpenTofu $OPENTOFU_VERSION: cached"
  else
    need_go "OpenTofu" TOFU_BIN
    log "OpenTofu $OPENTOFU_VERSION: building from its Go module (first time: about 4 minutes on 2 cores)..."
    t="$(now)"
    # version.dev=no: report "v1.12.6" rather than "v1.12.6-dev", as release builds do.
    go_build github.com/opentofu/opentofu "v$OPENTOFU_VERSION" ./cmd/tofu "$tofu" \
      "-X github.com/opentofu/opentofu/version.dev=no"
    [ "$(tofu_version "$tofu")" = "$OPENTOFU_VERSION" ] || die "the built $tofu does not report OpenTofu $OPENTOFU_VERSION"
    log "OpenTofu $OPENTOFU_VERSION: built in $(since "$t") ($(size_of "$tofu"))"
  fi
fi
[ "$(readlink "$TOOLS/bin/tofu" 2>/dev/null)" = "$tofu" ] || ln -sfn "$tofu" "$TOOLS/bin/tofu"

# --- providers ---------------------------------------------------------------------------------------
# provider NAME VERSION MODULE GO_VERSION OVERRIDE_VAR LDFLAGS -> sets PROVIDER_BIN
provider() {
  local name="$1" version="$2" module="$3" gover="$4" override="$5" ldflags="$6" bin t
  if [ -n "${!override:-}" ]; then
    bin="${!override}"
    [ -x "$bin" ] || die "$override=$bin is not an executable file"
    log "provider $name $version: using $override=$bin"
  else
    bin="$TOOLS/providers/$name/$version/terraform-provider-$name"
    # The Go module version is part of the key (a re-pinned commit rebuilds).
    if [ -x "$bin" ] && [ "$(cat "$bin.go-version" 2>/dev/null)" = "$module@$gover" ]; then
      log "provider $name $version: cached"
    else
      need_go "the $name provider" "$override"
      log "provider $name $version: building $module@$gover (first time: a few minutes)..."
      t="$(now)"
      go_build "$module" "$gover" . "$bin" "$ldflags"
      printf '%s\n' "$module@$gover" >"$bin.go-version"
      log "provider $name $version: built in $(since "$t") ($(size_of "$bin"))"
    fi
  fi
  PROVIDER_BIN="$bin"
}

provider proxmox "$PROXMOX_PROVIDER_VERSION" github.com/bpg/terraform-provider-proxmox \
  "v$PROXMOX_PROVIDER_VERSION" PROXMOX_PROVIDER_BIN "-X main.version=$PROXMOX_PROVIDER_VERSION"
PROXMOX_BIN="$PROVIDER_BIN"
# hashicorp/local: its go.mod declares github.com/terraform-providers/terraform-provider-local (no /v2),
# so a v2 tag cannot be named as a Go version; LOCAL_PROVIDER_GO_VERSION is the pseudo-version of the
# release tag's commit.
provider local "$LOCAL_PROVIDER_VERSION" github.com/terraform-providers/terraform-provider-local \
  "$LOCAL_PROVIDER_GO_VERSION" LOCAL_PROVIDER_BIN ""
LOCAL_BIN="$PROVIDER_BIN"

# --- registry host names, asked of the CLIs themselves ----------------------------------------------
# The mirror layout starts with the host name the CLI gives a "namespace/type" source address. OpenTofu
# and Terraform each have their own default; ask them rather than assume. Cached per CLI binary (path,
# size and time).
registry_host() { # registry_host CLI-BINARY
  local cli="$1" key cachefile tmp host
  key="$(printf '%s %s' "$(readlink -f "$cli")" "$(stat -Lc '%s %Y' "$cli")" | cksum | cut -d' ' -f1)"
  cachefile="$TOOLS/.host-$key"
  if [ -s "$cachefile" ]; then cat "$cachefile"; return; fi
  tmp="$(mktemp -d)"
  printf 'terraform {\n  required_providers {\n    proxmox = { source = "bpg/proxmox" }\n  }\n}\n' >"$tmp/main.tf"
  host="$(cd "$tmp" && TF_CLI_CONFIG_FILE=/dev/null "$cli" providers -no-color 2>/dev/null \
    | sed -n 's|.*provider\[\([^]/]*\)/bpg/proxmox\].*|\1|p' | head -n1)" || true
  rm -rf "$tmp"
  [ -n "$host" ] || return 0
  printf '%s\n' "$host" >"$cachefile"
  printf '%s\n' "$host"
}

hosts=()
h="$(registry_host "$tofu")"
[ -n "$h" ] || die "could not learn the provider registry host name from '$tofu providers'"
hosts+=("$h")
[ "$(cat "$TOOLS/registry-host" 2>/dev/null)" = "$h" ] || printf '%s\n' "$h" >"$TOOLS/registry-host"
# A Terraform on PATH can use the same mirror (the Makefile falls back to it when no tofu is on PATH).
if command -v terraform >/dev/null 2>&1; then
  h="$(registry_host "$(command -v terraform)")"
  if [ -n "$h" ] && [ "$h" != "${hosts[0]}" ]; then hosts+=("$h"); fi
fi

# --- filesystem mirror -------------------------------------------------------------------------------
# mirror_put HOST NAMESPACE TYPE VERSION BINARY (the "unpacked" layout: a directory per platform)
mirror_put() {
  local dir="$MIRROR/$1/$2/$3/$4/$OS_ARCH" file
  file="$dir/terraform-provider-$3_v$4"
  if [ -f "$file" ] && cmp -s "$file" "$5"; then return; fi
  mkdir -p "$dir"
  rm -f "$file"
  ln "$5" "$file" 2>/dev/null || cp "$5" "$file"
  chmod 0755 "$file"
  log "mirror: $1/$2/$3 $4 ($OS_ARCH)"
}
include=""
for host in "${hosts[@]}"; do
  mirror_put "$host" bpg proxmox "$PROXMOX_PROVIDER_VERSION" "$PROXMOX_BIN"
  mirror_put "$host" hashicorp local "$LOCAL_PROVIDER_VERSION" "$LOCAL_BIN"
  include="$include\"$host/bpg/proxmox\", \"$host/hashicorp/local\", "
done
include="${include%, }"

# --- CLI configuration -------------------------------------------------------------------------------
tofurc_content="# Written by scripts/setup-tools.sh. Use with TF_CLI_CONFIG_FILE=$TOFURC
# The project's providers come from the local mirror (no network); any other provider from its registry.
disable_checkpoint = true

provider_installation {
  filesystem_mirror {
    path    = \"$MIRROR\"
    include = [$include]
  }
  direct {
    exclude = [$include]
  }
}
"
if ! printf '%s' "$tofurc_content" | cmp -s - "$TOFURC"; then
  printf '%s' "$tofurc_content" >"$TOFURC.tmp" && mv -f "$TOFURC.tmp" "$TOFURC"
  log "wrote $TOFURC"
fi

log "ready in $(since "$T0"): $TOOLS/bin/tofu -> $tofu; providers proxmox $PROXMOX_PROVIDER_VERSION, local $LOCAL_PROVIDER_VERSION"
log "offline init: TF_CLI_CONFIG_FILE=$TOFURC $TOOLS/bin/tofu init"
