#!/usr/bin/env bash
# Regenerates the Kubernetes OpenAPI schema that `make test` validates the generated manifests against,
# strictly and offline (__tests__/k8s/validate.ts):
#
#   scripts/k8s-schema.sh                      # from the Go module pinned in versions.env
#   K8S_SWAGGER_JSON=/path/to/swagger.json scripts/k8s-schema.sh   # air-gapped: from a copy of the file
#
# writes __tests__/k8s/schema/kubernetes-<kubernetes version>.json (and removes the files of other versions);
# commit the result. Run it after changing KUBERNETES_SCHEMA_MODULE in versions.env, which names the Kubernetes
# module of the pinned K3s (K3s's go.mod replaces k8s.io/kubernetes with it), e.g.
# github.com/k3s-io/kubernetes@v1.34.0-k3s1 -> kubernetes-v1.34.0.json.
#
# The source is the module's api/openapi-spec/swagger.json (OpenAPI v2, ~3.8 MB), fetched with
# `go mod download` (from the module cache when it is there) and verified the way K3s's own build would: the
# K3s module of K3S_GO_VERSION is checked against K3S_GO_SUM, its go.mod must replace k8s.io/kubernetes with
# KUBERNETES_SCHEMA_MODULE, and the Kubernetes module must match the hashes in its go.sum (the checksum database
# does not know either module). A K8S_SWAGGER_JSON file is taken as it is. scripts/k8s-schema-prune.ts keeps only the
# definitions of GA kinds (API versions v1, v2, ...) and what they reference, without descriptions, with keys
# sorted and one definition per line, so a schema update is a readable diff.
#
# Needs: node_modules (make setup); Go unless K8S_SWAGGER_JSON is set.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

log() { printf '[k8s-schema] %s\n' "$*" >&2; }
die() { printf '[k8s-schema] ERROR: %s\n' "$*" >&2; exit 1; }

[ -f "$ROOT/versions.env" ] || die "missing $ROOT/versions.env"
# shellcheck disable=SC1091
. "$ROOT/versions.env"
MODULE="${KUBERNETES_SCHEMA_MODULE:-}"
[ -n "$MODULE" ] || die "KUBERNETES_SCHEMA_MODULE is not set in versions.env (e.g. github.com/k3s-io/kubernetes@v1.34.0-k3s1)"
case "$MODULE" in
  *@v*) ;;
  *) die "KUBERNETES_SCHEMA_MODULE=$MODULE is not <module>@<version>" ;;
esac
MODULE_VERSION="${MODULE##*@}"
# The Kubernetes version: the module version without K3s's -k3sN suffix.
K8S_VERSION="$(printf '%s\n' "$MODULE_VERSION" | sed -E 's/-k3s[0-9]+$//')"
[[ "$K8S_VERSION" =~ ^v[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.]+)?$ ]] \
  || die "cannot tell the Kubernetes version from $MODULE (expected e.g. v1.34.0-k3s1)"

# json_field JSON FIELD: a string field of `go mod download -json` output.
json_field() { printf '%s\n' "$1" | sed -n "s/^[[:space:]]*\"$2\": \"\(.*\)\",\{0,1\}\$/\1/p" | head -n1; }

# download MODULE@VERSION: `go mod download -json` in the throwaway main module $WORK (its go.sum applies);
# the checksum database is skipped for MODULE (it knows neither K3s's untagged commits nor k3s-io/kubernetes,
# whose go.mod names k8s.io/kubernetes): the hashes are checked against the pins instead, see below.
download() {
  local json
  json="$(cd "$WORK" && GONOSUMDB="${GONOSUMDB:+$GONOSUMDB,}${1%@*}" GOWORK=off GOFLAGS=-mod=mod \
    go mod download -json "$1" 2>&1)" || die "could not download $1 (does the Go module proxy serve it?):
$json"
  [ -d "$(json_field "$json" Dir)" ] || die "go mod download gave no source directory for $1:
$json"
  printf '%s\n' "$json"
}

if [ -n "${K8S_SWAGGER_JSON:-}" ]; then
  SWAGGER="$K8S_SWAGGER_JSON"
  [ -f "$SWAGGER" ] || die "K8S_SWAGGER_JSON=$SWAGGER: no such file"
  log "using $SWAGGER (K8S_SWAGGER_JSON) as the swagger.json of $MODULE (not verified)"
else
  command -v go >/dev/null 2>&1 || die "Go is needed to fetch $MODULE (or set K8S_SWAGGER_JSON=/path/to/api/openapi-spec/swagger.json)"
  [ -n "${K3S_GO_VERSION:-}" ] || die "K3S_GO_VERSION is not set in versions.env"
  WORK="$(mktemp -d)"
  trap 'rm -rf "$WORK"' EXIT
  # A throwaway main module, so no go.mod of the caller's (or a go.work) gets in the way.
  (cd "$WORK" && GOWORK=off go mod init k8s-schema.invalid/tmp >/dev/null 2>&1) || die "go mod init failed in $WORK"

  # The chain of trust: versions.env pins K3s's hash (K3S_GO_SUM); K3s's go.sum pins the Kubernetes module's.
  k3s="github.com/k3s-io/k3s@$K3S_GO_VERSION"
  log "go mod download $k3s (for its go.mod and go.sum)"
  json="$(download "$k3s")"
  k3s_dir="$(json_field "$json" Dir)"
  if [ -n "${K3S_GO_SUM:-}" ]; then
    [ "$(json_field "$json" Sum)" = "$K3S_GO_SUM" ] \
      || die "checksum mismatch for $k3s: got $(json_field "$json" Sum), versions.env pins K3S_GO_SUM=$K3S_GO_SUM"
  else
    log "WARNING: K3S_GO_SUM is not pinned in versions.env; $k3s is not verified"
  fi
  replaced="$(sed -n -E 's#^[[:space:]]*(replace[[:space:]]+)?k8s\.io/kubernetes[[:space:]]+=>[[:space:]]+([^[:space:]]+)[[:space:]]+([^[:space:]]+)[[:space:]]*$#\2@\3#p' \
    "$k3s_dir/go.mod" | head -n1)"
  [ "$replaced" = "$MODULE" ] || die "KUBERNETES_SCHEMA_MODULE=$MODULE, but K3s $K3S_GO_VERSION (K3S_GO_VERSION) replaces k8s.io/kubernetes with ${replaced:-nothing}: set KUBERNETES_SCHEMA_MODULE=$replaced in versions.env"
  grep -F "${MODULE%@*} ${MODULE_VERSION} " "$k3s_dir/go.sum" >"$WORK/go.sum" || true
  grep -F "${MODULE%@*} ${MODULE_VERSION}/go.mod " "$k3s_dir/go.sum" >>"$WORK/go.sum" || true
  [ "$(wc -l <"$WORK/go.sum")" -eq 2 ] || die "K3s's go.sum has no hashes for $MODULE"

  log "go mod download $MODULE"
  json="$(download "$MODULE")"
  # go itself refuses a download that does not match go.sum; checked here again, explicitly.
  for field in Sum GoModSum; do
    got="$(json_field "$json" "$field")"
    suffix=""
    [ "$field" = GoModSum ] && suffix="/go.mod"
    grep -qxF "${MODULE%@*} ${MODULE_VERSION}$suffix $got" "$WORK/go.sum" \
      || die "checksum mismatch for $MODULE$suffix: got ${got:-nothing}; K3s's go.sum has: $(tr '\n' ' ' <"$WORK/go.sum")"
  done
  SWAGGER="$(json_field "$json" Dir)/api/openapi-spec/swagger.json"
  [ -f "$SWAGGER" ] || die "$MODULE has no api/openapi-spec/swagger.json (is it a Kubernetes module?)"
fi

OUT_DIR="$ROOT/__tests__/k8s/schema"
OUT="$OUT_DIR/kubernetes-$K8S_VERSION.json"
mkdir -p "$OUT_DIR"
npx --no-install ts-node --transpile-only "$ROOT/scripts/k8s-schema-prune.ts" "$SWAGGER" "$OUT.tmp" "$MODULE" "$K8S_VERSION" \
  || { rm -f "$OUT.tmp"; die "pruning $SWAGGER failed"; }
mv -f "$OUT.tmp" "$OUT"
for old in "$OUT_DIR"/kubernetes-*.json; do
  [ "$old" = "$OUT" ] || { rm -f "$old"; log "removed $(basename "$old") (another version)"; }
done
log "wrote ${OUT#"$ROOT"/} ($(wc -c <"$OUT") bytes); commit __tests__/k8s/schema/"
