/**
 * The strict manifest validator (validate.ts) itself: it accepts valid objects and names what is wrong, against each
 * Kubernetes version versions.env pins (every case runs against every schema), and against all of them at once.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import {
  formatProblems,
  kubernetesVersion,
  kubernetesVersions,
  ManifestProblem,
  PinnedSchema,
  pinnedSchemas,
  ValidateOptions,
  validateManifest,
  validateManifests,
  validateManifestYaml,
} from "./validate";

type Obj = Record<string, any>;

const labels = { "app.kubernetes.io/name": "whoami" };
const clone = <T>(v: T): T => structuredClone(v);

function deployment(): Obj {
  return {
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: { name: "whoami", namespace: "apps", labels },
    spec: {
      replicas: 2,
      selector: { matchLabels: labels },
      strategy: { type: "RollingUpdate", rollingUpdate: { maxSurge: 1, maxUnavailable: "25%" } },
      template: {
        metadata: { labels, annotations: { "example.com/restart": "1" } },
        spec: {
          serviceAccountName: "whoami",
          automountServiceAccountToken: false,
          securityContext: { runAsNonRoot: true, runAsUser: 65534, fsGroup: 65534, seccompProfile: { type: "RuntimeDefault" } },
          containers: [
            {
              name: "whoami",
              image: "traefik/whoami:v1.10",
              imagePullPolicy: "IfNotPresent",
              args: ["--port", "8080"],
              env: [{ name: "WHOAMI_NAME", value: "x" }, { name: "POD", valueFrom: { fieldRef: { fieldPath: "metadata.name" } } }],
              ports: [{ name: "http", containerPort: 8080, protocol: "TCP" }],
              readinessProbe: { httpGet: { path: "/health", port: "http" }, periodSeconds: 5 },
              livenessProbe: { tcpSocket: { port: 8080 }, initialDelaySeconds: 3, failureThreshold: 3 },
              resources: { requests: { cpu: "50m", memory: "32Mi" }, limits: { cpu: 0.5, memory: "64Mi", "ephemeral-storage": "1G" } },
              securityContext: {
                allowPrivilegeEscalation: false,
                readOnlyRootFilesystem: true,
                capabilities: { drop: ["ALL"] },
              },
              volumeMounts: [{ name: "tmp", mountPath: "/tmp" }],
            },
          ],
          volumes: [{ name: "tmp", emptyDir: { sizeLimit: "16Mi" } }],
        },
      },
    },
  };
}

function pvc(): Obj {
  return {
    apiVersion: "v1",
    kind: "PersistentVolumeClaim",
    metadata: { name: "data", namespace: "apps" },
    spec: { accessModes: ["ReadWriteOnce"], storageClassName: "local-path", resources: { requests: { storage: "1Gi" } } },
  };
}

const valid: Obj[] = [
  { apiVersion: "v1", kind: "Namespace", metadata: { name: "apps", labels: { "pod-security.kubernetes.io/enforce": "restricted" } } },
  deployment(),
  {
    apiVersion: "v1",
    kind: "Service",
    metadata: { name: "whoami", namespace: "apps", labels },
    spec: {
      type: "NodePort",
      selector: labels,
      ports: [
        { name: "http", port: 80, targetPort: 8080, nodePort: 30080, protocol: "TCP" },
        { name: "alt", port: 8081, targetPort: "http" },
      ],
    },
  },
  {
    apiVersion: "networking.k8s.io/v1",
    kind: "Ingress",
    metadata: { name: "whoami", namespace: "apps", annotations: { "traefik.ingress.kubernetes.io/router.entrypoints": "web" } },
    spec: {
      ingressClassName: "traefik",
      rules: [
        {
          host: "whoami.example.internal",
          http: {
            paths: [
              { path: "/", pathType: "Prefix", backend: { service: { name: "whoami", port: { number: 80 } } } },
              { path: "/alt", pathType: "Exact", backend: { service: { name: "whoami", port: { name: "alt" } } } },
            ],
          },
        },
      ],
    },
  },
  {
    apiVersion: "networking.k8s.io/v1",
    kind: "IngressClass",
    metadata: { name: "traefik", annotations: { "ingressclass.kubernetes.io/is-default-class": "true" } },
    spec: { controller: "traefik.io/ingress-controller" },
  },
  {
    apiVersion: "rbac.authorization.k8s.io/v1",
    kind: "ClusterRole",
    metadata: { name: "traefik" },
    rules: [
      { apiGroups: [""], resources: ["services", "endpoints", "secrets"], verbs: ["get", "list", "watch"] },
      { apiGroups: ["networking.k8s.io"], resources: ["ingresses/status"], verbs: ["update"] },
    ],
  },
  {
    apiVersion: "rbac.authorization.k8s.io/v1",
    kind: "ClusterRoleBinding",
    metadata: { name: "traefik" },
    roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: "traefik" },
    subjects: [{ kind: "ServiceAccount", name: "traefik", namespace: "kube-system" }],
  },
  { apiVersion: "v1", kind: "ServiceAccount", metadata: { name: "whoami", namespace: "apps" }, automountServiceAccountToken: false },
  pvc(),
  { apiVersion: "v1", kind: "Secret", metadata: { name: "s", namespace: "apps" }, type: "Opaque", data: { token: "c2VjcmV0" } },
  { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "c", namespace: "apps" }, data: { "app.conf": "x = 1\n" } },
];

/** The problems of `doc`, expecting exactly one: a broken object must be reported for that, and only that. */
function onlyProblem(doc: unknown, options: ValidateOptions = {}): ManifestProblem {
  const problems = validateManifest(doc, options);
  expect(problems, formatProblems(problems)).toHaveLength(1);
  return problems[0];
}

const SCHEMA_DIR = path.join(__dirname, "schema");
const versionsEnv = fs.readFileSync(path.resolve(__dirname, "..", "..", "versions.env"), "utf8");

const cases = pinnedSchemas().map((s): [string, string, PinnedSchema] => [s.version, s.variable, s]);
describe.each(cases)("strict manifest validation (Kubernetes %s, %s)", (_version, _variable, schema) => {
  const at: ValidateOptions = { kubernetes: schema.version };
  const only = (doc: unknown) => onlyProblem(doc, at);

  it("validates against the Kubernetes version pinned in versions.env, from the schema file of its module", () => {
    const module = new RegExp(`^${schema.variable}=(\\S+@(v\\d+\\.\\d+\\.\\d+)\\S*)\\s*$`, "m").exec(versionsEnv);
    expect(module?.[2]).toBeDefined();
    expect(kubernetesVersion(at)).toBe(module?.[2]);
    const file = JSON.parse(fs.readFileSync(path.join(SCHEMA_DIR, `kubernetes-${schema.version}.json`), "utf8"));
    expect({ module: file.module, kubernetesVersion: file.kubernetesVersion }).toEqual({ module: module?.[1], kubernetesVersion: schema.version });
  });

  it.each(valid.map((doc) => [`${doc.kind} ${doc.metadata.name}`, doc]))("accepts a valid %s", (_, doc) => {
    const problems = validateManifest(doc, at);
    expect(formatProblems(problems)).toBe("");
  });

  it("accepts all of them at once, treats null fields as absent and skips empty documents", () => {
    const withNulls = deployment();
    withNulls.metadata.creationTimestamp = null;
    withNulls.spec.template.metadata.creationTimestamp = null;
    withNulls.status = null;
    expect(formatProblems(validateManifests([...valid, withNulls, null], at))).toBe("");
  });

  it("reports an unknown field deep in a pod spec with its path, and suggests the right name", () => {
    const doc = deployment();
    doc.spec.template.spec.containers[0].imagePullPolicyy = doc.spec.template.spec.containers[0].imagePullPolicy;
    const p = only(doc);
    expect(p.object).toBe("Deployment apps/whoami");
    expect(p.path).toBe("/spec/template/spec/containers/0/imagePullPolicyy");
    expect(p.message).toContain('unknown field "imagePullPolicyy"');
    expect(p.message).toContain('did you mean "imagePullPolicy"');
  });

  it("reports unknown fields at every depth (closed objects), not only in the pod spec", () => {
    const doc = deployment();
    doc.spec.template.spec.containers[0].securityContext.capabilities.dropp = ["NET_RAW"];
    doc.spec.template.spec.containers[0].readinessProbe.httpGet.paths = "/";
    doc.metadata.lables = {};
    doc.specs = {};
    const paths = validateManifest(doc, at).map((p) => p.path);
    expect(paths.sort()).toEqual(
      [
        "/metadata/lables",
        "/spec/template/spec/containers/0/readinessProbe/httpGet/paths",
        "/spec/template/spec/containers/0/securityContext/capabilities/dropp",
        "/specs",
      ].sort(),
    );
  });

  it("reports a wrong type", () => {
    const doc = deployment();
    doc.spec.replicas = "two";
    const p = only(doc);
    expect(p.path).toBe("/spec/replicas");
    expect(p.message).toMatch(/must be integer.*"two"/);
  });

  it("reports int-or-string values that are neither, and integers out of int32 range", () => {
    const doc = deployment();
    doc.spec.template.spec.containers[0].livenessProbe.tcpSocket.port = 80.5;
    expect(only(doc)).toMatchObject({ path: "/spec/template/spec/containers/0/livenessProbe/tcpSocket/port", message: expect.stringMatching(/integer or string/) });
    const big = deployment();
    big.spec.template.spec.containers[0].ports[0].containerPort = 2 ** 31;
    expect(only(big)).toMatchObject({ path: "/spec/template/spec/containers/0/ports/0/containerPort", message: expect.stringMatching(/32-bit integer/) });
  });

  it("reports a missing required field", () => {
    const doc = deployment();
    delete doc.spec.template.spec.containers[0].name;
    const p = only(doc);
    expect(p.path).toBe("/spec/template/spec/containers/0/name");
    expect(p.message).toContain('required field "name" is missing');
    const noSelector = deployment();
    delete noSelector.spec.selector;
    expect(only(noSelector).path).toBe("/spec/selector");
  });

  it("rejects beta APIs and unknown kinds", () => {
    const psp = only({ apiVersion: "policy/v1beta1", kind: "PodSecurityPolicy", metadata: { name: "restricted" }, spec: {} });
    expect(psp.path).toBe("/apiVersion");
    expect(psp.message).toContain(`policy/v1beta1 PodSecurityPolicy is not a GA kind of Kubernetes ${schema.version}`);
    expect(only({ apiVersion: "foo/v1", kind: "Bar", metadata: { name: "x" } }).message).toContain("foo/v1 Bar is not a GA kind");
    expect(only({ ...valid[2], apiVersion: "apps/v1/v1" }).path).toBe("/apiVersion");
    const betaIngress = only({ ...valid[3], apiVersion: "networking.k8s.io/v1beta1" });
    expect(betaIngress.message).toContain("Ingress is served as networking.k8s.io/v1");
    expect(only({ apiVersion: "v1", kind: "Deployment", metadata: { name: "x" } }).message).toContain("served as apps/v1");
  });

  it("reports a malformed quantity and accepts the Kubernetes quantity forms", () => {
    const doc = pvc();
    doc.spec.resources.requests.storage = "1 GB";
    const p = only(doc);
    expect(p.object).toBe("PersistentVolumeClaim apps/data");
    expect(p.path).toBe("/spec/resources/requests/storage");
    expect(p.message).toMatch(/must be a quantity.*"1 GB"/);
    for (const good of ["1Gi", "500M", "1.5", ".5", "100m", "1e3", "+2Ki", 2, 0.25]) {
      const ok = pvc();
      ok.spec.resources.requests.storage = good;
      expect(validateManifest(ok, at), String(good)).toEqual([]);
    }
    for (const bad of ["1GB", "Gi", "1 Gi", "1gi", "", "1.2.3", true]) {
      const wrong = pvc();
      wrong.spec.resources.requests.storage = bad;
      expect(only(wrong).path, String(bad)).toBe("/spec/resources/requests/storage");
    }
  });

  it("requires metadata.name on every object", () => {
    const ns = only({ apiVersion: "v1", kind: "Namespace", metadata: { labels: { a: "b" } } });
    expect(ns).toEqual({ object: "Namespace <no name>", path: "/metadata/name", message: expect.stringContaining("metadata.name is required") });
    expect(only({ apiVersion: "v1", kind: "ServiceAccount" }).path).toBe("/metadata/name");
    const inList = validateManifests([valid[0], { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "" } }], at);
    expect(inList).toEqual([{ object: "ConfigMap <no name> (document 2)", path: "/metadata/name", message: expect.any(String) }]);
  });

  it("rejects documents that are not objects, or lack apiVersion/kind", () => {
    expect(validateManifest("kind: Namespace", at)[0].message).toContain("must be a mapping");
    expect(validateManifest({ kind: "Namespace", metadata: { name: "x" } }, at)).toEqual([
      { object: "Namespace x", path: "/apiVersion", message: expect.stringContaining("apiVersion") },
    ]);
  });

  it("validates YAML text, reporting duplicate keys as kubectl's strict validation does", () => {
    const good = "# comment\n---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: apps\n  creationTimestamp: null\n---\n";
    expect(validateManifestYaml(good, at)).toEqual([]);
    const dup = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: apps\n  name: other\n";
    expect(formatProblems(validateManifestYaml(dup, at))).toMatch(/document 1.*YAML.*(duplicate|unique)/i);
    const typo = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: apps\n---\napiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: sa\n  namespace: apps\nautomountServiceAccountTokens: false\n";
    expect(validateManifestYaml(typo, at)).toEqual([
      { object: "ServiceAccount apps/sa", path: "/automountServiceAccountTokens", message: expect.stringContaining("unknown field") },
    ]);
  });

  it("is fast once compiled: 50 objects well under a second", () => {
    const docs = Array.from({ length: 50 }, (_, i) => clone(valid[i % valid.length]));
    validateManifests(docs, at); // compiles what is not compiled yet
    const start = performance.now();
    const problems = validateManifests(docs, at);
    const elapsed = performance.now() - start;
    expect(problems).toEqual([]);
    expect(elapsed).toBeLessThan(500);
  });
});

/** The GA "group/version/kind"s of a schema file. */
function gaKinds(version: string): Map<string, Gvk> {
  const file = JSON.parse(fs.readFileSync(path.join(SCHEMA_DIR, `kubernetes-${version}.json`), "utf8"));
  const kinds = new Map<string, Gvk>();
  for (const def of Object.values(file.definitions) as Obj[]) {
    for (const g of (def["x-kubernetes-group-version-kind"] ?? []) as Gvk[]) kinds.set(`${g.group}/${g.version}/${g.kind}`, g);
  }
  return kinds;
}
type Gvk = { group: string; version: string; kind: string };

describe(`strict manifest validation against every pinned Kubernetes at once (${kubernetesVersion()}, the default)`, () => {
  it("pins two different versions: the e2e's K3s build's and the users' default", () => {
    expect(pinnedSchemas().map((s) => s.variable)).toEqual(["KUBERNETES_SCHEMA_MODULE", "KUBERNETES_SCHEMA_MODULE_DEFAULT"]);
    expect(new Set(kubernetesVersions()).size).toBe(2);
    expect(kubernetesVersion()).toBe(kubernetesVersions().join(" and "));
  });

  it("accepts what every version accepts", () => {
    expect(formatProblems(validateManifests(valid))).toBe("");
    expect(validateManifestYaml("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: apps\n")).toEqual([]);
  });

  it("reports a problem that every version reports once, as it is", () => {
    const doc = deployment();
    doc.spec.replicas = "two";
    const p = onlyProblem(doc);
    expect(p.path).toBe("/spec/replicas");
    expect(p.message).not.toMatch(/\(Kubernetes /);
    expect(p).toEqual(onlyProblem(doc, { kubernetes: kubernetesVersions()[0] }));
  });

  // A kind one pinned version serves as GA and another does not (computed from the schema files, so it holds
  // whichever versions are pinned; if none differ, there is nothing to check).
  const [older, newer] = kubernetesVersions();
  const added = [...gaKinds(newer).entries()].filter(([key]) => !gaKinds(older).has(key)).map(([, g]) => g)[0];
  it.skipIf(added === undefined)(`reports what only some versions report, naming them (${added?.kind ?? "no kind"} is GA in ${newer} only)`, () => {
    const doc = { apiVersion: `${added!.group ? `${added!.group}/` : ""}${added!.version}`, kind: added!.kind, metadata: { name: "x" }, spec: {} };
    const problems = validateManifest(doc);
    const perVersion = (v: string) => validateManifest(doc, { kubernetes: v });
    expect(perVersion(older)).toEqual([{ object: `${added!.kind} x`, path: "/apiVersion", message: expect.stringContaining(`is not a GA kind of Kubernetes ${older}`) }]);
    // The older version's problem names its version already; the newer one's (if any) get theirs appended.
    expect(problems).toEqual([
      ...perVersion(older),
      ...perVersion(newer).map((p) => ({ ...p, message: `${p.message} (Kubernetes ${newer})` })),
    ]);
    const unknown = { ...deployment(), specs: {} };
    expect(validateManifest(unknown).map((p) => p.message)).toEqual(['unknown field "specs" (did you mean "spec"?)']);
  });

  // A kind both versions serve whose bare object (apiVersion, kind, a name) only the newer one rejects, e.g. for a
  // field it made required (searched in the schema files, so it holds whichever versions are pinned).
  const bare = (g: Gvk) => ({ apiVersion: `${g.group ? `${g.group}/` : ""}${g.version}`, kind: g.kind, metadata: { name: "x" } });
  const stricter = [...gaKinds(newer).entries()]
    .filter(([key, g]) => gaKinds(older).has(key) && !g.kind.endsWith("List"))
    .map(([, g]) => g)
    .find((g) => validateManifest(bare(g), { kubernetes: older }).length === 0 && validateManifest(bare(g), { kubernetes: newer }).length > 0);
  it.skipIf(stricter === undefined)(`says which version reports a problem the others do not (a bare ${stricter?.kind ?? "object"})`, () => {
    const doc = bare(stricter!);
    const inNewer = validateManifest(doc, { kubernetes: newer });
    expect(validateManifest(doc)).toEqual(inNewer.map((p) => ({ ...p, message: `${p.message} (Kubernetes ${newer})` })));
    expect(formatProblems(validateManifest(doc))).toMatch(new RegExp(`required field .* is missing \\(Kubernetes ${newer.replace(/\./g, "\\.")}\\)`));
  });

  it("refuses a version that versions.env does not pin", () => {
    expect(() => validateManifest(valid[0], { kubernetes: "v1.0.0" })).toThrow(/v1\.0\.0 is not pinned in versions\.env/);
  });
});
