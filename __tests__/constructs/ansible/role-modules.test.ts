/**
 * The roles' own modules (constructs/ansible/modules/) run by the pinned venv's Python. k3s_kernel: its presence
 * checks on a made-up /sys and /proc (a module loaded, built in, or hidden but leaving its trace; active swap), and
 * the whole module in check mode on this machine's own kernel settings (check mode writes nothing). k3s_files: the
 * whole module on files in a scratch folder. k3s_firewall: its refusals (a controller outside admin_cidrs, none at
 * all) and, in check mode, what it would write and load. The e2e runs all three on its hosts.
 */
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { REPO, tempDir, VENV_BIN } from "../../helpers";

const MODULE = path.join(REPO, "constructs/ansible/modules/k3s_kernel.py");
const FILES_MODULE = path.join(REPO, "constructs/ansible/modules/k3s_files.py");
const PYTHON = path.join(VENV_BIN, "python");
const havePython = fs.existsSync(PYTHON);
if (!havePython) console.warn(`role-modules.test.ts: skipped, no ${PYTHON} (run make setup)`);

const scratch = tempDir("k3spve-kernel-");
let root: string;
const put = (rel: string, content = "") => {
  fs.mkdirSync(path.dirname(path.join(root, rel)), { recursive: true });
  fs.writeFileSync(path.join(root, rel), content);
};

/** Calls one of the module's functions with the fake root as its last argument. */
function call(fn: string, ...args: string[]): unknown {
  const driver = [
    "import importlib.util, json, sys",
    "spec = importlib.util.spec_from_file_location('m', sys.argv[1])",
    "m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)",
    "print(json.dumps(getattr(m, sys.argv[2])(*sys.argv[3:])))",
  ].join("\n");
  return JSON.parse(execFileSync(PYTHON, ["-c", driver, MODULE, fn, ...args, root], { encoding: "utf8" }));
}

/** A whole module run with these arguments (in check mode unless `check` is false): its JSON result. */
function run(module: string, args: Record<string, unknown>, check = true): Record<string, unknown> {
  const file = path.join(root, "args.json");
  fs.writeFileSync(file, JSON.stringify({ ANSIBLE_MODULE_ARGS: { ...args, _ansible_check_mode: check } }));
  let out: string;
  try {
    out = execFileSync(PYTHON, [module, file], { encoding: "utf8" });
  } catch (error) {
    out = String((error as { stdout: string }).stdout); // a failed module exits 1 with its JSON on stdout
  }
  return JSON.parse(out) as Record<string, unknown>;
}

beforeAll(() => {
  root = scratch();
  fs.mkdirSync(path.join(root, "sys/module/vxlan"), { recursive: true });
  put("proc/sys/net/bridge/bridge-nf-call-iptables", "1\n");
  put("proc/sys/net/ipv4/ip_forward", "0\n");
  put("proc/filesystems", "nodev\tsysfs\nnodev\ttmpfs\n\text4\nnodev\toverlay\n");
  put("proc/swaps", "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n/swapfile  file  1048572  0  -2\n");
});

describe.skipIf(!havePython)("k3s_kernel", () => {
  it("counts a module as present when loaded (/sys/module), or by its trace where /sys/module hides it", () => {
    expect(call("module_present", "vxlan")).toBe(true);
    expect(call("module_present", "br_netfilter")).toBe(true); // /proc/sys/net/bridge
    expect(call("module_present", "overlay")).toBe(true); // the overlay line of /proc/filesystems
    expect(call("module_present", "ip_vs")).toBe(false);
    fs.rmSync(path.join(root, "proc/sys/net/bridge"), { recursive: true });
    expect(call("module_present", "br_netfilter")).toBe(false);
    put("proc/sys/net/bridge/bridge-nf-call-iptables", "1\n");
  });

  it("reads running settings by their dotted names, and the active swap areas", () => {
    expect(call("read_sysctl", "net.ipv4.ip_forward")).toBe("0");
    expect(call("read_sysctl", "net.no.such")).toBe("");
    expect(call("active_swap")).toEqual(["/swapfile"]);
    put("proc/swaps", "Filename\tType\tSize\tUsed\tPriority\n");
    expect(call("active_swap")).toEqual([]);
  });

  it("in check mode, reports only the settings that differ from the running kernel, and refuses an unknown one", () => {
    const forward = fs.readFileSync("/proc/sys/net/ipv4/ip_forward", "utf8").trim();
    const same = run(MODULE, { sysctl: { "net.ipv4.ip_forward": forward }, node: "n1" });
    expect(same).toMatchObject({ changed: false, settings: {}, loaded: [] });
    const other = forward === "1" ? "0" : "1";
    const differs = run(MODULE, { sysctl: { "net.ipv4.ip_forward": other }, node: "n1" });
    expect(differs).toMatchObject({ changed: true, settings: { "net.ipv4.ip_forward": { before: forward, after: other } } });
    expect(fs.readFileSync("/proc/sys/net/ipv4/ip_forward", "utf8").trim()).toBe(forward);
    const unknown = run(MODULE, { sysctl: { "net.ipv4.no_such_setting": 1 }, node: "n1" });
    expect(unknown).toMatchObject({ failed: true });
    expect(String(unknown.msg)).toMatch(/n1 has no kernel setting net\.ipv4\.no_such_setting .*Fix k3s_prereqs_sysctl/);
  });
});

describe.skipIf(!havePython)("k3s_files", () => {
  const dest = (name: string) => path.join(root, "etc", name);
  const user = os.userInfo().username;
  const group = execFileSync("id", ["-gn"], { encoding: "utf8" }).trim();
  const files = (mode = "0644", content = "a = 1\n") => ({
    files: [
      { dest: dest("one.conf"), content, mode, owner: user, group },
      { dest: dest("two.conf"), content: "b = 2\n", mode: "0600", owner: user, group },
    ],
  });
  const modeOf = (file: string) => (fs.statSync(file).mode & 0o7777).toString(8);

  it("writes every file with its content and mode, then changes nothing the second time", () => {
    fs.mkdirSync(path.join(root, "etc"), { recursive: true });
    expect(run(FILES_MODULE, files(), true)).toMatchObject({ changed: true, changed_files: [dest("one.conf"), dest("two.conf")] });
    expect(fs.existsSync(dest("one.conf"))).toBe(false); // check mode wrote nothing
    expect(run(FILES_MODULE, files(), false)).toMatchObject({ changed: true, changed_files: [dest("one.conf"), dest("two.conf")] });
    expect(fs.readFileSync(dest("one.conf"), "utf8")).toBe("a = 1\n");
    expect([modeOf(dest("one.conf")), modeOf(dest("two.conf"))]).toEqual(["644", "600"]);
    expect(run(FILES_MODULE, files(), false)).toMatchObject({ changed: false, changed_files: [] });
    expect(fs.readdirSync(path.join(root, "etc")).sort()).toEqual(["one.conf", "two.conf"]); // no temporary file left
  });

  it("changes only what differs: a mode, a content", () => {
    expect(run(FILES_MODULE, files("0640"), false)).toMatchObject({ changed: true, changed_files: [dest("one.conf")] });
    expect(modeOf(dest("one.conf"))).toBe("640");
    expect(run(FILES_MODULE, files("0640", "a = 2\n"), false)).toMatchObject({ changed: true, changed_files: [dest("one.conf")] });
    expect(fs.readFileSync(dest("one.conf"), "utf8")).toBe("a = 2\n");
  });

  it("refuses a file whose folder is missing, and never returns a content", () => {
    const result = run(FILES_MODULE, { files: [{ dest: path.join(root, "nowhere", "x.conf"), content: "secret-token", mode: "0600", owner: user, group }] }, false);
    expect(result).toMatchObject({ failed: true });
    expect(String(result.msg)).toMatch(/the folder .*nowhere does not exist/);
    expect(JSON.stringify(result)).not.toContain("secret-token");
  });
});

describe.skipIf(!havePython)("k3s_firewall", () => {
  const FIREWALL_MODULE = path.join(REPO, "constructs/ansible/modules/k3s_firewall.py");
  // A table and a unit no machine has: the module, in check mode, only reads.
  const args = (extra: Record<string, unknown>) => ({
    ruleset: "table inet k3spve_unit_test {\n}\n",
    table: "k3spve_unit_test",
    path: path.join(root, "firewall.nft"),
    unit: "k3spve-unit-test-firewall.service",
    admin_cidrs: ["192.168.1.0/24", "10.8.0.7/32"],
    node: "n1",
    ...extra,
  });

  it("refuses, before anything else, a controller outside admin_cidrs: the firewall would shut it out", () => {
    const result = run(FIREWALL_MODULE, args({ controller: "10.8.0.8" }), false);
    expect(result).toMatchObject({ failed: true });
    expect(String(result.msg)).toMatch(
      /^n1 sees this machine \(where make provision runs\) at 10\.8\.0\.8, which is in none of admin_cidrs \(192\.168\.1\.0\/24, 10\.8\.0\.7\/32\).*Add its address or network to admin_cidrs.*The firewall was not changed\./,
    );
    expect(fs.existsSync(path.join(root, "firewall.nft"))).toBe(false);
  });

  it("refuses an empty admin_cidrs and an address it cannot read", () => {
    expect(String(run(FIREWALL_MODULE, args({ admin_cidrs: [], controller: "192.168.1.5" })).msg)).toMatch(/^n1: admin_cidrs is empty, so the firewall would let no one in over SSH/);
    expect(String(run(FIREWALL_MODULE, args({ controller: "not-an-address" })).msg)).toMatch(/^n1: cannot read the controller's address or admin_cidrs/);
  });

  it("in check mode, with the controller inside, reports the ruleset and the unit to write and the table to load", () => {
    for (const controller of ["192.168.1.5", "10.8.0.7", ""]) {
      const result = run(FIREWALL_MODULE, args({ controller }));
      if (result.failed) {
        // Without the nft binary or CAP_NET_ADMIN the ruleset check is what fails, and it says so.
        expect(String(result.msg)).toMatch(/nft is missing|Checking the ruleset failed/);
        continue;
      }
      expect(result).toMatchObject({ changed: true, loaded: true, changed_files: [path.join(root, "firewall.nft"), "/etc/systemd/system/k3spve-unit-test-firewall.service"] });
    }
    expect(fs.existsSync(path.join(root, "firewall.nft"))).toBe(false);
  });

  it("with state=absent and nothing left behind, changes nothing", () => {
    expect(run(FIREWALL_MODULE, args({ state: "absent", ruleset: "" }))).toMatchObject({ changed: false, changed_files: [], loaded: false });
  });
});
