import { describe, expect, it } from "vitest";
import { loadSchema, paramDefinition, PVE_VERSIONS } from "../../../lab/pve-sim/schema";
import { DRIVE_FORMAT_ALIASES, FORMATS, PROPERTY_FORMATS } from "../../../lab/pve-sim/schema/formats";
import { formatSize, parsePropertyString, parseSize, printPropertyString } from "../../../lab/pve-sim/schema/property-string";
import { validateParameters } from "../../../lab/pve-sim/schema/validate";

const schema = loadSchema("8.4");
const configPut = schema.endpoints["PUT /nodes/{node}/qemu/{vmid}/config"];
const netFormat = configPut.parameters["net[n]"].format as Record<string, never>;
const scsiFormat = configPut.parameters["scsi[n]"].format as Record<string, never>;

const validate = (key: string, params: Record<string, string>, version: "8.4" | "9.1" = "8.4") => {
  const s = loadSchema(version);
  return validateParameters(s.endpoints[key], params, { version, privileges: s.privileges }).errors;
};

describe("property strings (PVE parse_property_string / print_property_string)", () => {
  it("reads net's key alias: virtio=<MAC> is model virtio with that MAC, and prints it back the same way", () => {
    const net = parsePropertyString(netFormat, "virtio=BC:24:11:00:00:01,bridge=vmbr0,firewall=0");
    expect(net).toEqual({ model: "virtio", macaddr: "BC:24:11:00:00:01", bridge: "vmbr0", firewall: "0" });
    expect(printPropertyString(netFormat, net)).toBe("virtio=BC:24:11:00:00:01,bridge=vmbr0,firewall=0");
  });

  it("skips empty parts (the provider's `file=…,media=cdrom,`) and normalises booleans", () => {
    expect(parsePropertyString(scsiFormat, "file=local-lvm:cloudinit,media=cdrom,")).toEqual({ file: "local-lvm:cloudinit", media: "cdrom" });
    expect(parsePropertyString(netFormat, "model=virtio,firewall=on").firewall).toBe("1");
  });

  it("prints a drive with its volume first and the other keys sorted", () => {
    expect(printPropertyString(scsiFormat, { file: "local-lvm:vm-7-disk-0", size: "32G", iothread: "1", discard: "on" })).toBe("local-lvm:vm-7-disk-0,discard=on,iothread=1,size=32G");
  });

  it("refuses what PVE refuses, with PVE's words", () => {
    expect(() => parsePropertyString(netFormat, "model=virtio,model=e1000")).toThrow("duplicate key in comma-separated list property: model");
    expect(() => parsePropertyString(netFormat, "model=virtio,colour=red")).toThrow("invalid key in comma-separated list property: colour");
    expect(() => parsePropertyString(PROPERTY_FORMATS["pve-qm-ipconfig"], "10.0.0.1/24")).toThrow("value without key, but schema does not define a default key");
  });

  it("sizes as pve-common parse_size / format_size", () => {
    expect(parseSize("32G")).toBe(34359738368);
    expect(parseSize("1.5G")).toBe(1610612736);
    expect(parseSize("34359738368")).toBe(34359738368);
    expect(parseSize("32X")).toBeUndefined();
    expect(formatSize(34359738368)).toBe("32G");
    expect(formatSize(4 * 1024 ** 2)).toBe("4M");
    expect(formatSize(1000)).toBe("1000");
  });
});

describe("parameter verification (PVE JSONSchema validate)", () => {
  it("accepts what the provider sends for a clone's settings", () => {
    expect(
      validate("PUT /nodes/{node}/qemu/{vmid}/config", {
        node: "pve",
        vmid: "710",
        agent: "enabled=1,fstrim_cloned_disks=1,type=virtio",
        balloon: "0",
        ciuser: "debian",
        cores: "2",
        cpu: "cputype=host",
        delete: "net1,net2,serial1",
        ide2: "file=local-lvm:cloudinit,media=cdrom,",
        ipconfig0: "gw=10.213.57.1,ip=10.213.57.20/24",
        memory: "4096",
        nameserver: "10.213.57.1 10.0.0.53",
        net0: "model=virtio,bridge=vmbr0,firewall=0",
        numa: "0",
        onboot: "1",
        ostype: "l26",
        scsihw: "virtio-scsi-single",
        serial0: "socket",
        sockets: "1",
        sshkeys: "ssh-ed25519%20AAAAC3NzaC1lZDI1NTE5AAAAI%2B%2F%3D%20me%40host",
        tags: "k3s;worker",
      }),
    ).toEqual({});
  });

  it("reports each kind of error with PVE's message", () => {
    const errors = validate("PUT /nodes/{node}/qemu/{vmid}/config", {
      node: "pve",
      vmid: "abc",
      cores: "two",
      onboot: "true",
      ostype: "plan9",
      net0: "model=virtio,mtu=70000",
      ipconfig0: "ip=300.1.1.1/24",
      serial0: "COM1",
      cpu: "cputype=z80",
      colour: "red",
    });
    expect(errors).toEqual({
      vmid: "type check ('integer') failed - got 'abc'",
      cores: "type check ('integer') failed - got 'two'",
      onboot: "type check ('boolean') failed - got 'true'",
      ostype: expect.stringMatching(/^value 'plan9' does not have a value in the enumeration 'other, wxp, .*l26.*'$/),
      net0: "invalid format - format error\nnet0.mtu: value must have a maximum value of 65520\n",
      ipconfig0: "invalid format - format error\nipconfig0.ip: invalid format - value does not look like a valid ipv4 network configuration\n",
      serial0: "value does not match the regex pattern",
      cpu: "invalid format - Built-in cputype 'z80' is not defined (missing 'custom-' prefix?)\n",
      colour: "property is not defined in schema and the schema does not allow additional properties",
    });
  });

  it("reports a missing required parameter, and a bad VM id by its format first", () => {
    expect(validate("POST /nodes/{node}/qemu/{vmid}/clone", { node: "pve", vmid: "9000" })).toEqual({ newid: "property is missing and it is not optional" });
    expect(validate("POST /nodes/{node}/qemu/{vmid}/clone", { node: "pve", vmid: "9000", newid: "5" })).toEqual({ newid: "invalid format - value does not look like a valid VM ID\n" });
  });

  it("words a missing `requires` key as each version does", () => {
    expect(validate("PUT /nodes/{node}/qemu/{vmid}/config", { node: "pve", vmid: "100", ipconfig0: "gw=10.0.0.1" }, "8.4").ipconfig0).toBe(
      "invalid format - format error\nipconfig0.ip: missing property - 'ipconfig0.gw' requires this property\n",
    );
    expect(validate("PUT /nodes/{node}/qemu/{vmid}/config", { node: "pve", vmid: "100", ipconfig0: "gw=10.0.0.1" }, "9.1").ipconfig0).toBe(
      "invalid format - format error\nipconfig0.ip: missing property required by 'ipconfig0.gw'\n",
    );
  });

  it("counts every parameter of a request as checked", () => {
    const s = loadSchema("8.4");
    const result = validateParameters(s.endpoints["PUT /nodes/{node}/qemu/{vmid}/resize"], { node: "pve", vmid: "100", disk: "scsi0", size: "34359738368" }, { version: "8.4", privileges: s.privileges });
    expect(result).toEqual({ errors: {}, checked: 4, keysChecked: 0 });
  });

  it("finds numbered families within their index range only", () => {
    expect(paramDefinition(configPut.parameters, "net31")).toBe(configPut.parameters["net[n]"]);
    expect(paramDefinition(configPut.parameters, "net32")).toBeUndefined();
    expect(paramDefinition(configPut.parameters, "net01")).toBeUndefined();
  });

  it.each(PVE_VERSIONS)("implements every named format the PVE %s schema uses", (version) => {
    const named = new Set<string>();
    const walk = (o: unknown): void => {
      if (Array.isArray(o)) o.forEach(walk);
      else if (o && typeof o === "object") {
        for (const [k, v] of Object.entries(o)) {
          if (k === "returns") continue;
          if (k === "format" && typeof v === "string") named.add(v);
          walk(v);
        }
      }
    };
    for (const endpoint of Object.values(loadSchema(version).endpoints)) walk(endpoint.parameters);
    const known = (f: string): boolean => f in FORMATS || f in PROPERTY_FORMATS || f in DRIVE_FORMAT_ALIASES || f === "pve-priv-list" || (f.endsWith("-list") && known(f.slice(0, -5)));
    expect([...named].filter((f) => !known(f))).toEqual([]);
  });

  it("knows each version's privileges: VM.Monitor only in 8.4, VM.GuestAgent.* only in 9.1", () => {
    expect(loadSchema("8.4").privileges).toContain("VM.Monitor");
    expect(loadSchema("8.4").privileges).not.toContain("VM.GuestAgent.Audit");
    expect(loadSchema("9.1").privileges).toContain("VM.GuestAgent.Audit");
    expect(loadSchema("9.1").privileges).not.toContain("VM.Monitor");
  });
});
