/** Reads the pinned versions from the repository's `versions.env` (shared with the shell scripts). */
import * as fs from "node:fs";
import * as path from "node:path";

export const VERSIONS_FILE = path.resolve(__dirname, "..", "..", "versions.env");

/** `KEY=value` lines; `#` comments and blank lines are ignored, quotes around values are dropped. */
export function readVersions(file = VERSIONS_FILE): Record<string, string> {
  const result: Record<string, string> = {};
  for (const line of fs.readFileSync(file, "utf8").split("\n")) {
    const match = /^\s*([A-Z0-9_]+)=(["']?)(.*)\2\s*$/.exec(line);
    if (match) result[match[1]] = match[3];
  }
  return result;
}
