/**
 * The etcd_snapshot_check module (constructs/ansible/library/) run by the pinned venv's Python on snapshots
 * shaped as etcd writes them — a bbolt file (two meta pages with their FNV-1a checksums) plus the SHA-256 of
 * its pages — intact, and damaged in each way a restore must refuse. (The e2e checks it on a real snapshot.)
 */
import { execFileSync } from "node:child_process";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { REPO, tempDir, VENV_BIN } from "../../helpers";

const MODULE = path.join(REPO, "constructs/ansible/library/etcd_snapshot_check.py");
const PYTHON = path.join(VENV_BIN, "python");
const havePython = fs.existsSync(PYTHON);
if (!havePython) console.warn(`etcd-snapshot-check.test.ts: skipped, no ${PYTHON} (run make setup)`);

const PAGE = 4096;

function fnv1a64(bytes: Buffer): bigint {
  let value = 0xcbf29ce484222325n;
  for (const byte of bytes) value = BigInt.asUintN(64, (value ^ BigInt(byte)) * 0x100000001b3n);
  return value;
}

/** A bbolt database of `pages` pages: meta pages 0 and 1 as bbolt writes them, the rest filler. */
function boltDb(pages: number): Buffer {
  const db = Buffer.alloc(pages * PAGE, 0x5a);
  for (const page of [0, 1]) {
    const meta = Buffer.alloc(64);
    meta.writeUInt32LE(0xed0cdaed, 0); // magic
    meta.writeUInt32LE(2, 4); // version
    meta.writeUInt32LE(PAGE, 8); // page size
    meta.writeBigUInt64LE(BigInt(3 + page), 40); // txid
    meta.writeBigUInt64LE(fnv1a64(meta.subarray(0, 56)), 56);
    db.fill(0, page * PAGE, (page + 1) * PAGE);
    db.writeBigUInt64LE(BigInt(page), page * PAGE); // page id
    db.writeUInt16LE(0x04, page * PAGE + 8); // meta page flag
    meta.copy(db, page * PAGE + 16);
  }
  return db;
}
const withHash = (db: Buffer) => Buffer.concat([db, crypto.createHash("sha256").update(db).digest()]);

const scratch = tempDir("k3spve-snapshot-");
let dir: string;
const file = (name: string, content: Buffer) => {
  fs.writeFileSync(path.join(dir, name), content);
  return path.join(dir, name);
};

/** The module's verdict on a file: null when usable, else the reason. */
function verdict(target: string): string | null {
  const driver = [
    "import importlib.util, json, sys",
    "spec = importlib.util.spec_from_file_location('m', sys.argv[1])",
    "m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)",
    "print(json.dumps(m.check(sys.argv[2])))",
  ].join("\n");
  const [problem] = JSON.parse(execFileSync(PYTHON, ["-c", driver, MODULE, target], { encoding: "utf8" })) as [string | null];
  return problem;
}

beforeAll(() => {
  dir = scratch();
});

describe.skipIf(!havePython)("etcd_snapshot_check", () => {
  it("accepts an intact snapshot, with or without etcd's SHA-256 trailer", () => {
    expect(verdict(file("good", withHash(boltDb(8))))).toBeNull();
    expect(verdict(file("bare-db", boltDb(8)))).toBeNull();
  });

  it("accepts an intact K3s-compressed (zip) snapshot", () => {
    const inner = file("inner", withHash(boltDb(8)));
    execFileSync(PYTHON, ["-c", "import sys, zipfile; zipfile.ZipFile(sys.argv[2], 'w', zipfile.ZIP_DEFLATED).write(sys.argv[1], 'snap')", inner, path.join(dir, "snap.zip")]);
    expect(verdict(path.join(dir, "snap.zip"))).toBeNull();
  });

  it("refuses a byte changed anywhere", () => {
    const damaged = withHash(boltDb(8));
    damaged[5 * PAGE + 123] ^= 0xff;
    expect(verdict(file("flipped", damaged))).toMatch(/SHA-256 does not match/);
  });

  it("refuses a truncated file, a missing one, and something that is no etcd database", () => {
    expect(verdict(file("truncated", withHash(boltDb(8)).subarray(0, 5 * PAGE + 100)))).toMatch(/neither whole database pages/);
    expect(verdict(path.join(dir, "missing"))).toMatch(/does not exist/);
    expect(verdict(file("random", withHash(Buffer.alloc(8 * PAGE, 7))))).toMatch(/not an etcd \(bbolt\) database/);
    expect(verdict(file("tiny", Buffer.alloc(512)))).toMatch(/too small/);
  });

  it("refuses a damaged database whose meta pages are both broken, even without a trailer", () => {
    const db = boltDb(8);
    db[16 + 20] ^= 1;
    db[PAGE + 16 + 20] ^= 1;
    expect(verdict(file("bad-meta", db))).toMatch(/no intact meta page/);
  });
});
