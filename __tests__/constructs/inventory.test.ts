import { describe, expect, it } from "vitest";
import { renderInventory } from "../../constructs/inventory";
import { testConfig } from "../helpers";

/** Parses the INI the way Ansible reads it: sections of lines. */
function sections(ini: string): Record<string, string[]> {
  const result: Record<string, string[]> = {};
  let current = "";
  for (const line of ini.split("\n")) {
    if (line.startsWith("#") || line.trim() === "") continue;
    const header = /^\[(.+)\]$/.exec(line);
    if (header) result[(current = header[1])] = [];
    else result[current].push(line);
  }
  return result;
}

describe("renderInventory", () => {
  it("lists masters and workers with their addresses, grouped under k3s_cluster", () => {
    expect(sections(renderInventory(testConfig()))).toEqual({
      master: ["k3s-master-1 ansible_host=192.168.1.10"],
      workers: ["k3s-worker-1 ansible_host=192.168.1.20", "k3s-worker-2 ansible_host=192.168.1.21"],
      "k3s_cluster:children": ["master", "workers"],
      "k3s_cluster:vars": ["ansible_user=debian", "ansible_ssh_private_key_file=/home/operator/.ssh/id_ed25519"],
    });
  });

  it("follows worker_count, master_count and explicit addresses", () => {
    const ini = sections(renderInventory(testConfig({ master_count: 3, worker_count: 0, master_ips: ["192.168.1.5", "192.168.1.6", "192.168.1.7"], api_vip: "192.168.1.4" })));
    expect(ini.master).toEqual(["k3s-master-1 ansible_host=192.168.1.5", "k3s-master-2 ansible_host=192.168.1.6", "k3s-master-3 ansible_host=192.168.1.7"]);
    expect(ini.workers).toEqual([]);
  });
});
