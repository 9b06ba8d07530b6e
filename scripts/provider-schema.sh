#!/usr/bin/env bash
# The provider bindings in .gen/ (TypeScript classes for bpg/proxmox and hashicorp/local), made with no
# network: `cdktn get` reads the provider schemas from providers/schema/ (its experimental provider-schema
# cache) instead of running `terraform init` against a registry.
#
#   scripts/provider-schema.sh get      generate .gen/ from providers/schema/ (what `make setup` runs);
#                                       does nothing when .gen/ is already up to date
#   scripts/provider-schema.sh [update] regenerate providers/schema/ from the real provider binaries:
#                                       an offline `tofu init` from the project's provider mirror
#                                       (scripts/setup-tools.sh), `tofu providers schema -json`, cut down
#                                       to the types in KEEP below; also writes cdktf.json's
#                                       terraformProviders from versions.env. Needs jq.
#
# Run `update` after changing a provider version in versions.env or the KEEP list, then commit
# providers/schema/ and cdktf.json.
#
# How cdktn (0.24) uses the cache (@cdktn/provider-schema, cache.ts and read.ts): the directory named by
# CDKTF_EXPERIMENTAL_PROVIDER_SCHEMA_CACHE_PATH holds one file per provider constraint of cdktf.json,
#   <encodeURIComponent(fqn)>@<encodeURIComponent(version constraint)>@<cli>.json
# where `cdktn get` passes the provider's local name as fqn ("proxmox" for "bpg/proxmox"; `cdktn convert`
# would pass the whole source), e.g. "proxmox@%3D%200.80.0@opentofu-1.12.json", and <cli> is
# "<opentofu|terraform>-<major>.<minor>"
# of `$TERRAFORM_BINARY_NAME version` (default `terraform`; "unknown-cli" if that fails). The content is
# `providers schema -json` plus `provider_versions` (from `version -json`), `cli_name` and `cli_version`.
# On a miss cdktn runs `init` + `providers schema` itself and writes the result into the directory.
# The schema's provider keys must have three parts (host/namespace/type); the host only ends up in the
# documentation links of the generated code. The committed files use the placeholder host below, which
# `get` replaces by the one tofu itself gives "bpg/proxmox" (tools/registry-host, see setup-tools.sh).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${K3SPVE_CACHE:-$HOME/.cache/k3s-proxmox}"
TOOLS="$CACHE/tools"
SCHEMA_DIR="$ROOT/providers/schema"
GEN_DIR="$ROOT/.gen"
PLACEHOLDER_HOST="provider-host.invalid"

log() { printf '[provider-schema] %s\n' "$*" >&2; }
die() { printf '[provider-schema] ERROR: %s\n' "$*" >&2; exit 1; }
now() { cut -d' ' -f1 /proc/uptime 2>/dev/null || date +%s; } # monotonic where /proc is there
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1fs", b - a }'; }

# shellcheck disable=SC1091
. "$ROOT/versions.env"

# --- the provider types the project uses: the one place to list them ------------------------------------
# source | version | resources (space-separated) | data sources (space-separated)
# (the provider's own configuration block is always kept; functions, ephemeral resources and actions are not)
KEEP=(
  "bpg/proxmox|$PROXMOX_PROVIDER_VERSION|proxmox_virtual_environment_vm proxmox_virtual_environment_file proxmox_virtual_environment_download_file|proxmox_virtual_environment_vms"
  "hashicorp/local|$LOCAL_PROVIDER_VERSION|local_file local_sensitive_file|"
)

# cli_suffix TOFU: the cache-key suffix cdktn computes from `TOFU version` ("opentofu-1.12").
cli_suffix() {
  local line name ver
  line="$(TF_CLI_CONFIG_FILE=/dev/null "$1" version 2>/dev/null | head -n1)"
  case "$line" in
    "OpenTofu v"*) name=opentofu ;;
    "Terraform v"*) name=terraform ;;
    *) printf 'unknown-cli'; return ;;
  esac
  ver="${line#* v}"
  printf '%s-%s' "$name" "$(printf '%s' "$ver" | cut -d. -f1,2)"
}

# =========================================================================================================
update() {
  command -v jq >/dev/null 2>&1 || die "jq is needed (apt-get install -y jq)"
  bash "$ROOT/scripts/setup-tools.sh"
  local tofu="$TOOLS/bin/tofu" entry source version resources datasources constraint full key suffix
  export TF_CLI_CONFIG_FILE="$TOOLS/tofurc" TF_IN_AUTOMATION=1 CHECKPOINT_DISABLE=1
  suffix="$(cli_suffix "$tofu")"
  [ "$suffix" != unknown-cli ] || die "cannot tell the version of $tofu"

  # The full schemas, from the real provider binaries, offline.
  work="$(mktemp -d)"
  trap 'rm -rf "$work"' EXIT
  local providers_json='{}'
  for entry in "${KEEP[@]}"; do
    IFS='|' read -r source version _ _ <<<"$entry"
    providers_json="$(jq --arg n "${source#*/}" --arg s "$source" --arg v "= $version" \
      '. + {($n): {source: $s, version: $v}}' <<<"$providers_json")"
  done
  jq -n --argjson p "$providers_json" '{terraform: {required_providers: $p}}' >"$work/main.tf.json"
  log "tofu init (offline, providers from $TF_CLI_CONFIG_FILE)..."
  (cd "$work" && "$tofu" init -input=false -no-color -backend=false >init.log 2>&1) \
    || { cat "$work/init.log" >&2; die "tofu init failed; run scripts/setup-tools.sh and check $TF_CLI_CONFIG_FILE"; }
  (cd "$work" && "$tofu" providers schema -json >schema.json && "$tofu" version -json >version.json) \
    || die "tofu providers schema failed"
  local cli_name cli_version
  cli_name="${suffix%%-*}"
  cli_version="$(jq -r .terraform_version "$work/version.json")"

  # One cut-down cache entry per provider.
  mkdir -p "$SCHEMA_DIR"
  rm -f "$SCHEMA_DIR"/*.json
  local constraints=()
  for entry in "${KEEP[@]}"; do
    IFS='|' read -r source version resources datasources <<<"$entry"
    constraint="= $version"
    full="$(jq -r --arg s "/$source" '.provider_schemas | keys[] | select(endswith($s))' "$work/schema.json")"
    [ -n "$full" ] || die "no schema for $source in tofu's output"
    [ "$(jq -r --arg f "$full" '.provider_selections[$f] // empty' "$work/version.json")" = "$version" ] \
      || die "tofu did not select $source $version"
    # `cdktn get` keys the cache by the provider's local name (the last part of the source), not the source.
    key="$(jq -rn --arg n "${source##*/}" --arg c "$constraint" --arg x "$suffix" '"\($n|@uri)@\($c|@uri)@\($x|@uri)"')"
    jq -S --arg full "$full" --arg addr "$PLACEHOLDER_HOST/$source" --arg ver "$version" \
      --arg cli_name "$cli_name" --arg cli_version "$cli_version" \
      --arg res "$resources" --arg data "$datasources" '
      def pick($names): . // {} | with_entries(select(.key as $k | $names | index($k)));
      def words: split(" ") | map(select(length > 0));
      .provider_schemas[$full] as $p
      | ($res | words) as $r | ($data | words) as $d
      | ([$r[] as $n | select(($p.resource_schemas // {}) | has($n) | not) | $n]
         + [$d[] as $n | select(($p.data_source_schemas // {}) | has($n) | not) | $n]) as $missing
      | if ($missing | length) > 0 then error("not in the provider schema: \($missing | join(", "))") else . end
      | {
          format_version,
          provider_schemas: {
            ($addr): {
              provider: $p.provider,
              resource_schemas: ($p.resource_schemas | pick($r)),
              data_source_schemas: ($p.data_source_schemas | pick($d))
            }
          },
          provider_versions: {($addr): $ver},
          cli_name: $cli_name,
          cli_version: $cli_version
        }' "$work/schema.json" >"$SCHEMA_DIR/$key.json" \
      || die "filtering the schema of $source failed"
    log "$source $version: $(du -h "$SCHEMA_DIR/$key.json" | cut -f1) -> providers/schema/$key.json"
    constraints+=("$source@$constraint")
  done

  # cdktf.json: the provider constraints, from versions.env (the cache is keyed by them).
  local cfg="$ROOT/cdktf.json" want
  want="$(printf '%s\n' "${constraints[@]}" | jq -R . | jq -sc .)"
  [ -f "$cfg" ] || die "no cdktf.json: add \"terraformProviders\": $want"
  if [ "$(jq -c '.terraformProviders' "$cfg")" != "$want" ]; then
    jq --argjson p "$want" '.terraformProviders = $p' "$cfg" >"$cfg.tmp" && mv -f "$cfg.tmp" "$cfg"
    log "updated terraformProviders in cdktf.json"
  fi
  log "done (schemas from OpenTofu $cli_version); now run: scripts/provider-schema.sh get"
}

# =========================================================================================================
get() {
  local t0 tofu host suffix stamp f base n
  t0="$(now)"
  tofu="$TOOLS/bin/tofu"
  [ -x "$tofu" ] || die "no $tofu: run scripts/setup-tools.sh first"
  [ -f "$TOOLS/tofurc" ] || die "no $TOOLS/tofurc: run scripts/setup-tools.sh first"
  [ -x "$ROOT/node_modules/.bin/cdktn" ] || die "no node_modules/.bin/cdktn: run npm ci first"
  compgen -G "$SCHEMA_DIR/*.json" >/dev/null || die "no schema files in providers/schema: run scripts/provider-schema.sh update"
  host="$(cat "$TOOLS/registry-host" 2>/dev/null || true)"
  [ -n "$host" ] || die "no $TOOLS/registry-host: run scripts/setup-tools.sh first"
  suffix="$(cli_suffix "$tofu")"

  # Up to date? The stamp covers everything the bindings are made from.
  stamp="$({
    cat "$ROOT/cdktf.json" "$SCHEMA_DIR"/*.json "$ROOT/node_modules/cdktn-cli/package.json"
    printf '%s %s\n' "$host" "$suffix"
  } | cksum)"
  if [ -d "$GEN_DIR/providers" ] && [ "$(cat "$GEN_DIR/.schema-stamp" 2>/dev/null)" = "$stamp" ]; then
    log "bindings in .gen/ are up to date"
    return
  fi

  # Stage the committed files under the key this machine's tofu gives, with the real host name.
  stage="$(mktemp -d)"
  trap 'rm -rf "$stage"' EXIT
  for f in "$SCHEMA_DIR"/*.json; do
    base="$(basename "$f" .json)"
    base="${base%@*}" # drop the committed "@<cli>" suffix
    sed "s|\"$PLACEHOLDER_HOST/|\"$host/|g" "$f" >"$stage/$base@$suffix.json"
  done
  n="$(find "$stage" -type f | wc -l)"

  log "cdktn get (offline, schemas from providers/schema, CLI key $suffix)..."
  (
    cd "$ROOT"
    # TERRAFORM_BINARY_NAME: the CLI whose version names the cache key. TF_CLI_CONFIG_FILE: should a key
    # ever miss, cdktn's own `init` still only sees the offline mirror. The rest silences phoning home.
    # --force: cdktn alone would skip providers whose version constraint is unchanged (it does not look at
    # the schema), so a changed KEEP list would not show; the stamp above already skips unchanged work.
    TERRAFORM_BINARY_NAME="$tofu" TF_CLI_CONFIG_FILE="$TOOLS/tofurc" \
      CDKTF_EXPERIMENTAL_PROVIDER_SCHEMA_CACHE_PATH="$stage" \
      CHECKPOINT_DISABLE=1 DISABLE_VERSION_CHECK=true \
      npx --no-install cdktn get --force
  ) || die "cdktn get failed"
  [ "$(find "$stage" -type f | wc -l)" = "$n" ] \
    || die "cdktn get fetched a schema the cache did not have (cdktf.json and providers/schema disagree): run scripts/provider-schema.sh update"
  [ -d "$GEN_DIR/providers" ] || die "cdktn get wrote no $GEN_DIR/providers"
  printf '%s\n' "$stamp" >"$GEN_DIR/.schema-stamp"
  log "bindings in .gen/ ($(du -sh "$GEN_DIR" | cut -f1)) generated in $(since "$t0")"
}

case "${1:-update}" in
  get) get ;;
  update) update ;;
  *) die "usage: $0 [get|update]" ;;
esac
