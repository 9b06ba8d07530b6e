/**
 * `WebApp`: one containerized web application as every app of `make deploy-apps` needs it — a Deployment
 * (pinned image, requests and limits, readiness and liveness probes, a restrictive security context) and a
 * Service in front of it (NodePort where a port has one, else ClusterIP), all labelled with the `app.kubernetes.io/*` recommended labels.
 */
import { Construct } from "constructs";
import { k8s } from "cdk8s-plus-34";

/** Who made the objects: the `app.kubernetes.io/managed-by` label of everything deployed. */
export const MANAGED_BY = "k3s-proxmox";

export interface AppIdentity {
  /** Object names and `app.kubernetes.io/name`/`instance`. */
  readonly name: string;
  readonly namespace: string;
  /** `app.kubernetes.io/component`, e.g. "ingress-controller". */
  readonly component: string;
  /** `app.kubernetes.io/part-of`: the cluster's name. */
  readonly partOf: string;
  readonly image: string;
}

/** The recommended labels; the selector uses only name and instance, which never change. */
export function appLabels(app: AppIdentity): Record<string, string> {
  return { ...selectorLabels(app), "app.kubernetes.io/version": imageTag(app.image), "app.kubernetes.io/component": app.component, "app.kubernetes.io/part-of": app.partOf, "app.kubernetes.io/managed-by": MANAGED_BY };
}

export function selectorLabels(app: AppIdentity): Record<string, string> {
  return { "app.kubernetes.io/name": app.name, "app.kubernetes.io/instance": app.name };
}

/** Metadata of one object of the app. */
export function appMetadata(app: AppIdentity, name = app.name, namespaced = true): k8s.ObjectMeta {
  return { name, ...(namespaced ? { namespace: app.namespace } : {}), labels: appLabels(app) };
}

/** The tag of an image reference (the digest when there is no tag), as a label value allows. */
export function imageTag(image: string): string {
  const lastPart = image.slice(image.lastIndexOf("/") + 1);
  const tag = lastPart.includes(":") ? lastPart.split("@")[0].split(":")[1] : image.split("@sha256:")[1]?.slice(0, 12);
  return (tag ?? "unknown").slice(0, 63);
}

export interface PortSpec {
  /** Port name (IANA_SVC_NAME: lower case, ≤ 15 characters). */
  readonly name: string;
  readonly containerPort: number;
  /** The Service's port; none: the pod's own (a probe's), not in the Service. */
  readonly servicePort?: number;
  /** None: reached inside the cluster only (the Service is then a ClusterIP one, unless another port has one). */
  readonly nodePort?: number;
}

/** A volume: scratch space (emptyDir), a PersistentVolumeClaim, a Secret or a ConfigMap, by name. */
export interface VolumeSpec {
  readonly name: string;
  readonly mountPath: string;
  readonly claim?: string;
  readonly secret?: string;
  readonly configMap?: string;
}

/**
 * The container's identity and restrictions. Every app gets no privilege escalation, all capabilities dropped,
 * the runtime's default seccomp profile and a non-root user; a read-only root file system where the image can
 * run with one (writable folders then come from `writable`).
 */
export interface Security {
  readonly user: number;
  readonly group: number;
  /** Group that owns mounted volumes (fsGroup). */
  readonly fsGroup?: number;
  readonly readOnlyRootFilesystem: boolean;
}

export interface WebAppProps extends AppIdentity {
  readonly replicas: number;
  readonly args?: readonly string[];
  readonly env?: Readonly<Record<string, string>>;
  readonly ports: readonly PortSpec[];
  /** HTTP GET probe: path and the name of one of `ports`. */
  readonly probe: { readonly path: string; readonly port: string; readonly startupSeconds?: number };
  readonly resources: { readonly cpu: readonly [request: string, limit: string]; readonly memory: readonly [request: string, limit: string] };
  readonly security: Security;
  readonly serviceAccountName?: string;
  /** Mount the ServiceAccount token (only for apps that talk to the Kubernetes API). */
  readonly apiAccess?: boolean;
  readonly volumes?: readonly VolumeSpec[];
  /** Recreate instead of RollingUpdate: for a single pod holding a ReadWriteOnce volume. */
  readonly recreate?: boolean;
}

/** A pod's pause before it stops, so that Services stop sending it requests first (only for apps with 2+ replicas). */
export const PRE_STOP_SECONDS = 5;

/**
 * A Deployment and its NodePort Service. An app with two or more replicas also gets a PodDisruptionBudget (drains,
 * as make upgrade and make remove-nodes do them, take one of its pods at a time) and a short preStop pause, so that
 * it keeps answering while its pods move.
 */
export class WebApp extends Construct {
  readonly deployment: k8s.KubeDeployment;
  readonly service: k8s.KubeService;
  readonly disruptionBudget?: k8s.KubePodDisruptionBudget;

  constructor(scope: Construct, id: string, readonly props: WebAppProps) {
    super(scope, id);
    const [cpuRequest, cpuLimit] = props.resources.cpu;
    const [memoryRequest, memoryLimit] = props.resources.memory;
    const probePort = k8s.IntOrString.fromString(props.probe.port);
    const httpGet = { path: props.probe.path, port: probePort };
    const volumes = props.volumes ?? [];

    this.deployment = new k8s.KubeDeployment(this, "deployment", {
      metadata: appMetadata(props),
      spec: {
        replicas: props.replicas,
        revisionHistoryLimit: 3,
        selector: { matchLabels: selectorLabels(props) },
        strategy: props.recreate ? { type: "Recreate" } : undefined,
        template: {
          metadata: { labels: appLabels(props) },
          spec: {
            serviceAccountName: props.serviceAccountName,
            automountServiceAccountToken: props.apiAccess ?? false,
            securityContext: {
              runAsNonRoot: true,
              runAsUser: props.security.user,
              runAsGroup: props.security.group,
              fsGroup: props.security.fsGroup,
              seccompProfile: { type: "RuntimeDefault" },
            },
            containers: [
              {
                name: props.name,
                image: props.image,
                imagePullPolicy: "IfNotPresent",
                args: props.args ? [...props.args] : undefined,
                env: props.env ? Object.entries(props.env).map(([name, value]) => ({ name, value })) : undefined,
                ports: props.ports.map((p) => ({ name: p.name, containerPort: p.containerPort, protocol: "TCP" })),
                resources: {
                  requests: { cpu: k8s.Quantity.fromString(cpuRequest), memory: k8s.Quantity.fromString(memoryRequest) },
                  limits: { cpu: k8s.Quantity.fromString(cpuLimit), memory: k8s.Quantity.fromString(memoryLimit) },
                },
                startupProbe: props.probe.startupSeconds
                  ? { httpGet, periodSeconds: 5, failureThreshold: Math.ceil(props.probe.startupSeconds / 5) }
                  : undefined,
                readinessProbe: { httpGet, periodSeconds: 10, timeoutSeconds: 3, failureThreshold: 3 },
                livenessProbe: { httpGet, periodSeconds: 20, timeoutSeconds: 3, failureThreshold: 3 },
                securityContext: {
                  allowPrivilegeEscalation: false,
                  privileged: false,
                  readOnlyRootFilesystem: props.security.readOnlyRootFilesystem,
                  capabilities: { drop: ["ALL"] },
                },
                volumeMounts: volumes.length > 0 ? volumes.map((v) => ({ name: v.name, mountPath: v.mountPath, readOnly: v.secret || v.configMap ? true : undefined })) : undefined,
                lifecycle: props.replicas > 1 ? { preStop: { sleep: { seconds: PRE_STOP_SECONDS } } } : undefined,
              },
            ],
            volumes: volumes.length > 0 ? volumes.map(volume) : undefined,
          },
        },
      },
    });

    if (props.replicas > 1) {
      this.disruptionBudget = new k8s.KubePodDisruptionBudget(this, "disruption-budget", {
        metadata: appMetadata(props),
        spec: { maxUnavailable: k8s.IntOrString.fromNumber(1), selector: { matchLabels: selectorLabels(props) } },
      });
    }

    const servicePorts = props.ports.flatMap((p) => (p.servicePort === undefined ? [] : [{ ...p, servicePort: p.servicePort }]));
    this.service = new k8s.KubeService(this, "service", {
      metadata: appMetadata(props),
      spec: {
        type: servicePorts.some((p) => p.nodePort !== undefined) ? "NodePort" : "ClusterIP",
        selector: selectorLabels(props),
        ports: servicePorts.map((p) => ({
          name: p.name,
          port: p.servicePort,
          targetPort: k8s.IntOrString.fromString(p.name),
          nodePort: p.nodePort,
          protocol: "TCP",
        })),
      },
    });
  }
}

function volume(v: VolumeSpec): k8s.Volume {
  if (v.claim) return { name: v.name, persistentVolumeClaim: { claimName: v.claim } };
  // Optional: a pod whose Secret is not there yet starts anyway (Traefik then presents its own default certificate).
  if (v.secret) return { name: v.name, secret: { secretName: v.secret, optional: true } };
  if (v.configMap) return { name: v.name, configMap: { name: v.configMap } };
  return { name: v.name, emptyDir: {} };
}
