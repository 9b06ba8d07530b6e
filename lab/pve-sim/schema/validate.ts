/**
 * Parameter verification as PVE does it before any API method runs (pve-common src/PVE/JSONSchema.pm: validate,
 * check_object, check_prop, check_type, check_format, parse_property_string): the same order of checks, the same
 * first-failure-wins rule per parameter, and the same messages. A request with any error gets
 * `400 Parameter verification failed.` with these texts in `errors`.
 */
import { EndpointSchema, ParamSchema, paramDefinition, PveVersion } from "./index";
import { DRIVE_FORMAT_ALIASES, FORMATS, privilegeCheck, PROPERTY_FORMATS, PROPERTY_VALIDATORS, splitList } from "./formats";
import { parsePropertyString, PropertyFormat, PropertyStringError } from "./property-string";

export interface ValidationContext {
  readonly version: PveVersion;
  /** The version's privilege names (for `pve-priv-list`). */
  readonly privileges: readonly string[];
  /** The endpoint's parameters (for formats that name another parameter's schema, such as `pve-qm-ide`). */
  readonly parameters: Readonly<Record<string, ParamSchema>>;
}

export interface ValidationResult {
  /** Parameter name -> PVE's message; empty when the request is valid. */
  readonly errors: Record<string, string>;
  /** How many request parameters were checked against a definition (every one the request carried). */
  readonly checked: number;
  /** How many property-string keys inside them were checked against their sub-schemas. */
  readonly keysChecked: number;
}

const NOT_DEFINED = "property is not defined in schema and the schema does not allow additional properties";
const MISSING = "property is missing and it is not optional";

function requiresMessage(version: PveVersion, owner: string): string {
  return version === "8.4" ? `missing property - '${owner}' requires this property` : `missing property required by '${owner}'`;
}

const NUMBER = /^[+-]?(\d+\.\d+|\d+\.|\.\d+|\d+)([eE][+-]?\d+)?$/;

/** Validates one request's parameters (path and query/body together, as PVE merges them). */
export function validateParameters(endpoint: EndpointSchema, params: Readonly<Record<string, string>>, context: Omit<ValidationContext, "parameters">): ValidationResult {
  const ctx: ValidationContext = { ...context, parameters: endpoint.parameters };
  const errors: Record<string, string> = {};
  const counter = { keys: 0 };
  let checked = 0;
  for (const [name, value] of Object.entries(params)) {
    const schema = paramDefinition(endpoint.parameters, name);
    checked++;
    if (!schema) {
      if (!endpoint.additionalProperties) errors[name] = NOT_DEFINED;
      continue;
    }
    if (schema.alias) continue; // remapped to its target by the handler, as PVE does
    const error = checkProp(name, schema, value, ctx, counter);
    if (error !== undefined) errors[name] = error;
    if (schema.requires && params[schema.requires] === undefined) errors[schema.requires] = requiresMessage(ctx.version, name);
  }
  for (const [name, schema] of Object.entries(endpoint.parameters)) {
    if (!schema.optional && !name.endsWith("[n]") && params[name] === undefined && errors[name] === undefined) errors[name] = MISSING;
  }
  return { errors, checked, keysChecked: counter.keys };
}

/** check_prop: type, format, pattern, maxLength, minLength, maximum, minimum, enum; the first failure is reported. */
export function checkProp(path: string, schema: ParamSchema, value: string, ctx: ValidationContext, counter = { keys: 0 }): string | undefined {
  switch (schema.type) {
    case "boolean":
      if (value !== "0" && value !== "1") return `type check ('boolean') failed - got '${value}'`;
      break;
    case "integer":
      if (!/^[+-]?\d+$/.test(value)) return `type check ('integer') failed - got '${value}'`;
      break;
    case "number":
      if (!NUMBER.test(value)) return `type check ('number') failed - got '${value}'`;
      break;
    case "array":
    case "object":
      return `type check ('${schema.type}') failed`;
    default:
      break;
  }
  if (schema.format !== undefined) {
    const error = checkFormat(path, schema.format, value, ctx, counter);
    if (error !== undefined) return `invalid format - ${error}`;
  }
  if (schema.pattern !== undefined && !new RegExp(`^(?:${schema.pattern})$`).test(value)) return "value does not match the regex pattern";
  if (schema.maxLength !== undefined && value.length > schema.maxLength) return `value may only be ${schema.maxLength} characters long`;
  if (schema.minLength !== undefined && value.length < schema.minLength) return `value must be at least ${schema.minLength} characters long`;
  if (NUMBER.test(value)) {
    if (schema.maximum !== undefined && Number(value) > schema.maximum) return `value must have a maximum value of ${schema.maximum}`;
    if (schema.minimum !== undefined && Number(value) < schema.minimum) return `value must have a minimum value of ${schema.minimum}`;
  }
  if (schema.enum && !schema.enum.includes(value)) return `value '${value}' does not have a value in the enumeration '${schema.enum.join(", ")}'`;
  return undefined;
}

/** check_format: a property string, `X-list`, `X-opt`, or a named check. Returns the text after `invalid format - `. */
function checkFormat(path: string, format: string | PropertyFormat, value: string, ctx: ValidationContext, counter: { keys: number }): string | undefined {
  if (typeof format !== "string") return checkPropertyString(path, format, value, ctx, counter, undefined);
  if (PROPERTY_FORMATS[format]) return checkPropertyString(path, PROPERTY_FORMATS[format], value, ctx, counter, format);
  const drive = DRIVE_FORMAT_ALIASES[format];
  if (drive) {
    const inline = ctx.parameters[drive]?.format;
    if (typeof inline !== "object") throw new Error(`format ${format}: no inline format for ${drive} in this endpoint's schema`);
    return checkPropertyString(path, inline, value, ctx, counter, undefined);
  }
  if (format === "pve-priv-list") return newline(privilegeCheck(ctx.privileges)(value, ctx.version));
  if (format.endsWith("-list")) {
    const element = format.slice(0, -"-list".length);
    for (const item of splitList(value)) {
      const error = checkFormat(path, element, item, ctx, counter);
      if (error !== undefined) return error;
    }
    return undefined;
  }
  if (format.endsWith("-opt")) return value === "" ? undefined : checkFormat(path, format.slice(0, -"-opt".length), value, ctx, counter);
  const check = FORMATS[format];
  if (!check) throw new Error(`the simulator does not implement PVE format '${format}' (parameter ${path})`);
  return newline(check(value, ctx.version));
}

const newline = (text: string | undefined) => (text === undefined ? undefined : `${text}\n`);

/** parse_property_string, then check_object of its keys (errors reported as `format error\n<path>.<key>: <msg>\n`). */
function checkPropertyString(path: string, format: PropertyFormat, value: string, ctx: ValidationContext, counter: { keys: number }, name: string | undefined): string | undefined {
  let values: Record<string, string>;
  try {
    values = parsePropertyString(format, value);
  } catch (error) {
    if (error instanceof PropertyStringError) return error.message;
    throw error;
  }
  const errors: string[] = [];
  for (const [key, sub] of Object.entries(values)) {
    counter.keys++;
    const schema = format[key];
    const error = checkProp(`${path}.${key}`, schema, sub, ctx, counter);
    if (error !== undefined) errors.push(`${path}.${key}: ${error.replace(/\n$/, "")}`);
    if (schema.requires && values[schema.requires] === undefined) errors.push(`${path}.${schema.requires}: ${requiresMessage(ctx.version, `${path}.${key}`)}`);
  }
  for (const [key, schema] of Object.entries(format)) {
    if (!schema.optional && !schema.alias && values[key] === undefined) errors.push(`${path}.${key}: ${MISSING}`);
  }
  if (errors.length > 0) return `format error\n${errors.map((e) => `${e}\n`).join("")}`;
  const validator = name ? PROPERTY_VALIDATORS[name] : undefined;
  return newline(validator?.(values, ctx.version));
}
