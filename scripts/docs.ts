/** `make docs`: rewrites the configuration reference in README.md from constructs/config/schema.ts. */
import * as fs from "node:fs";
import * as path from "node:path";
import { updateReadme } from "../constructs/config/reference";

const readme = path.resolve(__dirname, "..", "README.md");
fs.writeFileSync(readme, updateReadme(fs.readFileSync(readme, "utf8")));
