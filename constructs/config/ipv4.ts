/** IPv4 arithmetic the address plan needs, on top of ipaddr.js parsing. */
import * as ipaddr from "ipaddr.js";

export interface Cidr {
  /** The text as written, e.g. `192.168.1.0/24`. */
  readonly text: string;
  /** First address of the block (the network address) as an unsigned 32-bit number. */
  readonly first: number;
  /** Last address of the block (the broadcast address). */
  readonly last: number;
  readonly prefix: number;
}

/** True for a dotted-quad IPv4 address such as `192.168.1.10` (no shorthand forms). */
export function isIpv4(text: string): boolean {
  return ipaddr.IPv4.isValidFourPartDecimal(text);
}

export function ipToInt(text: string): number {
  return ipaddr.IPv4.parse(text).octets.reduce((acc, octet) => acc * 256 + octet, 0);
}

export function intToIp(value: number): string {
  return [24, 16, 8, 0].map((shift) => Math.floor(value / 2 ** shift) % 256).join(".");
}

/** Parses `a.b.c.d/n`; returns undefined for anything else, including host bits set. */
export function parseCidr(text: string): Cidr | undefined {
  const [address, prefixText, ...rest] = text.split("/");
  if (rest.length > 0 || !isIpv4(address ?? "") || !/^\d{1,2}$/.test(prefixText ?? "")) return undefined;
  const prefix = Number(prefixText);
  if (prefix > 32) return undefined;
  const size = 2 ** (32 - prefix);
  const first = ipToInt(address);
  if (first % size !== 0) return undefined;
  return { text, first, last: first + size - 1, prefix };
}

export function contains(cidr: Cidr, ip: number): boolean {
  return ip >= cidr.first && ip <= cidr.last;
}

export function overlaps(a: Cidr, b: Cidr): boolean {
  return a.first <= b.last && b.first <= a.last;
}
