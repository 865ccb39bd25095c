import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import * as E from "fp-ts/lib/Either.js";
import { describe, expect, it } from "vitest";
import { renderCheckpointError, type CheckpointError } from "./errors";
import { concatChunks, decodeSafetensors, encodeSafetensors, readSafetensors, writeSafetensors, type SafetensorsContents } from "./safetensors";
import { scratchDir, values } from "./test-fixtures";
import { makeTensor, type Tensor } from "./tensor";

function sample(): Map<string, Tensor> {
  return new Map<string, Tensor>([
    ["conv.weight", { dtype: "F32", shape: [2, 1, 2], data: new Float32Array([1.5, -2, 3.25, Number.NaN]) }],
    ["bn.num_batches_tracked", { dtype: "I64", shape: [], data: new BigInt64Array([-7n]) }],
    ["mask", { dtype: "U8", shape: [3], data: new Uint8Array([0, 255, 9]) }],
    ["half", { dtype: "F16", shape: [2], data: new Uint16Array([0x3c00, 0xc000]) }],
    ["idx", { dtype: "I32", shape: [1, 2], data: new Int32Array([-1, 2]) }],
    ["var", { dtype: "F64", shape: [1], data: new Float64Array([0.1]) }],
    ["empty", { dtype: "F32", shape: [0, 4], data: new Float32Array(0) }],
  ]);
}

function encode(contents: SafetensorsContents): Uint8Array {
  const chunks = encodeSafetensors("mem", contents);
  if (E.isLeft(chunks)) throw new Error(renderCheckpointError(chunks.left));
  return concatChunks(chunks.right);
}

function decodeError(bytes: Uint8Array): CheckpointError {
  const r = decodeSafetensors("model.safetensors", bytes);
  if (E.isRight(r)) throw new Error("expected the decoder to refuse");
  return r.left;
}

/** A file with a hand-written header, for the reader's validation paths. */
function withHeader(header: unknown, dataBytes: number): Uint8Array {
  const json = new TextEncoder().encode(JSON.stringify(header));
  const out = new Uint8Array(8 + json.length + dataBytes);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  return out;
}

function headerOf(bytes: Uint8Array): Record<string, { data_offsets: [number, number]; dtype: string }> {
  const n = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
  return JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n))) as Record<string, { data_offsets: [number, number]; dtype: string }>;
}

describe("safetensors", () => {
  it("round-trips every dtype, scalars, empty tensors and metadata bit for bit", () => {
    const tensors = sample();
    const decoded = decodeSafetensors("mem", encode({ tensors, metadata: { iteration: "12" } }));
    expect(E.isRight(decoded)).toBe(true);
    if (E.isLeft(decoded)) return;
    expect(decoded.right.metadata).toEqual({ iteration: "12" });
    expect([...decoded.right.tensors.keys()].sort()).toEqual([...tensors.keys()].sort());
    for (const [name, t] of tensors) {
      const back = decoded.right.tensors.get(name)!;
      expect(back.dtype).toBe(t.dtype);
      expect(back.shape).toEqual(t.shape);
      expect(back.data.constructor).toBe(t.data.constructor);
      expect(Buffer.from(back.data.buffer, back.data.byteOffset, back.data.byteLength)).toEqual(
        Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength),
      );
    }
  });

  it("writes the same bytes whatever the insertion order", () => {
    const forward = sample();
    const backward = new Map([...forward].reverse());
    expect(encode({ tensors: forward, metadata: { b: "1", a: "2" } })).toEqual(encode({ tensors: backward, metadata: { a: "2", b: "1" } }));
  });

  it("pads the header to 8 bytes and aligns every tensor to its element size, with no gaps", () => {
    const bytes = encode({ tensors: sample(), metadata: {} });
    const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
    expect(n % 8).toBe(0);
    const sizes: Record<string, number> = { F64: 8, I64: 8, F32: 4, I32: 4, F16: 2, U8: 1 };
    const spans = Object.values(headerOf(bytes)).map((e) => ({ ...e, size: sizes[e.dtype]! }));
    for (const s of spans) expect(s.data_offsets[0] % s.size).toBe(0);
    const sorted = spans.map((s) => s.data_offsets).sort((a, b) => a[0] - b[0] || a[1] - b[1]);
    sorted.reduce((end, [b, e]) => (expect(b).toBe(end), e), 0);
  });

  it("reads what a reference writer produces (hand-built header, unsorted keys)", () => {
    const file = withHeader({ b: { dtype: "I32", shape: [2], data_offsets: [0, 8] }, __metadata__: { k: "v" }, a: { dtype: "U8", shape: [1], data_offsets: [8, 9] } }, 9);
    const dataStart = file.length - 9;
    new DataView(file.buffer).setInt32(dataStart, -5, true);
    new DataView(file.buffer).setInt32(dataStart + 4, 6, true);
    file[dataStart + 8] = 200;
    const r = decodeSafetensors("ref.safetensors", file);
    expect(E.isRight(r) && values(r.right.tensors.get("b")!)).toEqual([-5, 6]);
    expect(E.isRight(r) && values(r.right.tensors.get("a")!)).toEqual([200]);
  });

  it("refuses a file shorter than the length prefix", () => {
    expect(renderCheckpointError(decodeError(new Uint8Array(5)))).toMatch(/model\.safetensors.*too short/);
  });

  it("refuses a header length beyond the end of the file, naming the file", () => {
    const bytes = encode({ tensors: sample(), metadata: {} });
    const e = decodeError(bytes.subarray(0, 20));
    expect(e.kind).toBe("corrupt");
    expect(renderCheckpointError(e)).toMatch(/model\.safetensors.*header length .* exceeds/);
  });

  it("refuses truncated data, naming the tensor whose bytes are cut", () => {
    const bytes = encode({ tensors: new Map([["only", makeTensor("F32", [4], new Float32Array(4))]]), metadata: {} });
    const e = decodeError(bytes.subarray(0, bytes.length - 1));
    expect(e.tensor).toBe("only");
    expect(renderCheckpointError(e)).toMatch(/model\.safetensors: only: .*outside/);
  });

  it("refuses overlapping tensors, naming one of them", () => {
    const e = decodeError(withHeader({ x: { dtype: "F32", shape: [2], data_offsets: [0, 8] }, y: { dtype: "F32", shape: [1], data_offsets: [4, 8] } }, 8));
    expect(e.tensor).toBe("y");
    expect(e.detail).toMatch(/overlap x/);
  });

  it("refuses an unknown dtype, naming the tensor", () => {
    const e = decodeError(withHeader({ w: { dtype: "F8_E9", shape: [1], data_offsets: [0, 1] } }, 1));
    expect(e.tensor).toBe("w");
    expect(e.detail).toMatch(/unknown dtype/);
  });

  it("refuses a shape whose size disagrees with the byte span, naming the tensor", () => {
    const e = decodeError(withHeader({ w: { dtype: "F32", shape: [3], data_offsets: [0, 8] } }, 8));
    expect(e.tensor).toBe("w");
    expect(e.detail).toMatch(/needs 12 bytes but data_offsets span 8/);
  });

  it("refuses a header that is not JSON", () => {
    const bytes = new Uint8Array(16);
    new DataView(bytes.buffer).setBigUint64(0, 8n, true);
    bytes.set(new TextEncoder().encode("{not js}"), 8);
    expect(decodeError(bytes).detail).toMatch(/not valid JSON/);
  });

  it("refuses non-string metadata", () => {
    expect(decodeError(withHeader({ __metadata__: { n: 3 } }, 0)).detail).toMatch(/__metadata__\.n is not a string/);
  });

  it("refuses to encode a tensor whose data does not match its shape, naming it", () => {
    const bad = new Map<string, Tensor>([["w", { dtype: "F32", shape: [3], data: new Float32Array(2) }]]);
    const r = encodeSafetensors("out.safetensors", { tensors: bad, metadata: {} });
    expect(E.isLeft(r) && r.left.tensor).toBe("w");
  });

  it("refuses to encode data of the wrong array type for the dtype", () => {
    const bad = new Map([["w", { dtype: "F32", shape: [2], data: new Int32Array(2) } as unknown as Tensor]]);
    const r = encodeSafetensors("out.safetensors", { tensors: bad, metadata: {} });
    expect(E.isLeft(r) && r.left.detail).toMatch(/needs a Float32Array/);
  });
});

describe("safetensors files", () => {
  it("write then read gives the same tensors", async () => {
    const path = join(scratchDir(), "a.safetensors");
    expect(E.isRight(await writeSafetensors(path, { tensors: sample(), metadata: { note: "x" } })())).toBe(true);
    const back = await readSafetensors(path)();
    expect(E.isRight(back) && values(back.right.tensors.get("idx")!)).toEqual([-1, 2]);
  });

  it("reports a missing file as an I/O error naming it", async () => {
    const r = await readSafetensors("/nonexistent/x.safetensors")();
    expect(E.isLeft(r) && renderCheckpointError(r.left)).toMatch(/I\/O error in \/nonexistent\/x\.safetensors/);
  });

  it("leaves an existing file untouched, and no temporary file, when a tensor is invalid", async () => {
    const dir = scratchDir();
    const path = join(dir, "keep.safetensors");
    writeFileSync(path, "old content");
    const bad = new Map<string, Tensor>([["w", { dtype: "F32", shape: [3], data: new Float32Array(2) }]]);
    expect(E.isLeft(await writeSafetensors(path, { tensors: bad, metadata: {} })())).toBe(true);
    expect(readFileSync(path, "utf8")).toBe("old content");
    expect(readdirSync(dir)).toEqual(["keep.safetensors"]);
  });

  it("replaces an existing file completely", async () => {
    const dir = scratchDir();
    const path = join(dir, "w.safetensors");
    writeFileSync(path, "x".repeat(10_000));
    await writeSafetensors(path, { tensors: sample(), metadata: {} })();
    expect(E.isRight(await readSafetensors(path)())).toBe(true);
    expect(readdirSync(dir)).toEqual(["w.safetensors"]);
    expect(existsSync(path)).toBe(true);
  });
});

describe("safetensors names", () => {
  it("stores a tensor named __proto__ like any other name", () => {
    const tensors = new Map<string, Tensor>([["__proto__", makeTensor("F32", [1], new Float32Array([4]))]]);
    const r = decodeSafetensors("mem", encode({ tensors, metadata: {} }));
    expect(E.isRight(r) && [...r.right.tensors.keys()]).toEqual(["__proto__"]);
  });
});
