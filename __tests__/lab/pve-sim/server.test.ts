/**
 * The simulator's API over real HTTPS, with no hosts behind it (NoHostBackend): what PVE answers, in PVE's shapes
 * and JSON types, to the calls the bpg provider makes — and to the ones PVE refuses.
 */
import { execFileSync } from "node:child_process";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as http from "node:http";
import * as https from "node:https";
import type { AddressInfo } from "node:net";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { NoHostBackend } from "../../../lab/pve-sim/backend";
import { Simulator } from "../../../lab/pve-sim/api/simulator";
import { writeEmptyQcow2 } from "../../../lab/pve-sim/model/image";
import { loadSchema, ParamSchema, PveVersion } from "../../../lab/pve-sim/schema";
import { makeCertificate, PveApiServer, UserSpec } from "../../../lab/pve-sim/server";
import { TERRAFORM_ROLE_PRIVILEGES } from "../../../constructs/proxmox-role";
import { tempDir } from "../../helpers";

const SECRET = "11111111-2222-3333-4444-555555555555";
const TOKEN = `terraform@pve!k3s=${SECRET}`;
const scratch = tempDir("pve-sim-test-");

/** The README's role, per version (a test keeps the README's lines equal to it). */
const ROLE = (version: PveVersion) => [...TERRAFORM_ROLE_PRIVILEGES[version === "8.4" ? "8" : "9"]];

interface Answer {
  status: number;
  reason: string;
  body: { data: unknown; message?: string; errors?: Record<string, string> } | undefined;
}

async function start(version: PveVersion, users: UserSpec[], backend = new NoHostBackend()) {
  const stateDir = fs.mkdtempSync(path.join(scratch(), "state-"));
  const sim = new Simulator({
    pveVersion: version,
    node: "pve",
    stateDir,
    nodeMemoryMiB: 8192,
    nodeCpus: 2,
    storages: [
      { id: "local-lvm", type: "lvmthin", content: ["images", "rootdir"], totalGiB: 100 },
      { id: "local", type: "dir", content: ["iso", "vztmpl", "import"], totalGiB: 100 },
    ],
    bridges: ["vmbr0"],
    dns: { nameservers: ["10.0.0.53"], searchdomains: [] },
    templates: [{ vmid: 9000, name: "debian12-cloud", storage: "local-lvm", bridge: "vmbr0", diskGiB: 2 }],
    backend,
    cloneMs: 600,
    log: () => undefined,
  });
  const api = new PveApiServer(sim, { users, authFailureDelayMs: 0 });
  const cert = makeCertificate(stateDir, "127.0.0.1", "pve", (cmd, args) => execFileSync(cmd, args, { stdio: "ignore" }));
  const server = await api.listen("127.0.0.1", 0, cert);
  const port = (server.address() as AddressInfo).port;
  const call = (method: string, apiPath: string, params: Record<string, string> = {}, headers: Record<string, string> = { Authorization: `PVEAPIToken=${TOKEN}` }) =>
    new Promise<Answer>((resolve, reject) => {
      const form = new URLSearchParams(params).toString();
      const query = method === "GET" || method === "DELETE" ? (form ? `?${form}` : "") : "";
      const req = https.request(
        { host: "127.0.0.1", port, method, path: `/api2/json${apiPath}${query}`, rejectUnauthorized: false, headers: { ...headers, ...(query || !form ? {} : { "Content-Type": "application/x-www-form-urlencoded" }) } },
        (res) => {
          let text = "";
          res.on("data", (c) => (text += c));
          res.on("end", () => resolve({ status: res.statusCode ?? 0, reason: res.statusMessage ?? "", body: text ? JSON.parse(text) : undefined }));
        },
      );
      req.on("error", reject);
      if (!query && form) req.write(form);
      req.end();
    });
  /** Polls a task until it stops; its status. */
  const wait = async (upid: unknown) => {
    for (let i = 0; i < 100; i++) {
      const answer = await call("GET", `/nodes/pve/tasks/${encodeURIComponent(String(upid))}/status`);
      const data = answer.body?.data as { status: string; exitstatus?: string };
      if (data.status !== "running") return data;
      await new Promise((r) => setTimeout(r, 20));
    }
    throw new Error("task did not finish");
  };
  return { sim, server, call, wait };
}

/** Checks a value against a PVE `returns` schema: integers are integers, strings strings, booleans 0/1. */
function conforms(value: unknown, schema: ParamSchema, where = "data"): string[] {
  if (value === null || value === undefined) return schema.optional ? [] : [`${where}: missing`];
  switch (schema.type) {
    case "integer":
      return Number.isInteger(value) ? [] : [`${where}: ${JSON.stringify(value)} is not an integer`];
    case "number":
      return typeof value === "number" ? [] : [`${where}: ${JSON.stringify(value)} is not a number`];
    case "boolean":
      return value === 0 || value === 1 ? [] : [`${where}: ${JSON.stringify(value)} is not 0/1`];
    case "string":
      return typeof value === "string" ? [] : [`${where}: ${JSON.stringify(value)} is not a string`];
    case "array":
      return Array.isArray(value) ? value.flatMap((item, i) => (schema.items ? conforms(item, schema.items, `${where}[${i}]`) : [])) : [`${where}: not an array`];
    case "object":
      if (typeof value !== "object") return [`${where}: not an object`];
      return Object.entries(schema.properties ?? {}).flatMap(([k, s]) => conforms((value as Record<string, unknown>)[k], s, `${where}.${k}`));
    default:
      return [];
  }
}

const user = (version: PveVersion, extra: Partial<UserSpec> = {}): UserSpec => ({ userid: "terraform@pve", password: "lab-password", privileges: ROLE(version), tokens: [{ id: "k3s", secret: SECRET, privsep: false }], ...extra });

describe.each(["8.4", "9.1"] as const)("the PVE %s API simulator", (version) => {
  let sim: Awaited<ReturnType<typeof start>>;
  const schema = loadSchema(version);
  beforeAll(async () => {
    sim = await start(version, [user(version)]);
  });
  afterAll(() => sim.server.close());

  it("answers a clone the provider's way: nextid, clone task, lock while copying, config readback as PVE prints it", async () => {
    const next = await sim.call("GET", "/cluster/nextid");
    expect(next.body?.data).toBe("100");
    const clone = await sim.call("POST", "/nodes/pve/qemu/9000/clone", { full: "1", name: "k3s-worker-1", newid: "100", storage: "local-lvm", description: "a node" });
    expect(clone.status).toBe(200);
    expect(String(clone.body?.data)).toMatch(/^UPID:pve:[0-9A-F]{8}:[0-9A-F]{8}:[0-9A-F]{8}:qmclone:9000:terraform@pve!k3s:$/);
    const locked = await sim.call("GET", "/nodes/pve/qemu/100/status/current");
    expect((locked.body?.data as Record<string, unknown>).lock).toBe("clone");
    expect(await sim.wait(clone.body?.data)).toMatchObject({ status: "stopped", exitstatus: "OK" });
    const unlocked = await sim.call("GET", "/nodes/pve/qemu/100/status/current");
    expect(unlocked.body?.data).not.toHaveProperty("lock");

    await sim.call("PUT", "/nodes/pve/qemu/100/config", { delete: "ide2" });
    const put = await sim.call("PUT", "/nodes/pve/qemu/100/config", {
      cores: "2",
      ide2: "file=local-lvm:cloudinit,media=cdrom,",
      net0: "model=virtio,bridge=vmbr0,firewall=0",
      ipconfig0: "gw=10.0.0.1,ip=10.0.0.20/24",
      sshkeys: encodeURIComponent(fs.readFileSync(path.join(__dirname, "../../terraform/fixtures/id_ed25519.pub"), "utf8").trim()),
      scsi0: "file=local-lvm:vm-100-disk-0,size=2147483648,aio=io_uring,backup=1,iothread=1,ssd=0,discard=on,cache=none,replicate=1",
    });
    expect(put).toMatchObject({ status: 200, body: { data: null } });
    const resize = await sim.call("PUT", "/nodes/pve/qemu/100/resize", { disk: "scsi0", size: "34359738368" });
    expect(await sim.wait(resize.body?.data)).toMatchObject({ exitstatus: "OK" });

    const config = (await sim.call("GET", "/nodes/pve/qemu/100/config")).body?.data as Record<string, unknown>;
    expect(config.ide2).toBe("local-lvm:vm-100-cloudinit,media=cdrom");
    expect(config.net0).toMatch(/^virtio=BC:24:11:[0-9A-F]{2}:[0-9A-F]{2}:[0-9A-F]{2},bridge=vmbr0,firewall=0$/);
    expect(config.scsi0).toBe("local-lvm:vm-100-disk-0,aio=io_uring,backup=1,cache=none,discard=on,iothread=1,replicate=1,size=32G,ssd=0");
    expect(config.cores).toBe(2);
    expect(config.memory).toBe("2048");
    expect(config.name).toBe("k3s-worker-1");
    expect(config.sshkeys).toMatch(/^ssh-ed25519%20/);
    expect(config.digest).toMatch(/^[0-9a-f]{40}$/);
    expect(config).not.toHaveProperty("template");
  });

  it("answers in the JSON types of the PVE schema's `returns`", async () => {
    const start = await sim.call("POST", "/nodes/pve/qemu/100/status/start", { timeout: "1800" });
    await sim.wait(start.body?.data);
    const checks: [string, string][] = [
      ["GET /nodes/{node}/qemu/{vmid}/status/current", "/nodes/pve/qemu/100/status/current"],
      ["GET /cluster/resources", "/cluster/resources"],
      ["GET /nodes/{node}/qemu", "/nodes/pve/qemu"],
      ["GET /version", "/version"],
      ["GET /nodes", "/nodes"],
      ["GET /nodes/{node}/storage/{storage}/content/{volume}", "/nodes/pve/storage/local-lvm/content/local-lvm:vm-100-disk-0"],
      ["GET /nodes/{node}/tasks/{upid}/status", `/nodes/pve/tasks/${encodeURIComponent(String(start.body?.data))}/status`],
    ];
    for (const [key, apiPath] of checks) {
      const answer = await sim.call("GET", apiPath);
      expect(answer.status, apiPath).toBe(200);
      expect(conforms(answer.body?.data, schema.endpoints[key].returns), key).toEqual([]);
    }
  });

  it("refuses what PVE refuses", async () => {
    const noTemplate = await sim.call("POST", "/nodes/pve/qemu/9001/clone", { newid: "200", full: "1" });
    expect(noTemplate).toMatchObject({ status: 500, reason: "unable to find configuration file for VM 9001 on node 'pve'" });
    const taken = await sim.call("POST", "/nodes/pve/qemu/9000/clone", { newid: "100", full: "1" });
    expect(taken).toMatchObject({ status: 500, reason: "unable to create VM 100: config file already exists" });
    expect((await sim.call("GET", "/cluster/nextid", { vmid: "100" })).body).toEqual({ data: null, message: "Parameter verification failed.\n", errors: { vmid: "VM 100 already exists" } });
    const again = await sim.call("POST", "/nodes/pve/qemu/100/status/start");
    expect(await sim.wait(again.body?.data)).toMatchObject({ status: "stopped", exitstatus: "VM 100 already running" });
    expect(await sim.call("DELETE", "/nodes/pve/qemu/100", { purge: "1" })).toMatchObject({ status: 500, reason: "VM 100 is running - destroy failed" });
    const template = await sim.call("POST", "/nodes/pve/qemu/9000/status/start");
    expect(await sim.wait(template.body?.data)).toMatchObject({ exitstatus: "you can't start a vm if it's a template" });
    const bad = await sim.call("PUT", "/nodes/pve/qemu/100/config", { cores: "many", nonsense: "1" });
    expect(bad).toMatchObject({
      status: 400,
      reason: "Parameter verification failed.",
      body: { data: null, errors: { cores: "type check ('integer') failed - got 'many'", nonsense: "property is not defined in schema and the schema does not allow additional properties" } },
    });
    expect(await sim.call("GET", "/nodes/pve/qemu/100/agent/network-get-interfaces")).toMatchObject({ status: 500, reason: "QEMU guest agent is not running" });
    expect(await sim.call("GET", "/nodes/pve/qemu/100/frobnicate")).toMatchObject({ status: 501, reason: "Method 'GET /api2/json/nodes/pve/qemu/100/frobnicate' not implemented" });
    expect(await sim.call("GET", "/nodes/elsewhere/qemu/100/config")).toMatchObject({ status: 500, reason: expect.stringMatching(/^hostname lookup 'elsewhere' failed/) });
  });

  it("refuses to start VMs beyond the node's memory, as QEMU's allocation fails", async () => {
    await sim.wait((await sim.call("POST", "/nodes/pve/qemu/9000/clone", { newid: "101", full: "1", name: "big" })).body?.data);
    await sim.call("PUT", "/nodes/pve/qemu/101/config", { memory: "8192" });
    const started = await sim.call("POST", "/nodes/pve/qemu/101/status/start");
    expect(await sim.wait(started.body?.data)).toMatchObject({ exitstatus: "start failed: QEMU exited with code 1" });
    const log = await sim.call("GET", `/nodes/pve/tasks/${encodeURIComponent(String(started.body?.data))}/log`);
    expect(JSON.stringify(log.body?.data)).toContain("Cannot allocate memory");
  });

  it("keeps a running VM's memory change pending until the reboot, and shows it in GET config", async () => {
    await sim.call("PUT", "/nodes/pve/qemu/100/config", { memory: "3072", balloon: "0" });
    expect(sim.sim.state.vms.get(100)?.config.memory).toBe("2048");
    expect(((await sim.call("GET", "/nodes/pve/qemu/100/config")).body?.data as Record<string, unknown>).memory).toBe("3072");
    await sim.wait((await sim.call("POST", "/nodes/pve/qemu/100/status/reboot", { timeout: "1800" })).body?.data);
    expect(sim.sim.state.vms.get(100)?.config.memory).toBe("3072");
  });

  it("deletes the way the provider expects: stop, DELETE with a trailing slash, then status fails with 'does not exist'", async () => {
    await sim.wait((await sim.call("POST", "/nodes/pve/qemu/100/status/stop")).body?.data);
    const del = await sim.call("DELETE", "/nodes/pve/qemu/100/", { "destroy-unreferenced-disks": "1", purge: "1" });
    expect(await sim.wait(del.body?.data)).toMatchObject({ exitstatus: "OK" });
    expect(await sim.call("GET", "/nodes/pve/qemu/100/status/current")).toMatchObject({ status: 500, reason: "Configuration file 'nodes/pve/qemu-server/100.conf' does not exist" });
    expect([...sim.sim.state.volumes.keys()].filter((v) => v.includes("-100-"))).toEqual([]);
  });

  it("authenticates like PVE: no ticket, a wrong token, and ticket logins with a CSRF token", async () => {
    expect(await sim.call("GET", "/version", {}, {})).toMatchObject({ status: 401, reason: "No ticket", body: undefined });
    expect(await sim.call("GET", "/version", {}, { Authorization: "PVEAPIToken=terraform@pve!k3s=00000000-0000-0000-0000-000000000000" })).toMatchObject({ status: 401, reason: "Authentication failed!" });
    expect(await sim.call("POST", "/access/ticket", { username: "terraform@pve", password: "wrong" }, {})).toMatchObject({ status: 401, reason: "authentication failure" });
    const login = await sim.call("POST", "/access/ticket", { username: "terraform@pve", password: "lab-password" }, {});
    const { ticket, CSRFPreventionToken } = login.body?.data as { ticket: string; CSRFPreventionToken: string };
    const cookie = { Cookie: `PVEAuthCookie=${encodeURIComponent(ticket)}` };
    expect((await sim.call("GET", "/nodes/pve/qemu/9000/config", {}, cookie)).status).toBe(200);
    expect(await sim.call("PUT", "/nodes/pve/qemu/101/config", { cores: "1" }, cookie)).toMatchObject({ status: 401, reason: "Permission denied - invalid csrf token" });
    expect((await sim.call("PUT", "/nodes/pve/qemu/101/config", { cores: "1" }, { ...cookie, CSRFPreventionToken })).status).toBe(200);
  });
});

describe("privileges", () => {
  it("refuses to start with a privilege the simulated version does not have, as pveum does", async () => {
    await expect(start("8.4", [{ ...user("8.4"), privileges: ["VM.Audit", "VM.GuestAgent.Audit"] }])).rejects.toThrow("invalid privilege 'VM.GuestAgent.Audit'");
    await expect(start("9.1", [{ ...user("9.1"), privileges: ["VM.Audit", "VM.Monitor"] }])).rejects.toThrow("invalid privilege 'VM.Monitor'");
  });

  it("checks them per endpoint and per configuration key, with PVE's messages", async () => {
    const limited = await start("9.1", [user("9.1"), { userid: "auditor@pve", privileges: ["VM.Audit", "VM.Config.Memory"], tokens: [{ id: "ro", secret: SECRET, privsep: false }] }]);
    const as = { Authorization: `PVEAPIToken=auditor@pve!ro=${SECRET}` };
    try {
      expect(await limited.call("POST", "/nodes/pve/qemu/9000/clone", { newid: "300" }, as)).toMatchObject({ status: 403, reason: "Permission check failed (/vms/9000, VM.Clone)" });
      expect(await limited.call("PUT", "/nodes/pve/qemu/9000/config", { cores: "4" }, as)).toMatchObject({ status: 403, reason: "Permission check failed (/vms/9000, VM.Config.CPU)" });
      expect(await limited.call("GET", "/nodes/pve/qemu/9000/agent/network-get-interfaces", {}, as)).toMatchObject({
        status: 403,
        reason: "Permission check failed (/vms/9000, VM.GuestAgent.Audit|VM.GuestAgent.Unrestricted)",
      });
      expect((await limited.call("GET", "/nodes/pve/qemu/9000/config", {}, as)).status).toBe(200);
    } finally {
      limited.server.close();
    }
  });
});

/** An HTTP server with the files of `dir` (GET and HEAD), as the e2e's mirror serves the stand-in cloud image. */
async function fileServer(dir: string) {
  const server = http.createServer((req, res) => {
    const file = path.join(dir, path.basename(decodeURIComponent(req.url ?? "/")));
    if (!fs.existsSync(file) || !fs.statSync(file).isFile()) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { "Content-Type": "application/octet-stream", "Content-Length": fs.statSync(file).size });
    if (req.method === "HEAD") res.end();
    else fs.createReadStream(file).pipe(res);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { server, url: (name: string) => `http://127.0.0.1:${(server.address() as AddressInfo).port}/${name}` };
}

const sha256 = (file: string) => crypto.createHash("sha256").update(fs.readFileSync(file)).digest("hex");

describe.each(["8.4", "9.1"] as const)("PVE %s: a template from a downloaded cloud image, as the provider builds it", (version) => {
  let sim: Awaited<ReturnType<typeof start>>;
  let files: Awaited<ReturnType<typeof fileServer>>;
  const dir = fs.mkdtempSync(path.join(scratch(), "images-"));
  const image = path.join(dir, "cloud.qcow2");
  beforeAll(async () => {
    writeEmptyQcow2(image, 3 * 1024 ** 3);
    fs.writeFileSync(path.join(dir, "not-an-image.qcow2"), "hello\n");
    fs.writeFileSync(path.join(dir, "tampered.qcow2"), Buffer.concat([fs.readFileSync(image), Buffer.from("x")]));
    files = await fileServer(dir);
    sim = await start(version, [user(version)]);
  });
  afterAll(() => {
    sim.server.close();
    files.server.close();
  });
  const downloadParams = (file: string, extra: Record<string, string> = {}) => ({ content: "import", filename: file, url: files.url(file), "verify-certificates": "1", ...extra });
  const taskLog = async (upid: unknown) => ((await sim.call("GET", `/nodes/pve/tasks/${encodeURIComponent(String(upid))}/log`)).body?.data as { t: string }[]).map((l) => l.t);

  it("answers query-url-metadata from a HEAD of the URL", async () => {
    const answer = await sim.call("GET", "/nodes/pve/query-url-metadata", { url: files.url("cloud.qcow2"), "verify-certificates": "1" });
    expect(answer.body?.data).toEqual({ filename: "cloud.qcow2", size: 262144, mimetype: "application/octet-stream" });
    expect(conforms(answer.body?.data, loadSchema(version).endpoints["GET /nodes/{node}/query-url-metadata"].returns)).toEqual([]);
    expect(await sim.call("GET", "/nodes/pve/query-url-metadata", { url: files.url("missing.qcow2") })).toMatchObject({ status: 500, reason: "invalid server response: '404 Not Found'" });
  });

  it("downloads to the import content, verifying the checksum, in a task named after the file", async () => {
    const started = await sim.call("POST", "/nodes/pve/storage/local/download-url", downloadParams("cloud.qcow2", { checksum: sha256(image).toUpperCase(), "checksum-algorithm": "sha256" }));
    expect(String(started.body?.data)).toMatch(/^UPID:pve:[0-9A-F]{8}:[0-9A-F]{8}:[0-9A-F]{8}:download:cloud\.qcow2:terraform@pve!k3s:$/);
    expect(await sim.wait(started.body?.data)).toMatchObject({ exitstatus: "OK" });
    expect(await taskLog(started.body?.data)).toEqual([
      `downloading ${files.url("cloud.qcow2")} to /var/lib/vz/import/cloud.qcow2`,
      "calculating checksum...OK, checksum verified",
      `download of '${files.url("cloud.qcow2")}' to '/var/lib/vz/import/cloud.qcow2' finished`,
      "TASK OK",
    ]);
    const content = (await sim.call("GET", "/nodes/pve/storage/local/content")).body?.data;
    expect(content).toEqual([expect.objectContaining({ volid: "local:import/cloud.qcow2", content: "import", format: "qcow2", size: 262144 })]);
    expect(content).toEqual([expect.not.objectContaining({ vmid: expect.anything() })]);
    const info = await sim.call("GET", "/nodes/pve/storage/local/content/local:import%2Fcloud.qcow2");
    expect(info.body?.data).toMatchObject({ path: "/var/lib/vz/import/cloud.qcow2", format: "qcow2", size: 3 * 1024 ** 3 });

    const again = await sim.call("POST", "/nodes/pve/storage/local/download-url", downloadParams("cloud.qcow2", { checksum: sha256(image), "checksum-algorithm": "sha256" }));
    expect(await sim.wait(again.body?.data)).toMatchObject({ exitstatus: "OK" });
    expect(await taskLog(again.body?.data)).toContain("OK, got correct file already, no need to download");
    const unchecked = await sim.call("POST", "/nodes/pve/storage/local/download-url", downloadParams("cloud.qcow2"));
    expect(await sim.wait(unchecked.body?.data)).toMatchObject({ exitstatus: "refusing to override existing file '/var/lib/vz/import/cloud.qcow2'" });
  });

  it("fails the task on a checksum mismatch and an image that is not one, leaving no file", async () => {
    const tampered = await sim.call("POST", "/nodes/pve/storage/local/download-url", downloadParams("tampered.qcow2", { checksum: sha256(image), "checksum-algorithm": "sha256" }));
    expect(await sim.wait(tampered.body?.data)).toMatchObject({ exitstatus: `checksum mismatch: got '${sha256(path.join(dir, "tampered.qcow2"))}' != expect '${sha256(image)}'` });
    const bogus = await sim.call("POST", "/nodes/pve/storage/local/download-url", downloadParams("not-an-image.qcow2"));
    expect(await sim.wait(bogus.body?.data)).toMatchObject({ exitstatus: expect.stringMatching(/^failed to verify file: qemu-img: Could not open '.*': Image is not in qcow2 format$/) });
    const missing = await sim.call("POST", "/nodes/pve/storage/local/download-url", downloadParams("missing.qcow2"));
    expect(await sim.wait(missing.body?.data)).toMatchObject({ exitstatus: "download failed: 404 Not Found" });
    const volids = ((await sim.call("GET", "/nodes/pve/storage/local/content")).body?.data as { volid: string }[]).map((v) => v.volid);
    expect(volids).toEqual(["local:import/cloud.qcow2"]);
    expect(fs.readdirSync(path.join(sim.sim.options.stateDir, "storage", "local", "import"))).toEqual(["cloud.qcow2"]);
  });

  it("refuses downloads PVE refuses before the task", async () => {
    expect(await sim.call("POST", "/nodes/pve/storage/local-lvm/download-url", downloadParams("cloud.qcow2"))).toMatchObject({ status: 500, reason: "can't upload to storage type 'lvmthin', not a file based storage!" });
    expect(await sim.call("POST", "/nodes/pve/storage/local/download-url", downloadParams("cloud.img"))).toMatchObject({ status: 400, body: { errors: { filename: "invalid filename or wrong extension" } } });
    expect(await sim.call("POST", "/nodes/pve/storage/local/download-url", { ...downloadParams("cloud.qcow2"), content: "backup" })).toMatchObject({ status: 400, body: { errors: { content: expect.stringContaining("does not have a value in the enumeration") } } });
    expect(await sim.call("POST", "/nodes/pve/storage/local/download-url", downloadParams("cloud.qcow2", { checksum: "00" }))).toMatchObject({ status: 400 });
  });

  it("creates a template with the image imported on scsi0, as bpg's create body has it, and clones it", async () => {
    const created = await sim.call("POST", "/nodes/pve/qemu", {
      acpi: "1",
      agent: "enabled=1,fstrim_cloned_disks=0,type=virtio",
      balloon: "0",
      bios: "seabios",
      boot: "order=scsi0;net0",
      cores: "2",
      cpu: "cputype=host",
      cpuunits: "1024",
      ide2: "file=local-lvm:cloudinit,media=cdrom,",
      keyboard: "en-us",
      memory: "2048",
      name: "k3s-template",
      net0: "model=virtio,bridge=vmbr0,firewall=0",
      numa: "0",
      onboot: "0",
      ostype: "l26",
      protection: "0",
      scsi0: "file=local-lvm:0,import-from=local:import/cloud.qcow2,size=3221225472,aio=io_uring,backup=1,iothread=1,ssd=0,discard=on,cache=none,replicate=1",
      scsihw: "virtio-scsi-single",
      serial0: "socket",
      sockets: "1",
      tablet: "1",
      template: "1",
      vga: "memory=16,type=serial0",
      vmid: "9100",
    });
    expect(String(created.body?.data)).toMatch(/:qmcreate:9100:terraform@pve!k3s:$/);
    expect(await sim.wait(created.body?.data)).toMatchObject({ exitstatus: "OK" });
    const resize = await sim.call("PUT", "/nodes/pve/qemu/9100/resize", { disk: "scsi0", size: "3221225472" });
    expect(await sim.wait(resize.body?.data)).toMatchObject({ exitstatus: "OK" });
    const config = (await sim.call("GET", "/nodes/pve/qemu/9100/config")).body?.data as Record<string, unknown>;
    expect(config).toMatchObject({ template: 1, scsihw: "virtio-scsi-single", serial0: "socket", ide2: "local-lvm:vm-9100-cloudinit,media=cdrom", agent: "enabled=1,fstrim_cloned_disks=0,type=virtio" });
    expect(config.scsi0).toBe("local-lvm:vm-9100-disk-0,aio=io_uring,backup=1,cache=none,discard=on,iothread=1,replicate=1,size=3G,ssd=0");
    expect(config.net0).toMatch(/^virtio=BC:24:11:[0-9A-F:]{8},bridge=vmbr0,firewall=0$/);
    expect(config.smbios1).toMatch(/^uuid=[0-9a-f-]{36}$/);
    expect(((await sim.call("GET", "/nodes/pve/qemu")).body?.data as { vmid: number; template?: number }[]).find((v) => v.vmid === 9100)).toMatchObject({ template: 1 });

    const clone = await sim.call("POST", "/nodes/pve/qemu/9100/clone", { newid: "120", full: "1", name: "k3s-master-1", storage: "local-lvm" });
    expect(await sim.wait(clone.body?.data)).toMatchObject({ exitstatus: "OK" });
    expect(((await sim.call("GET", "/nodes/pve/qemu/120/config")).body?.data as Record<string, unknown>).scsi0).toMatch(/^local-lvm:vm-120-disk-0,.*size=3G/);
  });

  it("refuses creations PVE refuses", async () => {
    const base = { vmid: "9101", scsi0: "file=local-lvm:0,import-from=local:import/cloud.qcow2" };
    expect(await sim.call("POST", "/nodes/pve/qemu", { ...base, vmid: "9100" })).toMatchObject({ status: 500, reason: "unable to create VM 9100 - VM 9100 already exists on node 'pve'" });
    expect(await sim.call("POST", "/nodes/pve/qemu", { ...base, scsi0: "file=local-lvm:4,import-from=local:import/cloud.qcow2" })).toMatchObject({
      status: 400,
      body: { errors: { scsi0: "'import-from' requires special syntax - use <storage ID>:0,import-from=<source>" } },
    });
    expect(await sim.call("POST", "/nodes/pve/qemu", { ...base, scsi0: "file=local-lvm:0,import-from=/root/cloud.qcow2" })).toMatchObject({ status: 500, reason: expect.stringMatching(/^Only root can pass arbitrary filesystem paths\. at /) });
    expect(await sim.call("POST", "/nodes/pve/qemu", { ...base, scsi0: "file=local-lvm:0,import-from=local:import/gone.qcow2" })).toMatchObject({ status: 500, reason: "volume 'local:import/gone.qcow2' does not exist" });
    expect(sim.sim.state.vms.has(9101)).toBe(false);
  });

  it("deletes the image the way the provider does: DELETE of the escaped volume id, a task imgdel", async () => {
    const del = await sim.call("DELETE", "/nodes/pve/storage/local/content/local:import%2Fcloud.qcow2");
    expect(String(del.body?.data)).toMatch(/:imgdel:local:terraform@pve!k3s:$/);
    expect(await sim.wait(del.body?.data)).toMatchObject({ exitstatus: "OK" });
    expect((await sim.call("GET", "/nodes/pve/storage/local/content")).body?.data).toEqual([]);
    const gone = await sim.call("DELETE", "/nodes/pve/storage/local/content/local:import%2Fcloud.qcow2");
    expect(await sim.wait(gone.body?.data)).toMatchObject({ exitstatus: "WARNINGS: 1" });
    expect(await sim.call("DELETE", "/nodes/pve/storage/local/content/other:import%2Fcloud.qcow2")).toMatchObject({ status: 400, body: { errors: { volume: "storage ID mismatch (other != local)" } } });
  });

  it("needs the template privileges the README lists", async () => {
    const limited = await start(version, [user(version, { userid: "cloner@pve", privileges: ROLE(version).filter((p) => !["Datastore.AllocateTemplate", "Datastore.Allocate"].includes(p)) })]);
    try {
      expect(await limited.call("POST", "/nodes/pve/storage/local/download-url", downloadParams("cloud.qcow2"), { Authorization: `PVEAPIToken=cloner@pve!k3s=${SECRET}` })).toMatchObject({
        status: 403,
        reason: "Permission check failed (/storage/local, Datastore.AllocateTemplate)",
      });
      expect(await limited.call("DELETE", "/nodes/pve/storage/local/content/local:import%2Fcloud.qcow2", {}, { Authorization: `PVEAPIToken=cloner@pve!k3s=${SECRET}` })).toMatchObject({
        status: 403,
        reason: "Permission check failed (/storage/local, Datastore.Allocate)",
      });
    } finally {
      limited.server.close();
    }
  });
});
