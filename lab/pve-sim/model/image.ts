/**
 * Disk image files on a simulated file storage: what PVE's download-url fetches and checks, and the virtual size an
 * import gives the new disk.
 *
 * - The download: an HTTP(S) GET to a temporary file beside the target, the checksum, then a rename
 *   (pve-common src/PVE/Tools.pm download_file_from_url).
 * - The check of an untrusted image: the format and a backing file (pve-storage src/PVE/Storage/Plugin.pm
 *   file_size_info with `untrusted`, which runs `qemu-img info`). Here the qcow2 header is read; raw is its size.
 */
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as http from "node:http";
import * as https from "node:https";

/** The image's format as PVE names it, from the file name's extension. */
export function formatOf(fileName: string): "qcow2" | "raw" | "vmdk" | undefined {
  const match = /\.(qcow2|raw|vmdk)$/.exec(fileName);
  return match ? (match[1] as "qcow2" | "raw" | "vmdk") : undefined;
}

/**
 * The virtual size of an image file, refusing what PVE refuses of an untrusted one. Throws with qemu-img's or PVE's
 * words. A qcow2 header: magic `QFI\xfb`, version, backing file offset (8 bytes) at 8, virtual size at 24 (the QEMU
 * qcow2 specification, docs/interop/qcow2.txt).
 */
export function virtualSize(file: string, format: "qcow2" | "raw" | "vmdk"): number {
  if (format === "raw") return fs.statSync(file).size;
  const header = Buffer.alloc(32);
  const fd = fs.openSync(file, "r");
  try {
    fs.readSync(fd, header, 0, 32, 0);
  } finally {
    fs.closeSync(fd);
  }
  if (format === "vmdk") {
    if (header.readUInt32LE(0) !== 0x564d444b) throw new Error(`qemu-img: Could not open '${file}': Image is not in vmdk format`);
    return Number(header.readBigUInt64LE(12)) * 512; // capacity in sectors (VMware's sparse extent header)
  }
  if (header.readUInt32BE(0) !== 0x514649fb) throw new Error(`qemu-img: Could not open '${file}': Image is not in qcow2 format`);
  if (header.readBigUInt64BE(8) !== 0n) throw new Error(`backing file not allowed for untrusted image '${file}'!`);
  return Number(header.readBigUInt64BE(24));
}

/** HEAD of a URL, as query-url-metadata makes it (pve-manager src/PVE/API2/Nodes.pm query_url_metadata). */
export function head(url: string, verifyCertificates: boolean): Promise<{ status: number; statusText: string; headers: http.IncomingHttpHeaders }> {
  return new Promise((resolve, reject) => {
    const get = url.startsWith("https:") ? https.request : http.request;
    const request = get(url, { method: "HEAD", headers: { "User-Agent": "Proxmox VE" }, rejectUnauthorized: verifyCertificates, timeout: 30_000 }, (response) => {
      response.resume();
      resolve({ status: response.statusCode ?? 0, statusText: response.statusMessage ?? "", headers: response.headers });
    });
    request.on("timeout", () => request.destroy(new Error("timeout")));
    request.on("error", reject);
    request.end();
  });
}

/** GET a URL into `file`; resolves with the bytes written. Redirects are not followed (wget's would be). */
export function download(url: string, file: string, verifyCertificates: boolean, progress: (line: string) => void): Promise<number> {
  return new Promise((resolve, reject) => {
    const get = url.startsWith("https:") ? https.get : http.get;
    const request = get(url, { rejectUnauthorized: verifyCertificates, timeout: 60_000 }, (response) => {
      if (response.statusCode !== 200) {
        response.resume();
        reject(new Error(`download failed: ${response.statusCode} ${response.statusMessage ?? ""}`.trimEnd()));
        return;
      }
      const out = fs.createWriteStream(file, { mode: 0o644 });
      let bytes = 0;
      let reported = 0;
      response.on("data", (chunk: Buffer) => {
        bytes += chunk.length;
        if (bytes - reported >= 1024 ** 3) {
          reported = bytes;
          progress(`${Math.round(bytes / 1024 ** 2)}M downloaded`);
        }
      });
      response.pipe(out);
      out.on("finish", () => resolve(bytes));
      out.on("error", reject);
      response.on("error", reject);
    });
    request.on("timeout", () => request.destroy(new Error("timeout")));
    request.on("error", (error) => reject(new Error(`download failed: ${error.message}`)));
  });
}

/** The hex digest of a file (what download_file_from_url compares, case-insensitively). */
export function fileDigest(file: string, algorithm: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const hash = crypto.createHash(algorithm);
    fs.createReadStream(file)
      .on("data", (chunk) => hash.update(chunk))
      .on("end", () => resolve(hash.digest("hex")))
      .on("error", reject);
  });
}

/**
 * Writes an empty qcow2 (version 3) of the given virtual size, laid out as `qemu-img create -f qcow2` lays one out
 * with 64 KiB clusters: header, refcount table, one refcount block, L1 table. The lab's stand-in for a cloud image.
 */
export function writeEmptyQcow2(file: string, bytes: number): void {
  const cluster = 65536;
  const l1Entries = Math.ceil(bytes / (cluster * (cluster / 8)));
  if (l1Entries * 8 > cluster) throw new Error("writeEmptyQcow2: more than one cluster of L1 table is not written here");
  const image = Buffer.alloc(4 * cluster);
  image.writeUInt32BE(0x514649fb, 0); // magic "QFI\xfb"
  image.writeUInt32BE(3, 4); // version
  image.writeUInt32BE(16, 20); // cluster_bits
  image.writeBigUInt64BE(BigInt(bytes), 24); // size
  image.writeUInt32BE(l1Entries, 36); // l1_size
  image.writeBigUInt64BE(BigInt(3 * cluster), 40); // l1_table_offset
  image.writeBigUInt64BE(BigInt(cluster), 48); // refcount_table_offset
  image.writeUInt32BE(1, 56); // refcount_table_clusters
  image.writeUInt32BE(4, 96); // refcount_order: 16-bit refcounts
  image.writeUInt32BE(104, 100); // header_length (the end-of-extensions marker after it stays zero)
  image.writeBigUInt64BE(BigInt(2 * cluster), cluster); // refcount table[0] -> the refcount block
  for (let c = 0; c < 4; c++) image.writeUInt16BE(1, 2 * cluster + 2 * c); // clusters 0-3 are in use
  fs.writeFileSync(file, image);
}
