import * as E from "fp-ts/lib/Either.js";
import { describe, expect, it } from "vitest";
import { renderCheckpointError } from "./errors";
import { fixtureBytes } from "./test-fixtures";
import { buildZip } from "./test-zip-builder";
import { crc32 } from "../format/crc32";
import { isZip, readZipDirectory, readZipEntry } from "./zip";

const text = (s: string) => new TextEncoder().encode(s);

function entries(bytes: Uint8Array, file = "a.zip"): Map<string, string> {
  const dir = readZipDirectory(file, bytes);
  if (E.isLeft(dir)) throw new Error(renderCheckpointError(dir.left));
  const out = new Map<string, string>();
  for (const e of dir.right.values()) {
    const data = readZipEntry(file, bytes, e);
    if (E.isLeft(data)) throw new Error(renderCheckpointError(data.left));
    out.set(e.name, new TextDecoder().decode(data.right));
  }
  return out;
}

describe("zip reader", () => {
  it("computes the standard CRC-32 check value", () => {
    expect(crc32(text("123456789"))).toBe(0xcbf43926);
  });

  it("lists a PyTorch archive, whose local headers are padded with extra fields", () => {
    const bytes = fixtureBytes("flat_zip.pth");
    expect(isZip(bytes)).toBe(true);
    const names = [...entries(bytes).keys()];
    expect(names).toContain("flat_zip/data.pkl");
    expect(names).toContain("flat_zip/data/0");
  });

  it("inflates deflated entries to the same bytes as stored ones", () => {
    const stored = entries(fixtureBytes("flat_zip.pth"));
    const deflated = entries(fixtureBytes("flat_zip_deflated.pth"));
    expect(deflated).toEqual(stored);
  });

  it("follows ZIP64 records and extra fields", () => {
    const bytes = buildZip([{ name: "x/data.pkl", data: text("hello") }, { name: "x/data/0", data: text("world".repeat(50)), deflate: true }], { zip64: true });
    expect(entries(bytes)).toEqual(new Map([["x/data.pkl", "hello"], ["x/data/0", "world".repeat(50)]]));
  });

  it("skips a comment after the end-of-central-directory record", () => {
    const base = buildZip([{ name: "a", data: text("1") }]);
    const withComment = new Uint8Array(base.length + 5);
    withComment.set(base);
    withComment.set(text("hello"), base.length);
    new DataView(withComment.buffer).setUint16(base.length - 2, 5, true);
    expect(entries(withComment)).toEqual(new Map([["a", "1"]]));
  });

  it("reports a truncated archive, naming the file", () => {
    const bytes = fixtureBytes("flat_zip.pth");
    const r = readZipDirectory("cut.pth", bytes.subarray(0, bytes.length - 100));
    expect(E.isLeft(r) && renderCheckpointError(r.left)).toMatch(/corrupt checkpoint in cut\.pth/);
  });

  it("detects a damaged entry by its CRC, naming the entry", () => {
    const bytes = buildZip([{ name: "x/data/0", data: text("abcdefgh") }]);
    const at = 30 + "x/data/0".length + 3;
    bytes[at] = bytes[at]! ^ 0xff;
    const dir = readZipDirectory("d.zip", bytes);
    if (E.isLeft(dir)) throw new Error("directory should still read");
    const r = readZipEntry("d.zip", bytes, dir.right.get("x/data/0")!);
    expect(E.isLeft(r) && r.left.tensor).toBe("x/data/0");
    expect(E.isLeft(r) && r.left.detail).toMatch(/CRC-32/);
  });
});
