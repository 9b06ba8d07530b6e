import * as fs from "node:fs";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { parse, parseAllDocuments } from "yaml";
import { groupVarsValues } from "../../../constructs/ansible/group-vars";
import { writeGenerated } from "../../../constructs/generate";
import { manifestFiles } from "../../../constructs/k8s";
import { tempDir, testConfig } from "../../helpers";
import { formatProblems, kubernetesVersion, validateManifestYaml } from "../../k8s/validate";

type K8sObject = { apiVersion: string; kind: string; metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> }; spec?: any };

/** The objects of every generated manifest, parsed back from the YAML text, by file. */
function manifests(overrides: Record<string, unknown> = {}): Map<string, K8sObject[]> {
  return new Map(
    manifestFiles(testConfig(overrides)).map((file) => [file.path, parseAllDocuments(file.content).map((doc) => doc.toJS() as K8sObject)]),
  );
}
const scratch = tempDir("k3spve-manifests-");
const all = (files: Map<string, K8sObject[]>) => [...files.values()].flat();
const find = (objects: K8sObject[], kind: string, name: string) => {
  const found = objects.find((o) => o.kind === kind && o.metadata.name === name);
  if (!found) throw new Error(`no ${kind} ${name}`);
  return found;
};

describe("manifests", () => {
  it.each([
    ["every app enabled", {}],
    ["every app disabled (the removed/ lists)", { traefik_enabled: false, dashboard_enabled: false, whoami_enabled: false, uptime_kuma_enabled: false }],
    ["the hardened profile (NetworkPolicies, Pod Security labels)", { security_profile: "hardened" }],
  ])(`pass strict validation against the Kubernetes ${kubernetesVersion()} schema: %s`, (_, overrides) => {
    for (const file of manifestFiles(testConfig(overrides))) {
      const problems = validateManifestYaml(file.content);
      expect(problems, `${file.path}:\n${formatProblems(problems)}`).toEqual([]);
    }
  });

  it("has one file per app, namespaces first, all applied when every app is enabled", () => {
    expect([...manifests().keys()]).toEqual([
      "manifests/00-namespaces.yaml",
      "manifests/10-traefik.yaml",
      "manifests/20-headlamp.yaml",
      "manifests/30-whoami.yaml",
      "manifests/40-uptime-kuma.yaml",
    ]);
    expect(find(all(manifests()), "Namespace", "monitoring")).toBeDefined();
    expect(find(all(manifests()), "Namespace", "apps")).toBeDefined();
  });

  it("puts each app in the design document's namespace", () => {
    const objects = all(manifests());
    const namespaceOf = (name: string) => find(objects, "Deployment", name).metadata.namespace;
    expect([namespaceOf("traefik"), namespaceOf("headlamp"), namespaceOf("whoami"), namespaceOf("uptime-kuma")]).toEqual(["kube-system", "monitoring", "apps", "monitoring"]);
  });

  it("gives every workload a pinned image, requests and limits, probes, a strict security context and the recommended labels", () => {
    const deployments = all(manifests()).filter((o) => o.kind === "Deployment");
    expect(deployments).toHaveLength(4);
    for (const d of deployments) {
      const pod = d.spec.template.spec;
      expect(pod.securityContext, d.metadata.name).toMatchObject({ runAsNonRoot: true, seccompProfile: { type: "RuntimeDefault" } });
      expect(pod.securityContext.runAsUser).toBeGreaterThan(0);
      for (const c of pod.containers) {
        expect(c.image).toMatch(/:[\w][\w.-]*$/);
        expect(c.image).not.toMatch(/:latest$/);
        expect(Object.keys(c.resources.requests).sort()).toEqual(["cpu", "memory"]);
        expect(Object.keys(c.resources.limits).sort()).toEqual(["cpu", "memory"]);
        const portNames = c.ports.map((p: { name: string }) => p.name);
        for (const probe of [c.readinessProbe, c.livenessProbe]) expect(portNames).toContain(probe.httpGet.port);
        expect(c.securityContext).toMatchObject({ allowPrivilegeEscalation: false, privileged: false, capabilities: { drop: ["ALL"] } });
      }
      const labels = d.metadata.labels!;
      expect(Object.keys(labels).sort()).toEqual(
        ["component", "instance", "managed-by", "name", "part-of", "version"].map((k) => `app.kubernetes.io/${k}`),
      );
      expect(labels["app.kubernetes.io/version"]).toBe(pod.containers[0].image.split(":").pop());
      expect(pod.containers[0].image).toBe(
        { traefik: "traefik:v3.5.3", headlamp: "ghcr.io/headlamp-k8s/headlamp:v0.35.0", whoami: "traefik/whoami:v1.11.0", "uptime-kuma": "louislam/uptime-kuma:1.23.16" }[d.metadata.name],
      );
      // The selector matches the pod template, and only on labels that never change.
      expect(d.spec.template.metadata.labels).toMatchObject(d.spec.selector.matchLabels);
      expect(Object.keys(d.spec.selector.matchLabels).sort()).toEqual(["app.kubernetes.io/instance", "app.kubernetes.io/name"]);
    }
  });

  it("exposes each app on its configured NodePort, through a port the pod declares", () => {
    const nodePorts = (overrides: Record<string, unknown>) =>
      Object.fromEntries(
        all(manifests(overrides))
          .filter((o) => o.kind === "Service")
          .flatMap((s) => s.spec.ports.map((p: { name: string; nodePort: number }) => [`${s.metadata.name}/${p.name}`, p.nodePort])),
      );
    expect(nodePorts({})).toEqual({ "traefik/web": 30080, "traefik/websecure": 30443, "traefik/traefik": 30880, "headlamp/http": 30090, "whoami/http": 30081, "uptime-kuma/http": 30082 });
    expect(nodePorts({ whoami_node_port: 31081, traefik_dashboard_node_port: 31880 })).toMatchObject({ "whoami/http": 31081, "traefik/traefik": 31880 });
    for (const service of all(manifests()).filter((o) => o.kind === "Service")) {
      const deployment = find(all(manifests()), "Deployment", service.metadata.name);
      const declared = deployment.spec.template.spec.containers[0].ports.map((p: { name: string }) => p.name);
      expect(service.spec.type).toBe("NodePort");
      expect(service.spec.selector).toEqual(deployment.spec.selector.matchLabels);
      for (const port of service.spec.ports) expect(declared).toContain(port.targetPort);
    }
  });

  it("makes Traefik's IngressClass the default and routes /whoami to Whoami's service", () => {
    const objects = all(manifests());
    const ingressClass = find(objects, "IngressClass", "traefik");
    expect(ingressClass.metadata.annotations).toEqual({ "ingressclass.kubernetes.io/is-default-class": "true" });
    expect(ingressClass.spec.controller).toBe("traefik.io/ingress-controller");
    const args: string[] = find(objects, "Deployment", "traefik").spec.template.spec.containers[0].args;
    expect(args).toContain("--providers.kubernetesingress=true");
    const path = find(objects, "Ingress", "whoami").spec.rules[0].http.paths[0];
    expect(path).toEqual({ path: "/whoami", pathType: "Prefix", backend: { service: { name: "whoami", port: { name: "http" } } } });
    expect(find(objects, "Deployment", "whoami").spec.replicas).toBe(2);
  });

  it("keeps Uptime Kuma's data on a local-path claim, one pod at a time", () => {
    const objects = all(manifests({ uptime_kuma_storage_gib: 5 }));
    const claim = find(objects, "PersistentVolumeClaim", "uptime-kuma-data");
    expect(claim.spec).toEqual({ accessModes: ["ReadWriteOnce"], storageClassName: "local-path", resources: { requests: { storage: "5Gi" } } });
    const deployment = find(objects, "Deployment", "uptime-kuma");
    expect(deployment.spec.strategy).toEqual({ type: "Recreate" });
    expect(deployment.spec.template.spec.volumes).toEqual([{ name: "data", persistentVolumeClaim: { claimName: "uptime-kuma-data" } }]);
  });

  it("gives the dashboard two login accounts, cluster-admin and the read-only view, and the dashboard pod itself no rights", () => {
    const objects = all(manifests());
    for (const [account, role] of [["headlamp-admin", "cluster-admin"], ["headlamp-viewer", "view"]]) {
      const binding = find(objects, "ClusterRoleBinding", account);
      expect(binding).toMatchObject({ roleRef: { kind: "ClusterRole", name: role } });
      expect((binding as any).subjects).toEqual([{ kind: "ServiceAccount", name: account, namespace: "monitoring" }]);
      expect(find(objects, "ServiceAccount", account)).toMatchObject({ metadata: { namespace: "monitoring" }, automountServiceAccountToken: false });
    }
    expect(objects.filter((o) => o.kind.endsWith("Binding") && (o as any).subjects.some((s: { name: string }) => s.name === "headlamp"))).toEqual([]);
  });

  it("has make dashboard-token log in as the admin under homelab and as the viewer under hardened", () => {
    expect(groupVarsValues(testConfig()).dashboard_login_account).toBe("headlamp-admin");
    expect(groupVarsValues(testConfig({ security_profile: "hardened" })).dashboard_login_account).toBe("headlamp-viewer");
    expect((groupVarsValues(testConfig({ security_profile: "hardened" })).k3s_apps_endpoints as string[]).join("\n")).toMatch(/read-only token of `make dashboard-token` \(cluster-admin: `make dashboard-admin-token`\)/);
  });

  it("under hardened only, denies each app namespace's traffic but DNS, then opens each app's ports and what it must reach", () => {
    expect(all(manifests()).filter((o) => o.kind === "NetworkPolicy")).toEqual([]);
    const objects = all(manifests({ security_profile: "hardened", master_count: 3, api_vip: "192.168.1.9" }));
    const policies = objects.filter((o) => o.kind === "NetworkPolicy");
    expect(policies.map((o) => `${o.metadata.namespace}/${o.metadata.name}`)).toEqual([
      "apps/default-deny",
      "apps/dns",
      "monitoring/default-deny",
      "monitoring/dns",
      "monitoring/headlamp",
      "apps/whoami",
      "monitoring/uptime-kuma",
    ]);
    const spec = (namespace: string, name: string) => policies.find((o) => o.metadata.namespace === namespace && o.metadata.name === name)!.spec;
    expect(spec("apps", "default-deny")).toEqual({ podSelector: {}, policyTypes: ["Ingress", "Egress"] });
    expect(spec("monitoring", "dns")).toEqual({
      podSelector: {},
      policyTypes: ["Egress"],
      egress: [
        {
          to: [{ namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "kube-system" } }, podSelector: { matchLabels: { "k8s-app": "kube-dns" } } }],
          ports: [{ protocol: "UDP", port: 53 }, { protocol: "TCP", port: 53 }],
        },
      ],
    });
    // Whoami: its port, from Traefik's pods only (its one way in under hardened); nothing out but DNS.
    const fromTraefik = [{ namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "kube-system" } }, podSelector: { matchLabels: { "app.kubernetes.io/name": "traefik" } } }];
    expect(spec("apps", "whoami")).toEqual({
      podSelector: { matchLabels: { "app.kubernetes.io/name": "whoami", "app.kubernetes.io/instance": "whoami" } },
      policyTypes: ["Ingress", "Egress"],
      ingress: [{ from: fromTraefik, ports: [{ protocol: "TCP", port: 8080 }] }],
      egress: [],
    });
    // Headlamp reads the cluster through the API: 6443 on every server (after the kubernetes Service's rewrite).
    expect(spec("monitoring", "headlamp").egress).toEqual([
      { to: ["192.168.1.10", "192.168.1.11", "192.168.1.12"].map((ip) => ({ ipBlock: { cidr: `${ip}/32` } })), ports: [{ protocol: "TCP", port: 6443 }] },
    ]);
    expect(spec("monitoring", "headlamp").ingress).toEqual([{ from: fromTraefik, ports: [{ protocol: "TCP", port: 4466 }] }]);
    // Uptime Kuma's checks go wherever the operator points them.
    expect(spec("monitoring", "uptime-kuma").egress).toEqual([{ to: [{ ipBlock: { cidr: "0.0.0.0/0" } }] }]);
  });

  it("gives Traefik's HTTPS entry points the certificate make deploy-apps stores, and probes its ping on a port no Service exposes", () => {
    for (const profile of ["homelab", "hardened"]) {
      const objects = all(manifests({ security_profile: profile }));
      const pod = find(objects, "Deployment", "traefik").spec.template.spec;
      expect(pod.volumes).toEqual(
        expect.arrayContaining([
          { name: "tls", secret: { secretName: "traefik-tls", optional: true } },
          { name: "dynamic", configMap: { name: "traefik-dynamic" } },
        ]),
      );
      const dynamic = parse((find(objects, "ConfigMap", "traefik-dynamic") as any).data["dynamic.yaml"]);
      expect(dynamic.tls.stores.default.defaultCertificate).toEqual({ certFile: "/etc/traefik/tls/tls.crt", keyFile: "/etc/traefik/tls/tls.key" });
      const args: string[] = pod.containers[0].args;
      expect(args).toEqual(expect.arrayContaining(["--entryPoints.websecure.http.tls=true", "--providers.file.filename=/etc/traefik/dynamic/dynamic.yaml", "--ping.entryPoint=ping"]));
      expect(pod.containers[0].readinessProbe.httpGet).toEqual({ path: "/ping", port: "ping" });
      expect(find(objects, "Service", "traefik").spec.ports.map((p: { name: string }) => p.name)).not.toContain("ping");
    }
  });

  it("under hardened serves every app only through Traefik over HTTPS: plain HTTP redirects, the apps' own Services have no NodePort", () => {
    const objects = all(manifests({ security_profile: "hardened" }));
    const services = Object.fromEntries(objects.filter((o) => o.kind === "Service").map((s) => [s.metadata.name, s.spec]));
    for (const name of ["headlamp", "whoami", "uptime-kuma"]) {
      expect(services[name].type, name).toBe("ClusterIP");
      expect(services[name].ports.every((p: { nodePort?: number }) => p.nodePort === undefined), name).toBe(true);
    }
    // Each app keeps its port number, now an HTTPS entry point of Traefik's.
    const traefikPorts = Object.fromEntries(services.traefik.ports.map((p: { name: string; nodePort: number }) => [p.name, p.nodePort]));
    expect(traefikPorts).toEqual({ web: 30080, websecure: 30443, traefik: 30880, headlamp: 30090, whoami: 30081, "uptime-kuma": 30082 });
    const args: string[] = find(objects, "Deployment", "traefik").spec.template.spec.containers[0].args;
    for (const entryPoint of ["websecure", "traefik", "headlamp", "whoami", "uptime-kuma"]) expect(args).toContain(`--entryPoints.${entryPoint}.http.tls=true`);
    expect(args).not.toContain("--entryPoints.web.http.tls=true");
    expect(args).toEqual(expect.arrayContaining(["--entryPoints.web.http.redirections.entryPoint.to=:30443", "--entryPoints.web.http.redirections.entryPoint.scheme=https"]));
    expect(args).not.toContain("--api.insecure=true");
    const dynamic = parse((find(objects, "ConfigMap", "traefik-dynamic") as any).data["dynamic.yaml"]);
    expect(dynamic.http.routers.dashboard).toMatchObject({ entryPoints: ["traefik"], service: "api@internal" });
    expect(dynamic.tls.options.default.minVersion).toBe("VersionTLS12");
    // Each app's route on its own entry point; /whoami on the HTTPS one only.
    for (const [name, namespace] of [["headlamp", "monitoring"], ["whoami", "apps"], ["uptime-kuma", "monitoring"]]) {
      const ingress = find(objects, "Ingress", `${name}-https`);
      expect(ingress.metadata.namespace).toBe(namespace);
      expect(ingress.metadata.annotations).toEqual({ "traefik.ingress.kubernetes.io/router.entrypoints": name });
      expect(ingress.spec.rules[0].http.paths).toEqual([{ path: "/", pathType: "Prefix", backend: { service: { name, port: { name: "http" } } } }]);
    }
    expect(find(objects, "Ingress", "whoami").metadata.annotations).toEqual({ "traefik.ingress.kubernetes.io/router.entrypoints": "websecure" });
    expect(groupVarsValues(testConfig({ security_profile: "hardened" })).k3s_apps_endpoints).toEqual([
      "Traefik dashboard: https://192.168.1.10:30880/dashboard/ — no login: keep it on your LAN",
      "Traefik HTTPS entry point: https://192.168.1.10:30443/ — routes the Ingresses (http://192.168.1.10:30080/ redirects here)",
      "Cluster dashboard (Headlamp): https://192.168.1.10:30090/ — log in with the read-only token of `make dashboard-token` (cluster-admin: `make dashboard-admin-token`)",
      "Whoami: https://192.168.1.10:30081/ — no login",
      "Whoami through Traefik: https://192.168.1.10:30443/whoami — no login",
      "Uptime Kuma: https://192.168.1.10:30082/ — create the admin account on the first visit",
    ]);
    // A disabled app has no entry point.
    const without = find(all(manifests({ security_profile: "hardened", uptime_kuma_enabled: false })), "Service", "traefik").spec.ports.map((p: { name: string }) => p.name);
    expect(without).not.toContain("uptime-kuma");
  });

  it("has the cluster CA's certificate name every node and the VIP, or takes the operator's files", () => {
    const vars = groupVarsValues(testConfig({ master_count: 3, api_vip: "192.168.1.9" }));
    expect(vars.k3s_apps_tls_names).toEqual(["IP:192.168.1.9", "IP:192.168.1.10", "IP:192.168.1.11", "IP:192.168.1.12", "IP:192.168.1.20", "IP:192.168.1.21"]);
    expect(vars.k3s_apps_tls_certificate_file).toBeUndefined();
  });

  it("labels the apps' namespaces Pod Security restricted under hardened only", () => {
    const labels = (profile: string) =>
      all(manifests({ security_profile: profile })).filter((o) => o.kind === "Namespace").map((o) => [o.metadata.name, Object.keys(o.metadata.labels ?? {}).filter((k) => k.startsWith("pod-security"))]);
    expect(labels("homelab")).toEqual([["apps", []], ["monitoring", []]]);
    const hardened = all(manifests({ security_profile: "hardened" })).filter((o) => o.kind === "Namespace");
    expect(hardened.map((o) => o.metadata.name)).toEqual(["apps", "monitoring"]);
    for (const namespace of hardened) {
      expect(namespace.metadata.labels).toMatchObject({
        "pod-security.kubernetes.io/enforce": "restricted",
        "pod-security.kubernetes.io/enforce-version": "latest",
        "pod-security.kubernetes.io/audit": "restricted",
        "pod-security.kubernetes.io/warn": "restricted",
      });
    }
  });

  it("lists a disabled app's objects under removed/, for the deploy to delete", () => {
    const files = manifests({ whoami_enabled: false });
    expect(files.has("manifests/30-whoami.yaml")).toBe(false);
    expect(files.get("manifests/removed/30-whoami.yaml")!.map((o) => `${o.kind}/${o.metadata.name}`)).toEqual(["Deployment/whoami", "PodDisruptionBudget/whoami", "Service/whoami", "Ingress/whoami"]);
    expect((groupVarsValues(testConfig({ whoami_enabled: false })).k3s_apps_endpoints as string[]).join("\n")).not.toMatch(/Whoami/);
  });

  it("keeps an app with 2+ replicas serving through drains: a PodDisruptionBudget and a preStop pause, none for one replica", () => {
    const objects = all(manifests({ whoami_replicas: 3 }));
    expect(find(objects, "PodDisruptionBudget", "whoami")).toMatchObject({
      spec: { maxUnavailable: 1, selector: { matchLabels: { "app.kubernetes.io/instance": "whoami" } } },
    });
    expect((find(objects, "Deployment", "whoami") as any).spec.template.spec.containers[0].lifecycle).toEqual({ preStop: { sleep: { seconds: 5 } } });
    const single = all(manifests({ whoami_replicas: 1 }));
    expect(single.filter((o) => o.kind === "PodDisruptionBudget")).toEqual([]);
    expect((find(single, "Deployment", "whoami") as any).spec.template.spec.containers[0].lifecycle).toBeUndefined();
  });

  it("prints every enabled app's URL at the first master's address", () => {
    expect(groupVarsValues(testConfig()).k3s_apps_endpoints).toEqual([
      "Traefik dashboard: http://192.168.1.10:30880/dashboard/ — no login: keep it on your LAN",
      "Traefik HTTP entry point: http://192.168.1.10:30080/ — routes the Ingresses",
      "Cluster dashboard (Headlamp): http://192.168.1.10:30090/ — log in with the token `make dashboard-token` prints",
      "Whoami: http://192.168.1.10:30081/ — no login",
      "Whoami through Traefik: http://192.168.1.10:30080/whoami — no login",
      "Uptime Kuma: http://192.168.1.10:30082/ — create the admin account on the first visit",
    ]);
  });

  it("synth deletes the manifest of an app that was disabled since the last synth", () => {
    const root = scratch();
    const roots = { repo: path.join(root, "repo"), output: path.join(root, "out") };
    writeGenerated(testConfig(), roots);
    expect(fs.existsSync(path.join(roots.output, "manifests/30-whoami.yaml"))).toBe(true);
    writeGenerated(testConfig({ whoami_enabled: false }), roots);
    expect(fs.readdirSync(path.join(roots.output, "manifests")).sort()).toEqual(["00-namespaces.yaml", "10-traefik.yaml", "20-headlamp.yaml", "40-uptime-kuma.yaml", "removed"]);
    expect(fs.readdirSync(path.join(roots.output, "manifests/removed"))).toEqual(["30-whoami.yaml"]);
    writeGenerated(testConfig(), roots);
    expect(fs.readdirSync(path.join(roots.output, "manifests/removed"))).toEqual([]);
  });
});
