/** terraform.tfvars -> ClusterConfig -> the K3sCluster and template stacks, and the generated Ansible and manifests. */
import { App } from "cdktn";
import { ConfigError, loadConfigFile } from "./constructs/config";
import { outputDir, writeGenerated } from "./constructs/generate";
import { K3sCluster } from "./constructs/k3s-cluster";
import { TemplateStack } from "./constructs/template-stack";

export const STACK_NAME = "k3s";
/** The template's stack (make template): only when something builds the template (template_image is not "prebuilt"). */
export const TEMPLATE_STACK_NAME = "template";

async function main(): Promise<void> {
  const config = await loadConfigFile(process.env.TFVARS || "terraform.tfvars");
  const app = new App();
  new K3sCluster(app, STACK_NAME, { config, rootDir: outputDir() });
  if (config.template.image) new TemplateStack(app, TEMPLATE_STACK_NAME, { config, image: config.template.image, rootDir: outputDir() });
  app.synth();
  writeGenerated(config);
}

main().catch((error: unknown) => {
  console.error(error instanceof ConfigError ? error.message : error);
  process.exit(1);
});
