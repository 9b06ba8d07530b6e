#!/usr/bin/env bash
# Builds the e2e's Traefik image from Traefik's Go module (no container registry here): the release of
# TRAEFIK_BUILD_VERSION (versions.env, the tag of traefik_image's default) built as a static binary and packed
# by scripts/images' mkimage into a one-binary image named like the release's (TRAEFIK_IMAGE, default
# k3spve.local/traefik:<version>), written as a docker archive that containerd imports.
#
#   $K3SPVE_CACHE/traefik/<version>/traefik.tar     the image
#   $K3SPVE_CACHE/traefik/<version>/build-info.env  TRAEFIK_VERSION, TRAEFIK_IMAGE, TRAEFIK_IMAGE_SHA256, BUILD_SECONDS
#
# A cached image whose checksum matches is kept (seconds). TRAEFIK_IMAGE_TAR=/path/to/traefik.tar takes a
# prebuilt archive instead (an air-gapped machine, or the release image saved elsewhere). The web dashboard's
# files come from Traefik's npm build, which the module does not carry: the API answers, the dashboard page is
# empty. A first build takes ~15 min on 2 cores (its dependencies: ~1 GB of modules).
#
# Usage: scripts/build-traefik.sh [--force]    Prints the output directory on stdout; progress goes to stderr.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${K3SPVE_CACHE:-$HOME/.cache/k3s-proxmox}"
log() { printf '[build-traefik] %s\n' "$*" >&2; }
die() { printf '[build-traefik] ERROR: %s\n' "$*" >&2; exit 1; }
case "${1:-}" in
  --force) FORCE=1 ;;
  "") FORCE="" ;;
  *) die "unknown argument: $1 (--force rebuilds)" ;;
esac

# shellcheck disable=SC1091
. "$ROOT/versions.env"
VERSION="${TRAEFIK_BUILD_VERSION:?TRAEFIK_BUILD_VERSION is not set in versions.env}"
MODULE=github.com/traefik/traefik/v3
IMAGE="${TRAEFIK_IMAGE:-k3spve.local/traefik:$VERSION}"
OUT="$CACHE/traefik/$VERSION"
mkdir -p "$OUT"
info() { sed -n "s/^$1=//p" "$OUT/build-info.env" 2>/dev/null; }
sha256_of() { sha256sum "$1" | cut -d' ' -f1; }

if [ -z "$FORCE" ] && [ -z "${TRAEFIK_IMAGE_TAR:-}" ] && [ -s "$OUT/traefik.tar" ] && [ "$(info TRAEFIK_IMAGE)" = "$IMAGE" ] \
  && [ "$(info TRAEFIK_IMAGE_SHA256)" = "$(sha256_of "$OUT/traefik.tar")" ]; then
  log "cached: $IMAGE ($OUT/traefik.tar, checksum verified)"
  echo "$OUT"
  exit 0
fi

start=$SECONDS
if [ -n "${TRAEFIK_IMAGE_TAR:-}" ]; then
  [ -s "$TRAEFIK_IMAGE_TAR" ] || die "TRAEFIK_IMAGE_TAR=$TRAEFIK_IMAGE_TAR is not a file"
  install -m 0644 "$TRAEFIK_IMAGE_TAR" "$OUT/traefik.tar.tmp"
  log "taken from $TRAEFIK_IMAGE_TAR (it must hold the image $IMAGE)"
else
  command -v go >/dev/null 2>&1 || die "Go is needed to build Traefik (or set TRAEFIK_IMAGE_TAR to a saved image)"
  log "fetching $MODULE@$VERSION from the Go module proxy"
  src="$(GOWORK=off GOFLAGS=-mod=mod go mod download -json "$MODULE@$VERSION" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')"
  [ -d "$src/cmd/traefik" ] || die "the module $MODULE@$VERSION has no cmd/traefik (is TRAEFIK_BUILD_VERSION a Traefik v3 release?)"
  # Its go.mod has replace directives, so `go install …@version` refuses it: built inside the module, whose
  # go.sum pins every dependency.
  log "building Traefik $VERSION (static, CGO_ENABLED=0; a first build fetches its dependencies)"
  (cd "$src" && GOWORK=off GOFLAGS=-mod=readonly CGO_ENABLED=0 go build -trimpath -buildvcs=false \
    -ldflags "-s -w -X $MODULE/pkg/version.Version=$VERSION" -o "$OUT/traefik" ./cmd/traefik) || die "building Traefik failed"
  log "packing the image $IMAGE"
  (cd "$ROOT/scripts/images" && GOWORK=off CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$OUT/mkimage" ./cmd/mkimage) \
    || die "building scripts/images/cmd/mkimage failed"
  "$OUT/mkimage" -binary "$OUT/traefik" -path /traefik -tag "$IMAGE" -user 65532:65532 -ports 8000/tcp,8443/tcp \
    -out "$OUT/traefik.tar.tmp" || die "packing the Traefik image failed"
  rm -f "$OUT/traefik" "$OUT/mkimage"
fi
mv -f "$OUT/traefik.tar.tmp" "$OUT/traefik.tar"
cat >"$OUT/build-info.env" <<EOF
TRAEFIK_VERSION=$VERSION
TRAEFIK_IMAGE=$IMAGE
TRAEFIK_IMAGE_SHA256=$(sha256_of "$OUT/traefik.tar")
BUILD_SECONDS=$((SECONDS - start))
EOF
log "done in $((SECONDS - start)) s: $IMAGE ($(du -h "$OUT/traefik.tar" | cut -f1))"
echo "$OUT"
