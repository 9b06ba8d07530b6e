/**
 * The HTTPS front of the simulator: `/api2/json/...` routed to the Simulator's methods the way pve-proxy and
 * pve-manager's PVE/HTTPServer.pm handle a request — authenticate (API token or ticket; 401s after 3 s), check
 * the endpoint's permissions (403), verify every parameter against the PVE schema (400), then run the method and
 * answer in PVE's JSON shape with the error text as the HTTP reason phrase.
 */
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as https from "node:https";
import type { IncomingMessage, ServerResponse } from "node:http";
import * as path from "node:path";
import { ApiError, paramError } from "./api/errors";
import { evaluate, PermissionError, Principal } from "./api/permissions";
import { Call, Simulator } from "./api/simulator";
import type { EndpointSchema } from "./schema";
import { validateParameters } from "./schema/validate";

export interface TokenSpec {
  /** The token's name after `!`, e.g. `k3s` in `terraform@pve!k3s`. */
  readonly id: string;
  readonly secret: string;
  /** Privilege separation: the token holds only `privileges` (within the user's); off: the user's privileges. */
  readonly privsep: boolean;
  readonly privileges?: readonly string[];
}

export interface UserSpec {
  /** `terraform@pve`. */
  readonly userid: string;
  /** For ticket logins (POST /access/ticket). */
  readonly password?: string;
  /** The user's role on `/` (propagated): its privilege names. */
  readonly privileges: readonly string[];
  readonly tokens: readonly TokenSpec[];
}

export interface ServerOptions {
  readonly users: readonly UserSpec[];
  /** PVE delays every 401 by 3 s (pve-http-server AnyEvent.pm); tests may shorten it. */
  readonly authFailureDelayMs?: number;
  /** Where the per-endpoint call counts are kept (stats.json). */
  readonly statsFile?: string;
}

type Handler = (sim: Simulator, call: Call) => unknown;

/** The endpoints served: "<METHOD> <path template>" (the schema's keys) -> the method. */
export const ROUTES: Readonly<Record<string, Handler>> = {
  "GET /version": (s) => s.version(),
  "GET /nodes": (s) => s.nodes(),
  "GET /nodes/{node}/status": (s, c) => s.nodeStatus(c),
  "GET /cluster/nextid": (s, c) => s.nextid(c),
  "GET /cluster/resources": (s, c) => s.resources(c),
  "GET /access/permissions": (s, c) => s.permissions(c),
  "GET /nodes/{node}/qemu": (s, c) => s.qemuList(c),
  "GET /nodes/{node}/qemu/{vmid}/config": (s, c) => s.getConfig(c),
  "PUT /nodes/{node}/qemu/{vmid}/config": (s, c) => s.updateConfig(c, false),
  "POST /nodes/{node}/qemu/{vmid}/config": (s, c) => s.updateConfig(c, true),
  "DELETE /nodes/{node}/qemu/{vmid}": (s, c) => s.destroy(c),
  "POST /nodes/{node}/qemu/{vmid}/clone": (s, c) => s.clone(c),
  "PUT /nodes/{node}/qemu/{vmid}/resize": (s, c) => s.resize(c),
  "POST /nodes/{node}/qemu/{vmid}/template": (s, c) => s.template(c),
  "GET /nodes/{node}/qemu/{vmid}/status/current": (s, c) => s.status(c),
  "POST /nodes/{node}/qemu/{vmid}/status/start": (s, c) => s.start(c),
  "POST /nodes/{node}/qemu/{vmid}/status/stop": (s, c) => s.stop(c),
  "POST /nodes/{node}/qemu/{vmid}/status/shutdown": (s, c) => s.shutdown(c),
  "POST /nodes/{node}/qemu/{vmid}/status/reboot": (s, c) => s.reboot(c),
  "GET /nodes/{node}/qemu/{vmid}/agent/network-get-interfaces": (s, c) => s.agentNetwork(c),
  "GET /nodes/{node}/tasks/{upid}/status": (s, c) => s.taskStatus(c),
  "GET /nodes/{node}/tasks/{upid}/log": (s, c) => s.taskLog(c),
  "DELETE /nodes/{node}/tasks/{upid}": (s, c) => s.taskStop(c),
  "GET /nodes/{node}/storage": (s, c) => s.storages(c),
  "GET /nodes/{node}/storage/{storage}/content": (s, c) => s.storageContent(c),
  "GET /nodes/{node}/storage/{storage}/content/{volume}": (s, c) => s.volumeInfo(c),
  "DELETE /nodes/{node}/storage/{storage}/content/{volume}": (s, c) => s.deleteVolume(c),
  "POST /nodes/{node}/storage/{storage}/download-url": (s, c) => s.downloadUrl(c),
  "GET /nodes/{node}/query-url-metadata": (s, c) => s.queryUrlMetadata(c),
  "POST /nodes/{node}/qemu": (s, c) => s.createVm(c),
};

/** Per endpoint: calls, parameters checked against the schema, property-string keys checked, 400s. */
export interface EndpointStats {
  calls: number;
  parameters: number;
  keys: number;
  rejected: number;
}

interface Match {
  readonly key: string;
  readonly endpoint: EndpointSchema;
  readonly pathParams: Record<string, string>;
}

export class PveApiServer {
  readonly stats: Record<string, EndpointStats> = {};
  private readonly ticketKey = crypto.randomBytes(32);
  private readonly templates: { key: string; method: string; segments: string[] }[];

  constructor(
    readonly sim: Simulator,
    private readonly options: ServerOptions,
  ) {
    this.templates = Object.keys(ROUTES).map((key) => {
      const [method, template] = key.split(" ");
      return { key, method, segments: template.split("/").slice(1) };
    });
    for (const key of Object.keys(ROUTES)) if (!sim.schema.endpoints[key]) throw new Error(`route ${key} has no schema in PVE ${sim.schema.pve}`);
    for (const user of options.users) {
      const unknown = [...user.privileges, ...user.tokens.flatMap((t) => t.privileges ?? [])].filter((p) => !sim.schema.privileges.includes(p));
      if (unknown.length > 0)
        throw new Error(
          `${user.userid}: privs: invalid privilege '${unknown[0]}' — PVE ${sim.schema.pve} has no such privilege, and \`pveum role add\` refuses it the same way (README.md lists the privileges per PVE version)`,
        );
    }
  }

  /** Routes `METHOD /a/b/c` to an endpoint (a trailing slash is ignored, as PVE's router does). */
  match(method: string, rawPath: string): Match | undefined {
    const segments = rawPath.replace(/\/+$/, "").split("/").slice(1).map((s) => decodeURIComponent(s));
    for (const t of this.templates) {
      if (t.method !== method || t.segments.length !== segments.length) continue;
      const pathParams: Record<string, string> = {};
      if (t.segments.every((seg, i) => (seg.startsWith("{") ? ((pathParams[seg.slice(1, -1)] = segments[i]), true) : seg === segments[i]))) {
        return { key: t.key, endpoint: this.sim.schema.endpoints[t.key], pathParams };
      }
    }
    return undefined;
  }

  // --- authentication -----------------------------------------------------------------------------------------
  private principalOf(user: UserSpec, token?: TokenSpec): Principal {
    const privileges = new Set(user.privileges);
    if (token?.privsep) for (const p of [...privileges]) if (!(token.privileges ?? []).includes(p)) privileges.delete(p);
    return { id: token ? `${user.userid}!${token.id}` : user.userid, userid: user.userid, isToken: Boolean(token), privileges };
  }

  /** The request's principal; ApiError 401 as PVE answers (`No ticket`, `Authentication failed!`). */
  authenticate(req: IncomingMessage, needsCsrf: boolean): Principal {
    const auth = req.headers.authorization ?? "";
    const tokenMatch = /^PVEAPIToken=(\S+?)@(\S+?)!(\S+?)[=:](\S+)$/.exec(auth);
    if (tokenMatch) {
      const [, name, realm, tokenId, secret] = tokenMatch;
      const user = this.options.users.find((u) => u.userid === `${name}@${realm}`);
      const token = user?.tokens.find((t) => t.id === tokenId);
      if (!user || !token || !safeEqual(token.secret, secret)) throw new ApiError(401, "Authentication failed!");
      return this.principalOf(user, token);
    }
    const cookie = /(?:^|;\s*)PVEAuthCookie=([^;]+)/.exec(req.headers.cookie ?? "")?.[1] ?? /^PVEAuthCookie=(\S+)$/.exec(auth)?.[1];
    if (!cookie) throw new ApiError(401, "No ticket");
    const userid = this.verifyTicket(decodeURIComponent(cookie));
    const user = this.options.users.find((u) => u.userid === userid);
    if (!user) throw new ApiError(401, "Authentication failed!");
    if (needsCsrf) {
      const csrf = req.headers.csrfpreventiontoken;
      if (typeof csrf !== "string" || csrf !== this.csrfToken(userid, csrf.split(":")[0])) throw new ApiError(401, "Permission denied - invalid csrf token");
    }
    return this.principalOf(user);
  }

  private sign(text: string): string {
    return crypto.createHmac("sha256", this.ticketKey).update(text).digest("base64url");
  }

  /** `PVE:<user>:<HEX time>::<signature>`, valid 2 hours (pve-common PVE/Ticket.pm). */
  private ticket(userid: string): string {
    const data = `PVE:${userid}:${Math.floor(Date.now() / 1000).toString(16).toUpperCase()}`;
    return `${data}::${this.sign(data)}`;
  }

  private verifyTicket(ticket: string): string {
    const match = /^(PVE:([^:]+):([0-9A-F]{8}))::(.+)$/.exec(ticket);
    if (!match || !safeEqual(this.sign(match[1]), match[4])) throw new ApiError(401, "Authentication failed!");
    if (Date.now() / 1000 - parseInt(match[3], 16) > 7200) throw new ApiError(401, "Authentication failed!");
    return match[2];
  }

  private csrfToken(userid: string, time = Math.floor(Date.now() / 1000).toString(16).toUpperCase()): string {
    return `${time}:${this.sign(`${time}${userid}`)}`;
  }

  /** POST /access/ticket (pve-access-control API2/AccessControl.pm create_ticket). */
  private login(params: Record<string, string>): unknown {
    const userid = params.realm && !params.username.includes("@") ? `${params.username}@${params.realm}` : params.username;
    const user = this.options.users.find((u) => u.userid === userid);
    if (!user || user.password === undefined || !safeEqual(user.password, params.password)) throw new ApiError(401, "authentication failure");
    return { username: userid, ticket: this.ticket(userid), CSRFPreventionToken: this.csrfToken(userid), cap: { vms: Object.fromEntries(user.privileges.filter((p) => p.startsWith("VM.")).map((p) => [p, 1])) } };
  }

  // --- one request --------------------------------------------------------------------------------------------
  async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const started = Date.now();
    const url = new URL(req.url ?? "/", "https://pve");
    const method = req.method ?? "GET";
    const apiPath = url.pathname.startsWith("/api2/json/") ? url.pathname.slice("/api2/json".length) : undefined;
    let who = "-";
    let counted: EndpointStats | undefined;
    let status = 200;
    try {
      if (!apiPath) throw new ApiError(501, `Method '${method} ${url.pathname}' not implemented`);
      const body = await readBody(req);
      const params: Record<string, string> = {};
      for (const [k, v] of url.searchParams) params[k] = v;
      Object.assign(params, parseBody(req.headers["content-type"], body));
      const match = apiPath === "/access/ticket" && method === "POST" ? undefined : this.match(method, apiPath);
      if (apiPath === "/access/ticket" && method === "POST") {
        const endpoint = this.sim.schema.endpoints["POST /access/ticket"];
        counted = this.count("POST /access/ticket");
        this.validate(endpoint, params, counted);
        who = params.username ?? "-";
        return send(res, 200, this.login(params));
      }
      if (!match) throw new ApiError(501, `Method '${method} /api2/json${apiPath}' not implemented`);
      counted = this.count(match.key);
      for (const [k, v] of Object.entries(match.pathParams)) {
        if (params[k] !== undefined && params[k] !== v) throw paramError({ [k]: "duplicate parameter (already defined in URI) with conflicting values!" });
        params[k] = v;
      }
      const { endpoint } = match;
      let principal: Principal | undefined;
      if (endpoint.permissions.user !== "world") {
        principal = this.authenticate(req, method !== "GET");
        who = principal.id;
        if (principal.isToken && !endpoint.allowtoken) throw new ApiError(403, `Permission check failed (URI '${apiPath}' not available with API token, need proper ticket.\n)`);
        if (endpoint.permissions.check) evaluate(endpoint.permissions.check, principal, params);
        else if (endpoint.permissions.user !== "all") throw new ApiError(403, "Permission check failed (user != root@pam)");
      }
      this.validate(endpoint, params, counted);
      const result = await ROUTES[match.key](this.sim, { principal: principal!, params });
      send(res, 200, result);
    } catch (error) {
      const e = error instanceof ApiError ? error : error instanceof PermissionError ? new ApiError(403, error.message) : new ApiError(500, (error as Error).message);
      status = e.status;
      if (e.status === 400 && counted) counted.rejected++;
      if (e.status === 401 && !e.message.startsWith("authentication failure")) await sleep(this.options.authFailureDelayMs ?? 3000);
      sendError(res, e);
    } finally {
      if (this.options.statsFile) fs.writeFileSync(this.options.statsFile, JSON.stringify(this.stats, null, 1));
      this.sim.options.log(`${method} ${url.pathname} ${status} ${Date.now() - started}ms ${who}`);
    }
  }

  private count(key: string): EndpointStats {
    const stats = (this.stats[key] ??= { calls: 0, parameters: 0, keys: 0, rejected: 0 });
    stats.calls++;
    return stats;
  }

  private validate(endpoint: EndpointSchema, params: Record<string, string>, stats: EndpointStats): void {
    const result = validateParameters(endpoint, params, { version: this.sim.options.pveVersion, privileges: this.sim.schema.privileges });
    stats.parameters += result.checked;
    stats.keys += result.keysChecked;
    if (Object.keys(result.errors).length > 0) throw paramError(result.errors);
  }

  listen(host: string, port: number, cert: { key: string; cert: string }): Promise<https.Server> {
    const server = https.createServer({ key: cert.key, cert: cert.cert, minVersion: "TLSv1.2" }, (req, res) => void this.handle(req, res));
    return new Promise((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, host, () => resolve(server));
    });
  }
}

function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && crypto.timingSafeEqual(x, y);
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    req.on("error", reject);
  });
}

/** Form-urlencoded (what the provider sends) or JSON bodies, both of which PVE reads. */
function parseBody(contentType: string | undefined, body: string): Record<string, string> {
  if (body === "") return {};
  if ((contentType ?? "").startsWith("application/json")) {
    const data = JSON.parse(body) as Record<string, unknown>;
    return Object.fromEntries(Object.entries(data).map(([k, v]) => [k, typeof v === "string" ? v : typeof v === "boolean" ? (v ? "1" : "0") : String(v)]));
  }
  return Object.fromEntries(new URLSearchParams(body));
}

function send(res: ServerResponse, status: number, data: unknown): void {
  const body = JSON.stringify({ data: data === undefined ? null : data });
  res.writeHead(status, { "Content-Type": "application/json;charset=UTF-8", "Content-Length": Buffer.byteLength(body), Server: "pve-api-daemon/3.0 (simulator)" });
  res.end(body);
}

/** The reason phrase is the message's first line; 401s from authentication carry no body (pve-http-server). */
function sendError(res: ServerResponse, error: ApiError): void {
  const reason = error.message.split("\n")[0].replace(/[^\x20-\x7e]/g, "?");
  const authOnly = error.status === 401 && !error.message.startsWith("authentication failure");
  const body = authOnly ? "" : JSON.stringify({ data: null, message: error.message, ...(error.errors ? { errors: error.errors } : {}) });
  res.writeHead(error.status, reason, { "Content-Type": "application/json;charset=UTF-8", "Content-Length": Buffer.byteLength(body), Server: "pve-api-daemon/3.0 (simulator)", Connection: "close" });
  res.end(body);
}

/** A self-signed certificate for the listen address, made at start with openssl (the key stays in the state folder, 0600). */
export function makeCertificate(dir: string, host: string, node: string, run: (cmd: string, args: string[]) => void): { key: string; cert: string } {
  const key = path.join(dir, "pve-ssl.key");
  const cert = path.join(dir, "pve-ssl.pem");
  const san = /^[\d.]+$/.test(host) ? `IP:${host},DNS:${node}` : `DNS:${host},DNS:${node}`;
  run("openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "30", "-subj", `/CN=${node}/O=pve-sim`, "-addext", `subjectAltName=${san}`, "-keyout", key, "-out", cert]);
  fs.chmodSync(key, 0o600);
  return { key: fs.readFileSync(key, "utf8"), cert: fs.readFileSync(cert, "utf8") };
}
