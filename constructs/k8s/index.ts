/**
 * The manifests of `make deploy-apps`, from the configuration: `manifests/<app>.yaml` for every enabled app
 * (applied in file-name order) and `manifests/removed/<app>.yaml` for every disabled one (its objects, which
 * the deploy deletes). They depend on the configuration, so synth writes them and git ignores them.
 */
import { Document } from "yaml";
import type { ClusterConfig } from "../config";
import type { GeneratedFile } from "../generated-file";
import { APPS, appObjects } from "./apps";

export { appEndpoints, APPS, DASHBOARD_ACCOUNTS, dashboardLogin, NAMESPACES, WHOAMI_PATH } from "./apps";

export const MANIFESTS_DIR = "manifests";

/** Kubernetes objects as a multi-document YAML file, headed by where it comes from. */
export function manifestYaml(objects: readonly Record<string, unknown>[], intro: string): string {
  // YAML 1.1, as the API server's parser reads it: strings such as "on" or "0644" stay strings.
  const docs = objects.map((object) => new Document(object, { version: "1.1" }).toString({ lineWidth: 0 }));
  return [`# generated — edit constructs/k8s/, then run make synth\n# ${intro}\n`, ...docs].join("---\n");
}

export function manifestFiles(config: ClusterConfig): GeneratedFile[] {
  return APPS.map((app) => {
    const enabled = app.enabled(config);
    return {
      path: enabled ? `${MANIFESTS_DIR}/${app.id}.yaml` : `${MANIFESTS_DIR}/removed/${app.id}.yaml`,
      content: manifestYaml(
        appObjects(app, config),
        enabled ? "make deploy-apps applies these objects." : "This app is disabled: make deploy-apps deletes these objects if they exist.",
      ),
      configDependent: true,
    };
  });
}
