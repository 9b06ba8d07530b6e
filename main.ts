/** terraform.tfvars -> ClusterConfig -> the K3sCluster stack and the generated Ansible and manifests. */
import { App } from "cdktn";
import { ConfigError, loadConfigFile } from "./constructs/config";
import { outputDir, writeGenerated } from "./constructs/generate";
import { K3sCluster } from "./constructs/k3s-cluster";

export const STACK_NAME = "k3s";

async function main(): Promise<void> {
  const config = await loadConfigFile(process.env.TFVARS || "terraform.tfvars");
  const app = new App();
  new K3sCluster(app, STACK_NAME, { config, rootDir: outputDir() });
  app.synth();
  writeGenerated(config);
}

main().catch((error: unknown) => {
  console.error(error instanceof ConfigError ? error.message : error);
  process.exit(1);
});
