#!/usr/bin/env bash
# Regenerates the Kubernetes OpenAPI schemas that `make test` validates the generated manifests against,
# strictly and offline (__tests__/k8s/validate.ts), one per Kubernetes that versions.env names:
#
#   KUBERNETES_SCHEMA_MODULE          the Kubernetes of the e2e's K3s build (K3s's go.mod replaces k8s.io/kubernetes
#                                     with it), e.g. github.com/k3s-io/kubernetes@v1.34.0-k3s1 -> kubernetes-v1.34.0.json
#   KUBERNETES_SCHEMA_MODULE_DEFAULT  the users' default Kubernetes (the upstream module),
#                                     e.g. k8s.io/kubernetes@v1.36.3 -> kubernetes-v1.36.3.json
#
#   scripts/k8s-schema.sh              # from the Go modules pinned in versions.env
#   K8S_SWAGGER_JSON=/path/to/swagger.json K8S_SWAGGER_JSON_DEFAULT=/path/to/other/swagger.json scripts/k8s-schema.sh
#                                      # air-gapped: from copies of the files (either one, or both)
#
# writes __tests__/k8s/schema/kubernetes-<kubernetes version>.json for both (and removes the files of other
# versions); commit the result. Run it after changing either variable in versions.env.
#
# The source is each module's api/openapi-spec/swagger.json (OpenAPI v2, ~4 MB), fetched with `go mod download`
# (from the module cache when it is there) and verified:
# - KUBERNETES_SCHEMA_MODULE the way K3s's own build would (the checksum database knows neither module): the
#   K3s module of K3S_BUILD_GO_VERSION is checked against K3S_BUILD_GO_SUM, its go.mod must replace
#   k8s.io/kubernetes with KUBERNETES_SCHEMA_MODULE, and the Kubernetes module must match the hashes in its go.sum;
# - KUBERNETES_SCHEMA_MODULE_DEFAULT by the go command against the checksum database (GOSUMDB), as any public
#   module; the script refuses to run with the checksum database turned off for it.
# A K8S_SWAGGER_JSON(_DEFAULT) file is taken as it is. scripts/k8s-schema-prune.ts keeps only the definitions of
# GA kinds (API versions v1, v2, ...) and what they reference, without descriptions, with keys sorted and one
# definition per line, so a schema update is a readable diff.
#
# Needs: node_modules (make setup); Go (>= the go directive of each module's go.mod: 1.26 for Kubernetes 1.36)
# unless both K8S_SWAGGER_JSON and K8S_SWAGGER_JSON_DEFAULT are set.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

log() { printf '[k8s-schema] %s\n' "$*" >&2; }
die() { printf '[k8s-schema] ERROR: %s\n' "$*" >&2; exit 1; }

[ -f "$ROOT/versions.env" ] || die "missing $ROOT/versions.env"
# shellcheck disable=SC1091
. "$ROOT/versions.env"

# kubernetes_version VAR MODULE: the Kubernetes version of MODULE (its version without K3s's -k3sN suffix).
kubernetes_version() {
  local module="$2" version
  [ -n "$module" ] || die "$1 is not set in versions.env (e.g. github.com/k3s-io/kubernetes@v1.34.0-k3s1 or k8s.io/kubernetes@v1.36.3)"
  case "$module" in
    *@v*) ;;
    *) die "$1=$module in versions.env is not <module>@<version>" ;;
  esac
  version="$(printf '%s\n' "${module##*@}" | sed -E 's/-k3s[0-9]+$//')"
  [[ "$version" =~ ^v[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.]+)?$ ]] \
    || die "cannot tell the Kubernetes version from $1=$module (expected e.g. v1.34.0-k3s1 or v1.36.3)"
  printf '%s\n' "$version"
}
E2E_MODULE="${KUBERNETES_SCHEMA_MODULE:-}"
DEFAULT_MODULE="${KUBERNETES_SCHEMA_MODULE_DEFAULT:-}"
E2E_VERSION="$(kubernetes_version KUBERNETES_SCHEMA_MODULE "$E2E_MODULE")"
DEFAULT_VERSION="$(kubernetes_version KUBERNETES_SCHEMA_MODULE_DEFAULT "$DEFAULT_MODULE")"
[ "$E2E_VERSION" != "$DEFAULT_VERSION" ] \
  || die "KUBERNETES_SCHEMA_MODULE=$E2E_MODULE and KUBERNETES_SCHEMA_MODULE_DEFAULT=$DEFAULT_MODULE are both Kubernetes $E2E_VERSION: the schemas are kept by version, so the two must differ"

# json_field JSON FIELD: a string field of `go mod download -json` output.
json_field() { printf '%s\n' "$1" | sed -n "s/^[[:space:]]*\"$2\": \"\(.*\)\",\{0,1\}\$/\1/p" | head -n1; }

# A throwaway main module, so no go.mod of the caller's (or a go.work) gets in the way (only if something is fetched).
WORK=""
if [ -z "${K8S_SWAGGER_JSON:-}" ] || [ -z "${K8S_SWAGGER_JSON_DEFAULT:-}" ]; then
  command -v go >/dev/null 2>&1 || die "Go is needed to fetch the Kubernetes modules (or set K8S_SWAGGER_JSON and K8S_SWAGGER_JSON_DEFAULT to copies of their api/openapi-spec/swagger.json)"
  WORK="$(mktemp -d)"
  trap 'rm -rf "$WORK"' EXIT
  (cd "$WORK" && GOWORK=off go mod init k8s-schema.invalid/tmp >/dev/null 2>&1) || die "go mod init failed in $WORK"
fi

# download MODULE@VERSION [NOSUMDB]: `go mod download -json` in the throwaway main module $WORK (its go.sum
# applies). With NOSUMDB the checksum database is skipped for MODULE (it knows neither K3s's untagged commits nor
# k3s-io/kubernetes, whose go.mod names k8s.io/kubernetes): the caller checks the hashes against pins instead.
# GOTOOLCHAIN=local: a module that needs a newer Go stops here instead of fetching another toolchain.
download() {
  local json nosumdb
  nosumdb="$(go env GONOSUMDB)"
  [ -z "${2:-}" ] || nosumdb="${nosumdb:+$nosumdb,}${1%@*}"
  json="$(cd "$WORK" && GONOSUMDB="$nosumdb" GOWORK=off GOFLAGS=-mod=mod GOTOOLCHAIN=local \
    go mod download -json "$1" 2>&1)" || die "could not download $1 (does the Go module proxy serve it? does its go.mod need a newer Go than $(go env GOVERSION)?):
$json"
  [ -d "$(json_field "$json" Dir)" ] || die "go mod download gave no source directory for $1:
$json"
  printf '%s\n' "$json"
}

# matches_pattern PATH PATTERNS: PATH matches one of the comma-separated go path patterns (GONOSUMDB's syntax:
# globs matched against PATH and its leading path elements).
matches_pattern() {
  local path="$1" pattern prefix
  local -a patterns
  IFS=, read -r -a patterns <<<"$2"
  for pattern in "${patterns[@]}"; do
    [ -n "$pattern" ] || continue
    prefix="$path"
    while [ -n "$prefix" ]; do
      # shellcheck disable=SC2053 # the pattern is a glob on purpose
      [[ "$prefix" == $pattern ]] && return 0
      [[ "$prefix" == */* ]] || break
      prefix="${prefix%/*}"
    done
  done
  return 1
}

# swagger_e2e: the swagger.json of KUBERNETES_SCHEMA_MODULE, verified through the pinned K3s module's go.sum.
swagger_e2e() {
  local module="$E2E_MODULE" module_version="${E2E_MODULE##*@}" k3s json k3s_dir replaced field got suffix swagger
  if [ -n "${K8S_SWAGGER_JSON:-}" ]; then
    [ -f "$K8S_SWAGGER_JSON" ] || die "K8S_SWAGGER_JSON=$K8S_SWAGGER_JSON: no such file"
    log "using $K8S_SWAGGER_JSON (K8S_SWAGGER_JSON) as the swagger.json of $module (not verified)"
    printf '%s\n' "$K8S_SWAGGER_JSON"
    return
  fi
  [ -n "${K3S_BUILD_GO_VERSION:-}" ] || die "K3S_BUILD_GO_VERSION is not set in versions.env (the K3s module whose go.sum pins $module)"
  # The chain of trust: versions.env pins K3s's hash (K3S_BUILD_GO_SUM); K3s's go.sum pins the Kubernetes module's.
  k3s="github.com/k3s-io/k3s@$K3S_BUILD_GO_VERSION"
  log "go mod download $k3s (for its go.mod and go.sum)"
  json="$(download "$k3s" nosumdb)"
  k3s_dir="$(json_field "$json" Dir)"
  if [ -n "${K3S_BUILD_GO_SUM:-}" ]; then
    [ "$(json_field "$json" Sum)" = "$K3S_BUILD_GO_SUM" ] \
      || die "checksum mismatch for $k3s: got $(json_field "$json" Sum), versions.env pins K3S_BUILD_GO_SUM=$K3S_BUILD_GO_SUM"
  else
    log "WARNING: K3S_BUILD_GO_SUM is not pinned in versions.env; $k3s is not verified"
  fi
  replaced="$(sed -n -E 's#^[[:space:]]*(replace[[:space:]]+)?k8s\.io/kubernetes[[:space:]]+=>[[:space:]]+([^[:space:]]+)[[:space:]]+([^[:space:]]+)[[:space:]]*$#\2@\3#p' \
    "$k3s_dir/go.mod" | head -n1)"
  [ "$replaced" = "$module" ] || die "KUBERNETES_SCHEMA_MODULE=$module, but K3s $K3S_BUILD_GO_VERSION (K3S_BUILD_GO_VERSION) replaces k8s.io/kubernetes with ${replaced:-nothing}: set KUBERNETES_SCHEMA_MODULE=$replaced in versions.env"
  grep -F "${module%@*} ${module_version} " "$k3s_dir/go.sum" >"$WORK/go.sum" || true
  grep -F "${module%@*} ${module_version}/go.mod " "$k3s_dir/go.sum" >>"$WORK/go.sum" || true
  [ "$(wc -l <"$WORK/go.sum")" -eq 2 ] || die "K3s's go.sum has no hashes for $module"

  log "go mod download $module (checked against K3s's go.sum)"
  json="$(download "$module" nosumdb)"
  # go itself refuses a download that does not match go.sum; checked here again, explicitly.
  for field in Sum GoModSum; do
    got="$(json_field "$json" "$field")"
    suffix=""
    [ "$field" = GoModSum ] && suffix="/go.mod"
    grep -qxF "${module%@*} ${module_version}$suffix $got" "$WORK/go.sum" \
      || die "checksum mismatch for $module$suffix: got ${got:-nothing}; K3s's go.sum has: $(tr '\n' ' ' <"$WORK/go.sum")"
  done
  : >"$WORK/go.sum"
  swagger="$(json_field "$json" Dir)/api/openapi-spec/swagger.json"
  [ -f "$swagger" ] || die "$module has no api/openapi-spec/swagger.json (is KUBERNETES_SCHEMA_MODULE a Kubernetes module?)"
  printf '%s\n' "$swagger"
}

# swagger_default: the swagger.json of KUBERNETES_SCHEMA_MODULE_DEFAULT, verified by the checksum database.
swagger_default() {
  local module="$DEFAULT_MODULE" path="${DEFAULT_MODULE%@*}" json sumdb swagger
  if [ -n "${K8S_SWAGGER_JSON_DEFAULT:-}" ]; then
    [ -f "$K8S_SWAGGER_JSON_DEFAULT" ] || die "K8S_SWAGGER_JSON_DEFAULT=$K8S_SWAGGER_JSON_DEFAULT: no such file"
    log "using $K8S_SWAGGER_JSON_DEFAULT (K8S_SWAGGER_JSON_DEFAULT) as the swagger.json of $module (not verified)"
    printf '%s\n' "$K8S_SWAGGER_JSON_DEFAULT"
    return
  fi
  sumdb="$(go env GOSUMDB)"
  [ -n "$sumdb" ] && [ "$sumdb" != off ] \
    || die "the checksum database is off (GOSUMDB=${sumdb:-}), so $module (KUBERNETES_SCHEMA_MODULE_DEFAULT) would not be verified: unset GOSUMDB, or set K8S_SWAGGER_JSON_DEFAULT to a swagger.json you trust"
  # (go env GONOSUMDB is GOPRIVATE when GONOSUMDB is not set.)
  ! matches_pattern "$path" "$(go env GONOSUMDB)" \
    || die "GONOSUMDB (or GOPRIVATE)=$(go env GONOSUMDB) exempts $path from the checksum database, so $module (KUBERNETES_SCHEMA_MODULE_DEFAULT) would not be verified: run without it, or set K8S_SWAGGER_JSON_DEFAULT to a swagger.json you trust"
  log "go mod download $module (checked against the checksum database, $sumdb)"
  json="$(download "$module")"
  log "$module: $(json_field "$json" Sum)"
  swagger="$(json_field "$json" Dir)/api/openapi-spec/swagger.json"
  [ -f "$swagger" ] || die "$module has no api/openapi-spec/swagger.json (is KUBERNETES_SCHEMA_MODULE_DEFAULT a Kubernetes module?)"
  printf '%s\n' "$swagger"
}

OUT_DIR="$ROOT/__tests__/k8s/schema"
mkdir -p "$OUT_DIR"
# write SWAGGER MODULE VERSION: the pruned schema of MODULE, as kubernetes-VERSION.json.
write() {
  local out="$OUT_DIR/kubernetes-$3.json"
  npx --no-install ts-node --transpile-only "$ROOT/scripts/k8s-schema-prune.ts" "$1" "$out.tmp" "$2" "$3" \
    || { rm -f "$out.tmp"; die "pruning $1 (the swagger.json of $2) failed"; }
  mv -f "$out.tmp" "$out"
  log "wrote ${out#"$ROOT"/} ($(wc -c <"$out") bytes) from $2"
}

swagger="$(swagger_e2e)"
write "$swagger" "$E2E_MODULE" "$E2E_VERSION"
swagger="$(swagger_default)"
write "$swagger" "$DEFAULT_MODULE" "$DEFAULT_VERSION"
for old in "$OUT_DIR"/kubernetes-*.json; do
  case "$(basename "$old")" in
    "kubernetes-$E2E_VERSION.json"|"kubernetes-$DEFAULT_VERSION.json") ;;
    *) rm -f "$old"; log "removed $(basename "$old") (another version)" ;;
  esac
done
log "done; commit __tests__/k8s/schema/"
