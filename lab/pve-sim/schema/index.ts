/**
 * The PVE API schema of the endpoints the simulator serves, as data (schema/pve-<version>.json): parameter
 * definitions, permission checks and return types, for the PVE version being simulated.
 *
 * The JSON files hold facts read from the PVE API viewer data of pve-docs (branch stable-bookworm for 8.4, master
 * for 9.1; the exact commits are in each file's `source`). They keep PVE's own shapes: a numbered family such as
 * `net[n]` appears once with its `index_range`, and a property-string parameter has its sub-schema under `format`.
 */
import * as fs from "node:fs";
import * as path from "node:path";

/** One parameter (or property-string key) as PVE's JSONSchema describes it. */
export interface ParamSchema {
  readonly type?: "string" | "integer" | "number" | "boolean" | "array" | "object" | "null";
  /** A named format (`pve-vmid`, `pve-qm-ipconfig`, `address-list`, ...) or an inline property-string schema. */
  readonly format?: string | Readonly<Record<string, ParamSchema>>;
  readonly enum?: readonly string[];
  readonly pattern?: string;
  readonly minimum?: number;
  readonly maximum?: number;
  readonly maxLength?: number;
  readonly minLength?: number;
  readonly optional?: number;
  readonly default?: unknown;
  /** In a property string: the key a bare value (without `key=`) belongs to. */
  readonly default_key?: number;
  /** In a property string: this key is another key's alias (`volume` -> `file`, `virtio` -> `macaddr`). */
  readonly alias?: string;
  /** In a property string: the key name is also the value of this key (`virtio=<MAC>` sets `model=virtio`). */
  readonly keyAlias?: string;
  /** In a property string: this key needs that one. */
  readonly requires?: string;
  /** A numbered family (`net[n]`): the indexes PVE accepts. */
  readonly index_range?: { readonly min: number; readonly max: number };
  readonly items?: ParamSchema;
  readonly properties?: Readonly<Record<string, ParamSchema>>;
}

/** A permission check in PVE's form: `["perm", path, [privs], "any", 1]`, `["and", ...]`, `["or", ...]`. */
export type PermCheck = readonly unknown[];

export interface EndpointSchema {
  readonly permissions: { readonly user?: "all" | "world"; readonly check?: PermCheck };
  /** 0: API tokens may not call it (PVE answers 403). */
  readonly allowtoken: number;
  readonly additionalProperties: number;
  readonly parameters: Readonly<Record<string, ParamSchema>>;
  readonly returns: ParamSchema;
}

export interface PveSchema {
  /** `8.4` or `9.1`. */
  readonly pve: string;
  readonly source: string;
  /** Every privilege name this version knows (what `pveum role add` accepts). */
  readonly privileges: readonly string[];
  /** Keyed `"<METHOD> <path template>"`, e.g. `"PUT /nodes/{node}/qemu/{vmid}/config"`. */
  readonly endpoints: Readonly<Record<string, EndpointSchema>>;
}

/** The PVE versions the simulator can present itself as. */
export const PVE_VERSIONS = ["8.4", "9.1"] as const;
export type PveVersion = (typeof PVE_VERSIONS)[number];

const cache = new Map<string, PveSchema>();

export function loadSchema(version: PveVersion): PveSchema {
  let schema = cache.get(version);
  if (!schema) {
    schema = JSON.parse(fs.readFileSync(path.join(__dirname, `pve-${version}.json`), "utf8")) as PveSchema;
    cache.set(version, schema);
  }
  return schema;
}

/**
 * The definition of parameter `name` among `params`: itself, or the numbered family it belongs to
 * (`net0` -> `net[n]` when 0 is in the family's index range).
 */
export function paramDefinition(params: Readonly<Record<string, ParamSchema>>, name: string): ParamSchema | undefined {
  if (Object.prototype.hasOwnProperty.call(params, name)) return params[name];
  const match = /^([a-z][a-z_-]*?)(\d+)$/.exec(name);
  if (!match) return undefined;
  const family = params[`${match[1]}[n]`];
  if (!family) return undefined;
  const index = Number(match[2]);
  const range = family.index_range;
  if (range && (index < range.min || index > range.max || String(index) !== match[2])) return undefined;
  return family;
}
