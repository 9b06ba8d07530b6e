/**
 * `make synth` runs this before the CDK CLI: it reads and validates terraform.tfvars (TFVARS=<path>) and prints
 * every problem once, exiting 2. (The CLI would print the app's error output twice: as it comes and in its summary.)
 * It loads only the configuration code, so a valid file costs well under the synth itself.
 */
import { ConfigError, loadConfigFile } from "../constructs/config";

loadConfigFile(process.env.TFVARS || "terraform.tfvars").catch((error: unknown) => {
  console.error(error instanceof ConfigError ? error.message : error);
  process.exit(error instanceof ConfigError ? 2 : 1);
});
