/**
 * Every key of terraform.tfvars declared as a Terraform variable. The values are read at synth time
 * (constructs/config), so Terraform never uses these variables; but the CDK CLI (`npx cdktn diff` / `deploy`)
 * hands terraform.tfvars to Terraform as a var-file, and Terraform warns about every value it finds undeclared.
 */
import { Construct } from "constructs";
import { TerraformVariable } from "cdktn";
import { CONFIG_SCHEMA, ConfigKey } from "./config/schema";

export class ConfigVariables extends Construct {
  constructor(scope: Construct, id: string) {
    super(scope, id);
    for (const key of Object.keys(CONFIG_SCHEMA) as ConfigKey[]) {
      const spec = CONFIG_SCHEMA[key];
      const variable = new TerraformVariable(this, key, {
        type: spec.type,
        nullable: true,
        description: `terraform.tfvars key, read by the synth (README: configuration reference); Terraform itself does not use it.`,
      });
      variable.overrideLogicalId(key);
      // Optional, so that nothing prompts for it (the CDK's own `default` cannot be null).
      variable.addOverride("default", null);
    }
  }
}
