/**
 * Strict, offline validation of Kubernetes manifests against the OpenAPI schemas of the pinned Kubernetes versions
 * (__tests__/k8s/schema/kubernetes-<version>.json, written by scripts/k8s-schema.sh from the modules that
 * versions.env names: KUBERNETES_SCHEMA_MODULE, the Kubernetes of the e2e's K3s build, and
 * KUBERNETES_SCHEMA_MODULE_DEFAULT, the users' default Kubernetes). What it reports, like
 * `kubectl apply --validate=strict` against a real API server of that version would:
 *
 * - an apiVersion/kind that is not a GA kind of that Kubernetes (alpha/beta APIs and CRDs included);
 * - unknown fields at any depth (every object schema with properties is closed), with their JSON path;
 * - wrong types, malformed formats (int32/int64 ranges, quantities such as 500m or 1Gi, base64, date-times);
 * - missing required fields, and a missing metadata.name (the schema does not say so; the API server does).
 *
 * By default an object is validated against every pinned version: a problem all of them report is listed once,
 * one that only some report says which (`... (Kubernetes v1.34.0)`). `{ kubernetes: "v1.36.3" }` validates
 * against that version only. Like the API server, a null value counts as an absent field. The schemas are
 * compiled once per version and kind and kept.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import Ajv, { ErrorObject, ValidateFunction } from "ajv";
import { parseAllDocuments } from "yaml";
import { editDistance } from "../../constructs/config/load";

export interface ManifestProblem {
  /** The object, e.g. `Deployment apps/whoami` (kind, then namespace/name or just the name). */
  object: string;
  /** JSON pointer of the offending value inside the object, e.g. `/spec/template/spec/containers/0/image`. */
  path: string;
  message: string;
}

export interface ValidateOptions {
  /** Validate against this pinned Kubernetes version only (one of kubernetesVersions()); default: all of them. */
  kubernetes?: string;
}

/** A schema versions.env pins. */
export interface PinnedSchema {
  /** The versions.env variable, e.g. KUBERNETES_SCHEMA_MODULE_DEFAULT. */
  variable: string;
  /** Its value, e.g. k8s.io/kubernetes@v1.36.3. */
  module: string;
  /** The Kubernetes version, e.g. v1.36.3 (the module version without K3s's -k3sN suffix). */
  version: string;
}

type Schema = { [key: string]: unknown };
interface SchemaFile {
  definitions: Record<string, Schema>;
  kubernetesVersion: string;
  module: string;
}
interface Gvk {
  group: string;
  version: string;
  kind: string;
}

const ROOT = path.resolve(__dirname, "..", "..");
const SCHEMA_DIR = path.join(__dirname, "schema");
/** The versions.env variables that name the schemas, with what each one is, for error messages. */
const SCHEMA_VARIABLES: [string, string][] = [
  ["KUBERNETES_SCHEMA_MODULE", "the Kubernetes module of the e2e's K3s build"],
  ["KUBERNETES_SCHEMA_MODULE_DEFAULT", "the Kubernetes module of the users' default K3s"],
];
const REGENERATE = `run scripts/k8s-schema.sh and commit ${path.relative(ROOT, SCHEMA_DIR)}/`;

let pinned: PinnedSchema[] | undefined;

/** The schemas versions.env pins, in the order of SCHEMA_VARIABLES (the e2e's Kubernetes first). */
export function pinnedSchemas(): PinnedSchema[] {
  if (pinned) return pinned;
  const env = fs.readFileSync(path.join(ROOT, "versions.env"), "utf8");
  const schemas = SCHEMA_VARIABLES.map(([variable, what]) => {
    const match = new RegExp(`^${variable}=(\\S+)\\s*$`, "m").exec(env);
    if (!match) throw new Error(`versions.env sets no ${variable} (${what}, e.g. k8s.io/kubernetes@v1.36.3)`);
    const module = match[1];
    const version = module.replace(/^.*@/, "").replace(/-k3s\d+$/, "");
    if (!/^v\d+\.\d+\.\d+/.test(version)) throw new Error(`versions.env: ${variable}=${module} is not <module>@v<kubernetes version>`);
    return { variable, module, version };
  });
  const versions = schemas.map((s) => s.version);
  if (new Set(versions).size !== versions.length) {
    throw new Error(`versions.env: ${schemas.map((s) => `${s.variable}=${s.module}`).join(" and ")} are the same Kubernetes version; the schemas are kept by version`);
  }
  pinned = schemas;
  return schemas;
}

/** The Kubernetes versions the manifests are validated against, e.g. ["v1.34.0", "v1.36.3"]. */
export function kubernetesVersions(): string[] {
  return pinnedSchemas().map((s) => s.version);
}

function loadSchemaFile(schema: PinnedSchema): SchemaFile {
  const file = path.join(SCHEMA_DIR, `kubernetes-${schema.version}.json`);
  const rel = path.relative(ROOT, file);
  if (!fs.existsSync(file)) throw new Error(`no schema for ${schema.variable}=${schema.module}: ${rel} is missing; ${REGENERATE}`);
  const data = JSON.parse(fs.readFileSync(file, "utf8")) as SchemaFile;
  if (data.module !== schema.module) {
    throw new Error(`${rel} was generated from ${data.module}, but versions.env pins ${schema.variable}=${schema.module}; ${REGENERATE}`);
  }
  return data;
}

// --- from the OpenAPI v2 definitions to JSON Schema for Ajv -------------------------------------------------

const QUANTITY_DEF = "io.k8s.apimachinery.pkg.api.resource.Quantity";
const DEFINITION_REF = "#/definitions/";
/** Kubernetes' quantity syntax: a signed decimal number, then a binary-SI, decimal-SI or exponent suffix. */
const QUANTITY = /^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[KMGTPE]i|[numkMGTPE]|[eE][+-]?\d+)?$/;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const DATE_TIME = /^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[Zz]|[+-]\d{2}:\d{2})$/;
/** JSON Schema keywords of the definitions that Ajv applies as they are. */
const VALIDATION_KEYWORDS = new Set([
  "type",
  "format",
  "required",
  "enum",
  "minimum",
  "maximum",
  "minLength",
  "maxLength",
  "pattern",
  "minItems",
  "maxItems",
  "uniqueItems",
]);

function isObject(v: unknown): v is Schema {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/**
 * One schema of the OpenAPI v2 document as draft-07 JSON Schema: closed objects (strict), int-or-string as
 * integer or string, $ref into the same document; x-kubernetes-* hints and defaults dropped.
 */
function adapt(schema: Schema, where: string): Schema {
  if (typeof schema.$ref === "string") {
    if (!schema.$ref.startsWith(DEFINITION_REF)) throw new Error(`${where}: unsupported $ref ${schema.$ref}`);
    return { $ref: schema.$ref };
  }
  const out: Schema = {};
  for (const [key, value] of Object.entries(schema)) {
    if (VALIDATION_KEYWORDS.has(key)) out[key] = value;
    else if (key === "exclusiveMinimum" || key === "exclusiveMaximum") throw new Error(`${where}: draft-4 ${key} is not supported`);
    else if (!["properties", "items", "additionalProperties", "default"].includes(key) && !key.startsWith("x-")) {
      throw new Error(`${where}: schema keyword "${key}" is not supported by __tests__/k8s/validate.ts`);
    }
  }
  if (schema.format === "int-or-string" || schema["x-kubernetes-int-or-string"] === true) {
    out.type = ["integer", "string"];
    out.format = "int32"; // applies to the integer form only
  }
  if (isObject(schema.properties)) {
    out.properties = Object.fromEntries(
      Object.entries(schema.properties).map(([name, prop]) => [name, adapt(prop as Schema, `${where}.${name}`)]),
    );
    // Strict: a field the schema does not name is an error (what kubectl --validate=strict reports).
    out.additionalProperties = isObject(schema.additionalProperties)
      ? adapt(schema.additionalProperties, `${where}{}`)
      : (schema.additionalProperties ?? false);
  } else if (isObject(schema.additionalProperties)) {
    out.additionalProperties = adapt(schema.additionalProperties, `${where}{}`);
  } else if (schema.additionalProperties !== undefined) {
    out.additionalProperties = schema.additionalProperties;
  }
  if (isObject(schema.items)) out.items = adapt(schema.items, `${where}[]`);
  return out;
}

// --- the compiled validator ------------------------------------------------------------------------------

interface Validator {
  version: string;
  /** "group/version/kind" (core group "") -> definition name. */
  kinds: Map<string, string>;
  /** kind -> the GA apiVersions that serve it, for hints. */
  versionsOfKind: Map<string, string[]>;
  ajv: Ajv;
  schemaId: string;
  compiled: Map<string, ValidateFunction>;
}

const cached = new Map<string, Validator>();

function validator(kubernetes: string): Validator {
  const hit = cached.get(kubernetes);
  if (hit) return hit;
  const schema = pinnedSchemas().find((s) => s.version === kubernetes);
  if (!schema) throw new Error(`Kubernetes ${kubernetes} is not pinned in versions.env (the pinned versions: ${kubernetesVersions().join(", ")})`);
  const file = loadSchemaFile(schema);
  const version = file.kubernetesVersion;
  const definitions: Record<string, Schema> = {};
  const kinds = new Map<string, string>();
  const versionsOfKind = new Map<string, string[]>();
  for (const [name, def] of Object.entries(file.definitions)) {
    definitions[name] =
      name === QUANTITY_DEF ? { type: ["string", "number"], format: "quantity" } : adapt(def, name);
    for (const gvk of (def["x-kubernetes-group-version-kind"] as Gvk[] | undefined) ?? []) {
      if (!/^v\d+$/.test(gvk.version)) continue;
      kinds.set(`${gvk.group}/${gvk.version}/${gvk.kind}`, name);
      const apiVersion = gvk.group ? `${gvk.group}/${gvk.version}` : gvk.version;
      versionsOfKind.set(gvk.kind, [...(versionsOfKind.get(gvk.kind) ?? []), apiVersion]);
    }
  }
  const ajv = new Ajv({ allErrors: true, strict: true, allowUnionTypes: true, verbose: true });
  const int = (bits: number) => (n: number) => Number.isInteger(n) && n >= -(2 ** (bits - 1)) && n <= 2 ** (bits - 1) - 1;
  ajv.addFormat("int32", { type: "number", validate: int(32) });
  ajv.addFormat("int64", { type: "number", validate: int(64) });
  ajv.addFormat("double", { type: "number", validate: () => true });
  ajv.addFormat("byte", { type: "string", validate: (s: string) => BASE64.test(s.replace(/[\r\n]/g, "")) });
  ajv.addFormat("date-time", { type: "string", validate: (s: string) => DATE_TIME.test(s) });
  ajv.addFormat("quantity", { type: "string", validate: (s: string) => QUANTITY.test(s) });
  const schemaId = `kubernetes-${version}.json`;
  ajv.addSchema({ $id: schemaId, definitions });
  const v: Validator = { version, kinds, versionsOfKind, ajv, schemaId, compiled: new Map() };
  cached.set(kubernetes, v);
  return v;
}

function compiledFor(v: Validator, definition: string): ValidateFunction {
  let fn = v.compiled.get(definition);
  if (!fn) {
    fn = v.ajv.compile({ $ref: `${v.schemaId}#/definitions/${definition}` });
    v.compiled.set(definition, fn);
  }
  return fn;
}

// --- problems ------------------------------------------------------------------------------------------

/** A copy without null-valued fields: the API server decodes a null field as an absent one. */
function withoutNulls(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(withoutNulls);
  if (!isObject(value)) return value;
  const out: Schema = {};
  for (const [k, v] of Object.entries(value)) if (v !== null && v !== undefined) out[k] = withoutNulls(v);
  return out;
}

function pointer(base: string, key: string): string {
  return `${base}/${key.replace(/~/g, "~0").replace(/\//g, "~1")}`;
}

function describe(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "a list";
  if (isObject(value)) return "a mapping";
  return `${typeof value} ${JSON.stringify(value)}`;
}


function suggestion(field: string, known: string[]): string {
  const lower = field.toLowerCase();
  const best = known
    .map((k) => ({ k, d: k.toLowerCase() === lower ? 0 : editDistance(field, k) }))
    .filter(({ d }) => d <= Math.max(1, Math.floor(field.length / 4)))
    .sort((a, b) => a.d - b.d)[0];
  return best ? ` (did you mean "${best.k}"?)` : "";
}

const FORMAT_MESSAGES: Record<string, string> = {
  int32: "must be a 32-bit integer",
  int64: "must be a 64-bit integer",
  byte: "must be base64-encoded",
  "date-time": "must be an RFC 3339 date-time (e.g. 2025-01-31T12:00:00Z)",
  quantity: "must be a quantity such as 250m, 1.5, 128Mi or 1Gi (a number, then an optional suffix, no space)",
};

function problemOf(object: string, e: ErrorObject): ManifestProblem {
  const at = e.instancePath;
  switch (e.keyword) {
    case "additionalProperties": {
      const field = String(e.params.additionalProperty);
      const known = isObject(e.parentSchema?.properties) ? Object.keys(e.parentSchema.properties) : [];
      return { object, path: pointer(at, field), message: `unknown field "${field}"${suggestion(field, known)}` };
    }
    case "required": {
      const field = String(e.params.missingProperty);
      return { object, path: pointer(at, field), message: `required field "${field}" is missing` };
    }
    case "type": {
      const types = String(e.params.type).split(",").join(" or ");
      return { object, path: at, message: `must be ${types}, not ${describe(e.data)}` };
    }
    case "format": {
      const what = FORMAT_MESSAGES[String(e.params.format)] ?? `must match format ${String(e.params.format)}`;
      return { object, path: at, message: `${what}, not ${describe(e.data)}` };
    }
    case "enum":
      return { object, path: at, message: `must be one of ${JSON.stringify(e.params.allowedValues)}, not ${describe(e.data)}` };
    default:
      return { object, path: at, message: `${e.message ?? "is invalid"} (${e.keyword})` };
  }
}

function str(value: unknown): string | undefined {
  return typeof value === "string" && value !== "" ? value : undefined;
}

/** `Deployment apps/whoami`, `Namespace apps`, `Deployment <no name> (document 3)`. */
function objectLabel(doc: Schema, index?: number): string {
  const metadata = isObject(doc.metadata) ? doc.metadata : {};
  const name = str(metadata.name);
  const namespace = str(metadata.namespace);
  const kind = str(doc.kind) ?? "<no kind>";
  const where = index === undefined ? "" : ` (document ${index + 1})`;
  return `${kind} ${namespace ? `${namespace}/` : ""}${name ?? `<no name>${where}`}`;
}

function validateOne(input: unknown, index: number | undefined, kubernetes: string): ManifestProblem[] {
  if (!isObject(input)) {
    const object = index === undefined ? "<not an object>" : `document ${index + 1}`;
    return [{ object, path: "", message: `a Kubernetes object must be a mapping, not ${describe(input)}` }];
  }
  const doc = withoutNulls(input) as Schema;
  const object = objectLabel(doc, index);
  const v = validator(kubernetes);
  const problems: ManifestProblem[] = [];
  const apiVersion = str(doc.apiVersion);
  const kind = str(doc.kind);
  if (!apiVersion) problems.push({ object, path: "/apiVersion", message: "apiVersion must be a non-empty string" });
  if (!kind) problems.push({ object, path: "/kind", message: "kind must be a non-empty string" });
  if (!apiVersion || !kind) return problems;

  const gv = /^(?:([^/]+)\/)?([^/]+)$/.exec(apiVersion); // "apps/v1", or "v1" for the core group ""
  const definition = gv ? v.kinds.get(`${gv[1] ?? ""}/${gv[2]}/${kind}`) : undefined;
  if (!definition) {
    const elsewhere = v.versionsOfKind.get(kind);
    const hint = elsewhere ? ` (${kind} is served as ${elsewhere.join(", ")})` : "";
    return [{ object, path: "/apiVersion", message: `apiVersion/kind ${apiVersion} ${kind} is not a GA kind of Kubernetes ${v.version}${hint}` }];
  }

  const validate = compiledFor(v, definition);
  if (!validate(doc)) {
    const errors = validate.errors ?? [];
    // A value of the wrong type also fails its format (allErrors): the type error says it all.
    const wrongType = new Set(errors.filter((e) => e.keyword === "type").map((e) => e.instancePath));
    const seen = new Set<string>();
    for (const e of errors) {
      if (e.keyword !== "type" && wrongType.has(e.instancePath)) continue;
      const p = problemOf(object, e);
      const key = `${p.path}\n${p.message}`;
      if (!seen.has(key)) {
        seen.add(key);
        problems.push(p);
      }
    }
  }
  const metadata = isObject(doc.metadata) ? doc.metadata : undefined;
  if (!str(metadata?.name) && !problems.some((p) => p.path === "/metadata" || p.path === "/metadata/name")) {
    problems.push({ object, path: "/metadata/name", message: "metadata.name is required (the API server needs a name for every object)" });
  }
  return problems;
}

/**
 * The problems of one object against the versions `options` selects: against one, as they are; against all, each
 * once, and those that not every version reports with the versions that do (unless the message names them).
 */
function validateEach(input: unknown, index: number | undefined, options: ValidateOptions): ManifestProblem[] {
  if (options.kubernetes !== undefined) return validateOne(input, index, options.kubernetes);
  const versions = kubernetesVersions();
  const found = new Map<string, { problem: ManifestProblem; versions: string[] }>();
  for (const version of versions) {
    for (const problem of validateOne(input, index, version)) {
      const key = `${problem.object}\n${problem.path}\n${problem.message}`;
      const seen = found.get(key);
      if (seen) seen.versions.push(version);
      else found.set(key, { problem, versions: [version] });
    }
  }
  return [...found.values()].map(({ problem, versions: which }) =>
    which.length === versions.length || which.some((v) => problem.message.includes(v))
      ? problem
      : { ...problem, message: `${problem.message} (Kubernetes ${which.join(", ")})` },
  );
}

/** Validates one Kubernetes object (parsed YAML/JSON); returns its problems, none if it is valid. */
export function validateManifest(doc: unknown, options: ValidateOptions = {}): ManifestProblem[] {
  return validateEach(doc, undefined, options);
}

/** Validates objects, e.g. all documents of a manifest file; empty (null) documents are skipped, as kubectl does. */
export function validateManifests(docs: unknown[], options: ValidateOptions = {}): ManifestProblem[] {
  return docs.flatMap((doc, i) => (doc === null || doc === undefined ? [] : validateEach(doc, i, options)));
}

/**
 * Validates a multi-document YAML text (a manifest file). YAML errors, duplicate keys included (which
 * kubectl's strict validation rejects as duplicate fields), are problems too.
 */
export function validateManifestYaml(text: string, options: ValidateOptions = {}): ManifestProblem[] {
  const problems: ManifestProblem[] = [];
  const docs = parseAllDocuments(text, { uniqueKeys: true, prettyErrors: false });
  const values = docs.map((doc, i) => {
    for (const e of doc.errors) problems.push({ object: `document ${i + 1}`, path: "", message: `YAML: ${e.message}` });
    return doc.errors.length > 0 ? null : (doc.toJS() as unknown);
  });
  return [...problems, ...validateManifests(values, options)];
}

/** One line per problem (`<object>: <path>: <message>`), for assertion messages. */
export function formatProblems(problems: ManifestProblem[]): string {
  return problems.map((p) => `${p.object}: ${p.path || "/"}: ${p.message}`).join("\n");
}

/**
 * The Kubernetes version(s) the manifests are validated against, for test names and messages: `v1.34.0 and
 * v1.36.3` by default, or the one `options` selects (checked to be pinned).
 */
export function kubernetesVersion(options: ValidateOptions = {}): string {
  if (options.kubernetes !== undefined) return validator(options.kubernetes).version;
  const versions = kubernetesVersions();
  return versions.length <= 1 ? versions.join("") : `${versions.slice(0, -1).join(", ")} and ${versions[versions.length - 1]}`;
}
