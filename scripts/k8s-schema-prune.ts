/**
 * Prunes Kubernetes' OpenAPI v2 document (api/openapi-spec/swagger.json) to what `make test` needs to validate
 * manifests (__tests__/k8s/validate.ts), and writes it deterministically. Run by scripts/k8s-schema.sh:
 *
 *   ts-node --transpile-only scripts/k8s-schema-prune.ts <swagger.json> <out.json> <module@version> <k8s version>
 *
 * Kept: the definitions reachable (through $ref) from those that carry an x-kubernetes-group-version-kind of a
 * GA API version (v1, v2, ...; alpha and beta versions are dropped, also from the group-version-kind lists).
 * Dropped: paths, parameters, descriptions and the strategic-merge-patch hints (x-kubernetes-patch-*), which
 * say how objects merge, not what they may contain. Everything else of a schema is kept; a keyword this
 * script does not know stops it, so a new kind of constraint cannot vanish unnoticed.
 *
 * Output: keys sorted at every level, one definition per line (a schema change shows as a one-line diff).
 */
import * as fs from "node:fs";

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type Schema = { [key: string]: Json };
interface Gvk {
  group: string;
  version: string;
  kind: string;
}

const GA_VERSION = /^v\d+$/;
const DEFINITION_REF = "#/definitions/";

/** Schema keywords of the Kubernetes OpenAPI v2 document: kept as they are. */
const KEEP = new Set([
  "$ref",
  "type",
  "format",
  "properties",
  "items",
  "additionalProperties",
  "required",
  "enum",
  "default",
  "minimum",
  "maximum",
  "exclusiveMinimum",
  "exclusiveMaximum",
  "minLength",
  "maxLength",
  "pattern",
  "minItems",
  "maxItems",
  "uniqueItems",
]);
/** Dropped: documentation and merge semantics. Other x-kubernetes-* extensions are kept. */
const DROP = new Set(["description", "example", "x-kubernetes-patch-strategy", "x-kubernetes-patch-merge-key"]);

function die(message: string): never {
  process.stderr.write(`[k8s-schema-prune] ERROR: ${message}\n`);
  process.exit(1);
}

function isObject(v: unknown): v is Schema {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** Calls visit(subschema) for every schema nested in `schema` (not for property names or other data). */
function children(schema: Schema, visit: (s: Schema, where: string) => void): void {
  if (isObject(schema.properties)) {
    for (const [name, prop] of Object.entries(schema.properties)) {
      if (isObject(prop)) visit(prop, `properties.${name}`);
    }
  }
  if (isObject(schema.items)) visit(schema.items, "items");
  if (isObject(schema.additionalProperties)) visit(schema.additionalProperties, "additionalProperties");
}

function refsOf(schema: Schema, into: Set<string>, where: string): void {
  if (typeof schema.$ref === "string") {
    if (!schema.$ref.startsWith(DEFINITION_REF)) die(`${where}: unsupported $ref ${schema.$ref}`);
    into.add(schema.$ref.slice(DEFINITION_REF.length));
  }
  children(schema, (s, w) => refsOf(s, into, `${where}.${w}`));
}

function gvks(schema: Schema): Gvk[] {
  const list = schema["x-kubernetes-group-version-kind"];
  return Array.isArray(list) ? (list as unknown as Gvk[]) : [];
}

/** A copy of `schema` without the dropped keywords; stops on a keyword it does not know. */
function clean(schema: Schema, where: string): Schema {
  const out: Schema = {};
  for (const [key, value] of Object.entries(schema)) {
    if (DROP.has(key)) continue;
    if (key === "x-kubernetes-group-version-kind") {
      out[key] = gvks(schema)
        .filter((g) => GA_VERSION.test(g.version))
        .map((g) => ({ group: g.group, kind: g.kind, version: g.version }));
      continue;
    }
    if (!KEEP.has(key) && !key.startsWith("x-kubernetes-")) {
      die(`${where}: unknown schema keyword "${key}" (teach scripts/k8s-schema-prune.ts and __tests__/k8s/validate.ts)`);
    }
    out[key] = value;
  }
  if (isObject(out.properties)) {
    const props: Schema = {};
    for (const [name, prop] of Object.entries(out.properties)) {
      props[name] = isObject(prop) ? clean(prop, `${where}.properties.${name}`) : prop;
    }
    out.properties = props;
  }
  if (isObject(out.items)) out.items = clean(out.items, `${where}.items`);
  if (isObject(out.additionalProperties)) out.additionalProperties = clean(out.additionalProperties, `${where}.additionalProperties`);
  return out;
}

/** JSON with object keys sorted at every level (arrays keep their order). */
function sorted(value: Json): Json {
  if (Array.isArray(value)) return value.map(sorted);
  if (!isObject(value)) return value;
  const out: Schema = {};
  for (const key of Object.keys(value).sort()) out[key] = sorted(value[key]);
  return out;
}

function main(): void {
  const [input, output, module, version] = process.argv.slice(2);
  if (!input || !output || !module || !version) {
    die("usage: k8s-schema-prune.ts <swagger.json> <out.json> <module@version> <kubernetes version>");
  }
  const doc = JSON.parse(fs.readFileSync(input, "utf8")) as { swagger?: string; definitions?: Record<string, Schema> };
  if (doc.swagger !== "2.0" || !isObject(doc.definitions)) die(`${input} is not a Swagger 2.0 document with definitions`);
  const all = doc.definitions;

  const roots = Object.keys(all).filter((name) => gvks(all[name]).some((g) => GA_VERSION.test(g.version)));
  if (roots.length === 0) die(`${input} has no definition with a GA x-kubernetes-group-version-kind`);
  const keep = new Set<string>();
  const queue = [...roots];
  while (queue.length > 0) {
    const name = queue.pop() as string;
    if (keep.has(name)) continue;
    if (!isObject(all[name])) die(`$ref to a missing definition: ${name}`);
    keep.add(name);
    const refs = new Set<string>();
    refsOf(all[name], refs, name);
    for (const ref of refs) if (!keep.has(ref)) queue.push(ref);
  }

  const names = [...keep].sort();
  const lines = names.map((name) => `  ${JSON.stringify(name)}: ${JSON.stringify(sorted(clean(all[name], name)))}`);
  const text =
    "{\n" +
    ` "$comment": ${JSON.stringify(
      `Generated by scripts/k8s-schema.sh from ${module} api/openapi-spec/swagger.json (GA kinds and what they reference; no descriptions). Do not edit.`,
    )},\n` +
    ` "definitions": {\n${lines.join(",\n")}\n },\n` +
    ` "kubernetesVersion": ${JSON.stringify(version)},\n` +
    ` "module": ${JSON.stringify(module)}\n` +
    "}\n";
  JSON.parse(text); // sanity: the hand-assembled document is JSON
  fs.writeFileSync(output, text);
  process.stderr.write(
    `[k8s-schema-prune] kept ${names.length} of ${Object.keys(all).length} definitions ` +
      `(${roots.length} with a GA kind and what they reference), ${text.length} bytes\n`,
  );
}

main();
