/**
 * PVE property strings (`virtio=BC:24:11:..,bridge=vmbr0,firewall=0`): parsing as pve-common's
 * `PVE::JSONSchema::parse_property_string` does, and printing as `print_property_string` does.
 */
import type { ParamSchema } from "./index";

export type PropertyFormat = Readonly<Record<string, ParamSchema>>;

/** A parse error with PVE's own text (each ends with a newline, as PVE's `die` messages do). */
export class PropertyStringError extends Error {}

/** `1|on|yes|true` -> 1, `0|off|no|false` -> 0 (pve-common parse_boolean), else undefined. */
export function parseBoolean(value: string): 0 | 1 | undefined {
  if (/^(1|on|yes|true)$/i.test(value)) return 1;
  if (/^(0|off|no|false)$/i.test(value)) return 0;
  return undefined;
}

/**
 * Splits a property string into its keys. Empty parts are skipped (PVE accepts `file=x,media=cdrom,`), aliases are
 * resolved, boolean values normalised to 0/1. Throws PropertyStringError with PVE's message.
 */
export function parsePropertyString(format: PropertyFormat, text: string): Record<string, string> {
  const result: Record<string, string> = {};
  let defaultKey: string | undefined;
  for (const part of text.split(",")) {
    if (/^\s*$/.test(part)) continue;
    const kv = /^([^=]+)=(.+)$/s.exec(part);
    if (kv) {
      let key = kv[1];
      let value = kv[2];
      if (result[key] !== undefined) throw new PropertyStringError(`duplicate key in comma-separated list property: ${key}\n`);
      let schema = format[key];
      if (schema?.alias) {
        if (schema.keyAlias) {
          if (result[schema.keyAlias] !== undefined) throw new PropertyStringError(`key alias '${schema.keyAlias}' is already defined\n`);
          result[schema.keyAlias] = key;
        }
        key = schema.alias;
        schema = format[key];
      }
      if (!schema) throw new PropertyStringError(`invalid key in comma-separated list property: ${key}\n`);
      if (schema.type === "boolean") value = String(parseBoolean(value) ?? value);
      result[key] = value;
    } else if (!part.includes("=")) {
      if (defaultKey) throw new PropertyStringError(`duplicate key in comma-separated list property: ${defaultKey}\n`);
      defaultKey = Object.keys(format).find((key) => format[key].default_key);
      if (!defaultKey) throw new PropertyStringError("value without key, but schema does not define a default key\n");
      if (result[defaultKey]) throw new PropertyStringError(`duplicate key in comma-separated list property: ${defaultKey}\n`);
      result[defaultKey] = part;
    } else {
      throw new PropertyStringError("missing key in comma-separated list property\n");
    }
  }
  return result;
}

/**
 * Prints keys the way PVE writes them to the configuration: the default key first without its name (or, for a
 * key-aliased pair such as net's model/macaddr, as `virtio=<MAC>`), then the other keys in alphabetical order.
 * `skip` names keys that are never printed.
 */
export function printPropertyString(format: PropertyFormat, values: Readonly<Record<string, string | number>>, skip: readonly string[] = []): string {
  const parts: string[] = [];
  const done = new Set(skip);
  const defaultKey = Object.keys(format).find((key) => format[key].default_key);
  if (defaultKey && values[defaultKey] !== undefined) {
    const value = String(values[defaultKey]);
    const keyAliased = format[value]?.keyAlias === defaultKey ? format[value].alias : undefined;
    if (keyAliased && values[keyAliased] !== undefined) {
      parts.push(`${value}=${values[keyAliased]}`);
      done.add(keyAliased);
    } else {
      parts.push(value);
    }
    done.add(defaultKey);
  }
  for (const key of Object.keys(values).sort()) {
    if (done.has(key) || values[key] === undefined) continue;
    parts.push(`${key}=${values[key]}`);
  }
  return parts.join(",");
}

const UNITS = ["K", "M", "G", "T"] as const;

/** `32G`, `2.5G`, `1024` (bytes), `4T`, `1GiB` -> bytes (pve-common parse_size); undefined if malformed. */
export function parseSize(text: string): number | undefined {
  const match = /^(\d+(?:\.\d+)?)([KMGT](?:iB)?)?$/.exec(text);
  if (!match) return undefined;
  const power = match[2] ? UNITS.indexOf(match[2][0] as (typeof UNITS)[number]) + 1 : 0;
  return Math.trunc(Number(match[1]) * 1024 ** power);
}

/** Bytes -> the largest unit that divides them exactly (pve-common format_size): 34359738368 -> `32G`, 0 -> `0T`. */
export function formatSize(bytes: number): string {
  let unit = 0;
  let value = bytes;
  while (unit < UNITS.length && value % 1024 === 0) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? String(bytes) : `${value}${UNITS[unit - 1]}`;
}
