/**
 * The apps of `make deploy-apps`, one cdk8s Chart each, from the configuration's `apps` section:
 * Traefik (ingress controller, default IngressClass), Headlamp (the cluster dashboard: the Kubernetes
 * Dashboard project was archived in January 2026 and SIG UI points to Headlamp), Whoami and Uptime Kuma.
 */
import { App, Chart } from "cdk8s";
import { k8s } from "cdk8s-plus-34";
import { Construct } from "constructs";
import { stringify } from "yaml";
import { apiAddressOf, type ClusterConfig } from "../config";
import { AppIdentity, appMetadata, PortSpec, selectorLabels, WebApp } from "./web-app";

/** Namespaces `make deploy-apps` creates (and never deletes: they may hold the operator's own objects). */
export const NAMESPACES = { apps: "apps", monitoring: "monitoring" } as const;
/**
 * The dashboard's login accounts, in `monitoring`: `headlamp-admin` (cluster-admin) and `headlamp-viewer` (the
 * built-in read-only ClusterRole `view`, which shows no Secrets). `make dashboard-admin-token` prints a token of the
 * first; `make dashboard-token` one of the first under the homelab profile, of the second under the hardened one.
 */
export const DASHBOARD_ACCOUNTS = {
  namespace: NAMESPACES.monitoring,
  admin: { serviceAccount: "headlamp-admin", clusterRole: "cluster-admin" },
  viewer: { serviceAccount: "headlamp-viewer", clusterRole: "view" },
} as const;
/** The account `make dashboard-token` logs in with. */
export const dashboardLogin = (config: ClusterConfig): string =>
  (config.security.profile === "hardened" ? DASHBOARD_ACCOUNTS.viewer : DASHBOARD_ACCOUNTS.admin).serviceAccount;
/** Pod Security labels of the apps' namespaces under the hardened profile: restricted, enforced, audited, warned. */
export const POD_SECURITY_RESTRICTED = Object.fromEntries(
  ["enforce", "audit", "warn"].flatMap((mode) => [
    [`pod-security.kubernetes.io/${mode}`, "restricted"],
    [`pod-security.kubernetes.io/${mode}-version`, "latest"],
  ]),
);
/** Path under which Traefik routes to Whoami. */
export const WHOAMI_PATH = "/whoami";
/**
 * Traefik's certificate for every HTTPS entry point: a kubernetes.io/tls Secret in kube-system that make
 * deploy-apps writes (the operator's certificate, or one it issues from the cluster CA kept in the Secret caSecret).
 */
export const TLS = { namespace: "kube-system", secret: "traefik-tls", caSecret: "k3s-proxmox-ca", dynamicConfig: "traefik-dynamic" } as const;
const TRAEFIK_TLS_DIR = "/etc/traefik/tls";
const TRAEFIK_DYNAMIC_DIR = "/etc/traefik/dynamic";
/** Traefik's ping (its probes), on an entry point of its own that no Service exposes. */
const TRAEFIK_PING = { name: "ping", containerPort: 9000 } as const;

/**
 * Under hardened the apps' own Services have no NodePort: each app is reached through an HTTPS entry point of
 * Traefik's own, on the NodePort the app had (so its URL keeps its port, now https).
 */
interface HttpsApp {
  /** The app's name: its Service's, its entry point's and its port's in Traefik's Service. */
  readonly name: string;
  readonly enabled: (config: ClusterConfig) => boolean;
  readonly nodePort: (config: ClusterConfig) => number;
  /** Traefik's container port for the entry point. */
  readonly containerPort: number;
}
const HTTPS_APPS: readonly HttpsApp[] = [
  { name: "headlamp", enabled: (c) => c.apps.dashboard.enabled, nodePort: (c) => c.apps.dashboard.nodePort, containerPort: 8444 },
  { name: "whoami", enabled: (c) => c.apps.whoami.enabled, nodePort: (c) => c.apps.whoami.nodePort, containerPort: 8445 },
  { name: "uptime-kuma", enabled: (c) => c.apps.uptimeKuma.enabled, nodePort: (c) => c.apps.uptimeKuma.nodePort, containerPort: 8446 },
];

/** One app: its file under manifests/ and what the deploy prints about it. */
export interface AppDefinition {
  /** Stable id: the manifest's file name without `.yaml`, also under manifests/removed/. */
  readonly id: string;
  readonly enabled: (config: ClusterConfig) => boolean;
  readonly build: (scope: Construct, config: ClusterConfig) => void;
  /** What the operator opens, at `address` (the API's address: api_vip, or the first master's IP; NodePorts answer on every node address). */
  readonly endpoints: (config: ClusterConfig, address: string) => readonly Endpoint[];
}

export interface Endpoint {
  readonly name: string;
  readonly url: string;
  readonly login: string;
}

/** Every URL the enabled apps answer on. */
export function appEndpoints(config: ClusterConfig): Endpoint[] {
  return APPS.filter((app) => app.enabled(config)).flatMap((app) => app.endpoints(config, apiAddressOf(config)));
}

const identity = (config: ClusterConfig, name: string, namespace: string, component: string, image: string): AppIdentity => ({
  name,
  namespace,
  component,
  image,
  partOf: config.clusterName,
});

const hardened = (config: ClusterConfig) => config.security.profile === "hardened";
const tcp = (port: number): k8s.NetworkPolicyPort => ({ protocol: "TCP", port: k8s.IntOrString.fromNumber(port) });

// Under hardened the labels say what the admission configuration enforces there anyway (restricted, where a
// namespace sets nothing): every app passes it (constructs/k8s/web-app.ts's security context). Each namespace
// then denies all traffic to and from its pods but DNS to CoreDNS; each app's own policy (appPolicy) opens the
// rest of what it needs.
function namespaces(scope: Construct, config: ClusterConfig): void {
  const podSecurity = hardened(config) ? POD_SECURITY_RESTRICTED : {};
  for (const name of Object.values(NAMESPACES)) {
    const labels = { "app.kubernetes.io/part-of": config.clusterName, "app.kubernetes.io/managed-by": "k3s-proxmox" };
    new k8s.KubeNamespace(scope, name, { metadata: { name, labels: { ...labels, ...podSecurity } } });
    if (!hardened(config)) continue;
    new k8s.KubeNetworkPolicy(scope, `${name}-default-deny`, {
      metadata: { name: "default-deny", namespace: name, labels },
      spec: { podSelector: {}, policyTypes: ["Ingress", "Egress"] },
    });
    new k8s.KubeNetworkPolicy(scope, `${name}-dns`, {
      metadata: { name: "dns", namespace: name, labels },
      spec: {
        podSelector: {},
        policyTypes: ["Egress"],
        egress: [
          {
            to: [{ namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "kube-system" } }, podSelector: { matchLabels: { "k8s-app": "kube-dns" } } }],
            ports: [{ protocol: "UDP", port: k8s.IntOrString.fromNumber(53) }, tcp(53)],
          },
        ],
      },
    });
  }
}

/**
 * Under hardened, what one app may receive and send beyond DNS: its container ports from Traefik's pods only (its
 * one way in; the kubelet's probes come from the node, which K3s's policy controller always lets through), and, for an app that talks
 * to the Kubernetes API, the API on the servers (NetworkPolicies see the connection after the Service's
 * rewrite, so 6443 on the servers' addresses rather than the `kubernetes` Service's 443); "anywhere" for an app
 * whose job is to reach other machines (Uptime Kuma's checks).
 */
function appPolicy(scope: Construct, config: ClusterConfig, web: WebApp, egress?: "api" | "anywhere"): void {
  if (!hardened(config)) return;
  const to =
    egress === "api"
      ? [{ to: config.masters.map((m) => ({ ipBlock: { cidr: `${m.ip}/32` } })), ports: [tcp(6443)] }]
      : egress === "anywhere"
        ? [{ to: [{ ipBlock: { cidr: "0.0.0.0/0" } }] }]
        : [];
  new k8s.KubeNetworkPolicy(scope, "network-policy", {
    metadata: appMetadata(web.props),
    spec: {
      podSelector: { matchLabels: selectorLabels(web.props) },
      policyTypes: ["Ingress", "Egress"],
      ingress: [
        {
          from: [{ namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": TLS.namespace } }, podSelector: { matchLabels: { "app.kubernetes.io/name": "traefik" } } }],
          ports: web.props.ports.map((p) => tcp(p.containerPort)),
        },
      ],
      egress: to,
    },
  });
}

/** An app's HTTP port: on its own NodePort under homelab; under hardened inside the cluster only (Traefik serves it). */
function appPort(config: ClusterConfig, containerPort: number, nodePort: number): PortSpec {
  return { name: "http", containerPort, servicePort: 80, nodePort: hardened(config) ? undefined : nodePort };
}

/** Under hardened, the app's route on its HTTPS entry point of Traefik (named after the app; every path). */
function httpsIngress(scope: Construct, config: ClusterConfig, web: WebApp): void {
  if (!hardened(config)) return;
  new k8s.KubeIngress(scope, "https-ingress", {
    metadata: { ...appMetadata(web.props, `${web.props.name}-https`), annotations: { "traefik.ingress.kubernetes.io/router.entrypoints": web.props.name } },
    spec: { rules: [{ http: { paths: [{ path: "/", pathType: "Prefix", backend: { service: { name: web.service.name, port: { name: "http" } } } }] } }] },
  });
}

/**
 * Traefik's dynamic configuration (its file provider): the certificate every HTTPS entry point presents, and under
 * hardened TLS 1.2 at least and the dashboard on its own HTTPS entry point.
 */
function traefikDynamicConfig(config: ClusterConfig): string {
  const tls: Record<string, unknown> = {
    stores: { default: { defaultCertificate: { certFile: `${TRAEFIK_TLS_DIR}/tls.crt`, keyFile: `${TRAEFIK_TLS_DIR}/tls.key` } } },
  };
  if (!hardened(config)) return stringify({ tls });
  return stringify({
    tls: { ...tls, options: { default: { minVersion: "VersionTLS12" } } },
    http: { routers: { dashboard: { entryPoints: ["traefik"], rule: "PathPrefix(`/api`) || PathPrefix(`/dashboard`)", service: "api@internal" } } },
  });
}

/** Traefik's entry points (arguments and ports): HTTP, HTTPS, its dashboard, its ping; under hardened one HTTPS entry point per app. */
function traefikEntryPoints(config: ClusterConfig): { args: string[]; ports: PortSpec[] } {
  const t = config.apps.traefik;
  const ports: PortSpec[] = [
    { name: "web", containerPort: 8000, servicePort: 80, nodePort: t.httpNodePort },
    { name: "websecure", containerPort: 8443, servicePort: 443, nodePort: t.httpsNodePort },
    { name: "traefik", containerPort: 8080, servicePort: 8080, nodePort: t.dashboardNodePort },
    { name: TRAEFIK_PING.name, containerPort: TRAEFIK_PING.containerPort },
  ];
  const tlsEntryPoints = ["websecure"];
  if (hardened(config)) {
    tlsEntryPoints.push("traefik");
    for (const app of HTTPS_APPS.filter((a) => a.enabled(config))) {
      ports.push({ name: app.name, containerPort: app.containerPort, servicePort: app.containerPort, nodePort: app.nodePort(config) });
      tlsEntryPoints.push(app.name);
    }
  }
  const args = [
    ...ports.map((p) => `--entryPoints.${p.name}.address=:${p.containerPort}/tcp`),
    ...tlsEntryPoints.map((name) => `--entryPoints.${name}.http.tls=true`),
    // Plain HTTP only redirects, to the HTTPS NodePort (the entry point's own port is not what clients reach).
    ...(hardened(config)
      ? [
          `--entryPoints.web.http.redirections.entryPoint.to=:${t.httpsNodePort}`,
          "--entryPoints.web.http.redirections.entryPoint.scheme=https",
          "--entryPoints.web.http.redirections.entryPoint.permanent=true",
        ]
      : []),
  ];
  return { args, ports };
}

function traefik(scope: Construct, config: ClusterConfig): void {
  const t = config.apps.traefik;
  const app = identity(config, "traefik", "kube-system", "ingress-controller", t.image);
  new k8s.KubeServiceAccount(scope, "service-account", { metadata: appMetadata(app), automountServiceAccountToken: false });
  new k8s.KubeClusterRole(scope, "cluster-role", {
    metadata: appMetadata(app, "traefik", false),
    rules: [
      { apiGroups: [""], resources: ["services", "secrets", "nodes"], verbs: ["get", "list", "watch"] },
      { apiGroups: ["discovery.k8s.io"], resources: ["endpointslices"], verbs: ["list", "watch"] },
      { apiGroups: ["networking.k8s.io"], resources: ["ingresses", "ingressclasses"], verbs: ["get", "list", "watch"] },
      { apiGroups: ["networking.k8s.io"], resources: ["ingresses/status"], verbs: ["update"] },
    ],
  });
  new k8s.KubeClusterRoleBinding(scope, "cluster-role-binding", {
    metadata: appMetadata(app, "traefik", false),
    roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: "traefik" },
    subjects: [{ kind: "ServiceAccount", name: "traefik", namespace: app.namespace }],
  });
  new k8s.KubeIngressClass(scope, "ingress-class", {
    metadata: { ...appMetadata(app, "traefik", false), annotations: { "ingressclass.kubernetes.io/is-default-class": "true" } },
    spec: { controller: "traefik.io/ingress-controller" },
  });
  new k8s.KubeConfigMap(scope, "dynamic-config", {
    metadata: appMetadata(app, TLS.dynamicConfig),
    data: { "dynamic.yaml": traefikDynamicConfig(config) },
  });
  const entryPoints = traefikEntryPoints(config);
  new WebApp(scope, "traefik", {
    ...app,
    replicas: 1,
    serviceAccountName: "traefik",
    apiAccess: true,
    args: [
      ...entryPoints.args,
      // The dashboard and API on the `traefik` entry point: under homelab without login over plain HTTP (the
      // design's homelab choice), under hardened over HTTPS through the dynamic configuration's router.
      "--api.dashboard=true",
      ...(hardened(config) ? [] : ["--api.insecure=true"]),
      "--ping=true",
      `--ping.entryPoint=${TRAEFIK_PING.name}`,
      `--providers.file.filename=${TRAEFIK_DYNAMIC_DIR}/dynamic.yaml`,
      "--providers.kubernetesingress=true",
      "--providers.kubernetesingress.ingressendpoint.publishedservice=kube-system/traefik",
      "--log.level=INFO",
      "--global.checknewversion=false",
      "--global.sendanonymoususage=false",
    ],
    ports: entryPoints.ports,
    probe: { path: "/ping", port: TRAEFIK_PING.name },
    resources: { cpu: ["100m", "500m"], memory: ["64Mi", "256Mi"] },
    security: { user: 65532, group: 65532, readOnlyRootFilesystem: true },
    volumes: [
      { name: "tmp", mountPath: "/tmp" },
      { name: "tls", mountPath: TRAEFIK_TLS_DIR, secret: TLS.secret },
      { name: "dynamic", mountPath: TRAEFIK_DYNAMIC_DIR, configMap: TLS.dynamicConfig },
    ],
  });
}

function headlamp(scope: Construct, config: ClusterConfig): void {
  const d = config.apps.dashboard;
  const app = identity(config, "headlamp", NAMESPACES.monitoring, "dashboard", d.image);
  // The pod's own account has no rights: each user logs in with a token, and sees what that token may see.
  new k8s.KubeServiceAccount(scope, "service-account", { metadata: appMetadata(app), automountServiceAccountToken: true });
  for (const [id, account] of Object.entries({ admin: DASHBOARD_ACCOUNTS.admin, viewer: DASHBOARD_ACCOUNTS.viewer })) {
    const login = { ...app, name: account.serviceAccount };
    new k8s.KubeServiceAccount(scope, `${id}-account`, { metadata: appMetadata(login), automountServiceAccountToken: false });
    new k8s.KubeClusterRoleBinding(scope, `${id}-binding`, {
      metadata: appMetadata(login, account.serviceAccount, false),
      roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: account.clusterRole },
      subjects: [{ kind: "ServiceAccount", name: account.serviceAccount, namespace: DASHBOARD_ACCOUNTS.namespace }],
    });
  }
  const web = new WebApp(scope, "headlamp", {
    ...app,
    replicas: 1,
    serviceAccountName: "headlamp",
    apiAccess: true,
    args: ["-in-cluster", "-plugins-dir=/headlamp/plugins"],
    ports: [appPort(config, 4466, d.nodePort)],
    probe: { path: "/", port: "http" },
    resources: { cpu: ["50m", "500m"], memory: ["64Mi", "256Mi"] },
    security: { user: 100, group: 101, readOnlyRootFilesystem: true },
    volumes: [
      { name: "tmp", mountPath: "/tmp" },
      { name: "config", mountPath: "/home/headlamp/.config" },
    ],
  });
  appPolicy(scope, config, web, "api");
  httpsIngress(scope, config, web);
}

function whoami(scope: Construct, config: ClusterConfig): void {
  const w = config.apps.whoami;
  const app = identity(config, "whoami", NAMESPACES.apps, "web", w.image);
  const web = new WebApp(scope, "whoami", {
    ...app,
    replicas: w.replicas,
    // An unprivileged port: the image is a single static binary, run as nobody.
    args: ["--port", "8080"],
    ports: [appPort(config, 8080, w.nodePort)],
    probe: { path: "/health", port: "http" },
    resources: { cpu: ["10m", "100m"], memory: ["16Mi", "64Mi"] },
    security: { user: 65534, group: 65534, readOnlyRootFilesystem: true },
  });
  appPolicy(scope, config, web);
  httpsIngress(scope, config, web);
  new k8s.KubeIngress(scope, "ingress", {
    // Under hardened on the HTTPS entry point only (plain HTTP redirects there).
    metadata: { ...appMetadata(app), annotations: hardened(config) ? { "traefik.ingress.kubernetes.io/router.entrypoints": "websecure" } : undefined },
    spec: {
      // No ingressClassName: the default IngressClass (Traefik's) takes it.
      rules: [
        {
          http: {
            paths: [
              {
                path: WHOAMI_PATH,
                pathType: "Prefix",
                backend: { service: { name: web.service.name, port: { name: "http" } } },
              },
            ],
          },
        },
      ],
    },
  });
}

function uptimeKuma(scope: Construct, config: ClusterConfig): void {
  const u = config.apps.uptimeKuma;
  const app = identity(config, "uptime-kuma", NAMESPACES.monitoring, "monitoring", u.image);
  new k8s.KubePersistentVolumeClaim(scope, "data", {
    metadata: appMetadata(app, "uptime-kuma-data"),
    spec: {
      accessModes: ["ReadWriteOnce"],
      storageClassName: "local-path",
      resources: { requests: { storage: k8s.Quantity.fromString(`${u.storageGiB}Gi`) } },
    },
  });
  const web = new WebApp(scope, "uptime-kuma", {
    ...app,
    replicas: 1,
    recreate: true,
    // Its SQLite database lives on the volume; the image writes nothing else it needs to keep.
    env: { DATA_DIR: "/app/data/" },
    ports: [appPort(config, 3001, u.nodePort)],
    probe: { path: "/", port: "http", startupSeconds: 180 },
    resources: { cpu: ["100m", "1"], memory: ["128Mi", "512Mi"] },
    // Node.js and its setup write below /app and /tmp: the root file system stays writable, the user is not root.
    security: { user: 1000, group: 1000, fsGroup: 1000, readOnlyRootFilesystem: false },
    volumes: [{ name: "data", mountPath: "/app/data", claim: "uptime-kuma-data" }],
  });
  appPolicy(scope, config, web, "anywhere");
  httpsIngress(scope, config, web);
}

/** http://ADDRESS:PORT, or https under hardened (every app then answers through Traefik's HTTPS entry points). */
const url = (config: ClusterConfig, address: string, port: number, path = "/") => `${hardened(config) ? "https" : "http"}://${address}:${port}${path}`;

/** Every app, in the order they are applied. The namespaces come first and are always present. */
export const APPS: readonly AppDefinition[] = [
  { id: "00-namespaces", enabled: () => true, build: namespaces, endpoints: () => [] },
  {
    id: "10-traefik",
    enabled: (c) => c.apps.traefik.enabled,
    build: traefik,
    endpoints: (c, address) => [
      { name: "Traefik dashboard", url: url(c, address, c.apps.traefik.dashboardNodePort, "/dashboard/"), login: "no login: keep it on your LAN" },
      hardened(c)
        ? { name: "Traefik HTTPS entry point", url: `https://${address}:${c.apps.traefik.httpsNodePort}/`, login: `routes the Ingresses (http://${address}:${c.apps.traefik.httpNodePort}/ redirects here)` }
        : { name: "Traefik HTTP entry point", url: `http://${address}:${c.apps.traefik.httpNodePort}/`, login: "routes the Ingresses" },
    ],
  },
  {
    id: "20-headlamp",
    enabled: (c) => c.apps.dashboard.enabled,
    build: headlamp,
    endpoints: (c, address) => [{ name: "Cluster dashboard (Headlamp)", url: url(c, address, c.apps.dashboard.nodePort), login: c.security.profile === "hardened" ? "log in with the read-only token of `make dashboard-token` (cluster-admin: `make dashboard-admin-token`)" : "log in with the token `make dashboard-token` prints" }],
  },
  {
    id: "30-whoami",
    enabled: (c) => c.apps.whoami.enabled,
    build: whoami,
    endpoints: (c, address) => [
      { name: "Whoami", url: url(c, address, c.apps.whoami.nodePort), login: "no login" },
      ...(c.apps.traefik.enabled
        ? [{ name: "Whoami through Traefik", url: url(c, address, hardened(c) ? c.apps.traefik.httpsNodePort : c.apps.traefik.httpNodePort, WHOAMI_PATH), login: "no login" }]
        : []),
    ],
  },
  {
    id: "40-uptime-kuma",
    enabled: (c) => c.apps.uptimeKuma.enabled,
    build: uptimeKuma,
    endpoints: (c, address) => [{ name: "Uptime Kuma", url: url(c, address, c.apps.uptimeKuma.nodePort), login: "create the admin account on the first visit" }],
  },
];

/** The Kubernetes objects of one app, as plain JSON, in the order they are written. */
export function appObjects(app: AppDefinition, config: ClusterConfig): Record<string, unknown>[] {
  const chart = new Chart(new App(), app.id, { disableResourceNameHashes: true });
  app.build(chart, config);
  return chart.toJson();
}
