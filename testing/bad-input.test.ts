// The bad-input suite, checkpoints: real .pth files (zip and legacy, from PyTorch) and a real
// safetensors file, damaged by hand (a table of named cases) and by fast-check (truncations,
// byte flips, length fields). For every case: a refusal as a value, never an exception; the
// message names the file, and the tensor where one is at fault; memory stays bounded by the
// input (a refusal comes before any allocation the input claims). Data, list files and command
// lines are in bad-input-data.test.ts.

import * as E from "fp-ts/lib/Either.js";
import fc from "fast-check";
import { afterAll, describe, expect, it } from "vitest";
import { renderCheckpointError, type CheckpointError } from "../checkpoint/errors";
import { concatChunks, decodeSafetensors, encodeSafetensors } from "../checkpoint/safetensors";
import { numel, type Tensor } from "../checkpoint/tensor";
import { fixtureBytes } from "../checkpoint/test-fixtures";
import { global, pk, PROTO2, REDUCE, STOP, TUPLE, MARK, ustr } from "../checkpoint/test-pickle-assembler";
import { viewsPickle, viewsPth } from "../checkpoint/test-pth";
import { buildZip } from "../checkpoint/test-zip-builder";
import { decodeTorchCheckpoint } from "../checkpoint/torch-load";
import { caseCount, claimSize, countCase, expectRefusal, flip, growthOf, MiB } from "./bad-input";

type Decoded = E.Either<CheckpointError, { readonly tensors: ReadonlyMap<string, Tensor> }>;

const ZIP = fixtureBytes("flat_zip.pth");
const LEGACY = fixtureBytes("flat_legacy.pth");
const f32 = (shape: number[]): Tensor => ({ dtype: "F32", shape, data: new Float32Array(numel(shape)).map((_, i) => i) });
const SAFE = (() => {
  const e = encodeSafetensors("s", {
    tensors: new Map<string, Tensor>([
      ["conv1.weight", f32([2, 3])],
      ["bn1.num_batches_tracked", { dtype: "I64", shape: [], data: BigInt64Array.of(7n) }],
      ["fc.bias", f32([4])],
    ]),
    metadata: { format: "pt" },
  });
  if (E.isLeft(e)) throw new Error(renderCheckpointError(e.left));
  return concatChunks(e.right);
})();
const HEADER_END = 8 + Number(new DataView(SAFE.buffer, SAFE.byteOffset).getBigUint64(0, true));

/** The parts of the zip fixture, so its data.pkl can be damaged and re-archived with valid CRCs. */
const ZIP_PICKLE = (() => {
  const r = decodeTorchCheckpoint("flat_zip.pth", ZIP);
  if (E.isLeft(r)) throw new Error(renderCheckpointError(r.left));
  return r.right;
})();
function rezip(pickle: Uint8Array): Uint8Array {
  // One float32 storage per tensor of the fixture is not needed: storages the pickle names but
  // the archive lacks are refused by name, which is one of the outcomes checked.
  return buildZip([{ name: "archive/data.pkl", data: pickle }, ...[...Array(12).keys()].map((i) => ({ name: `archive/data/${i}`, data: new Uint8Array(256) }))]);
}
const PICKLE_OF_ZIP = viewsPickle([
  { key: "conv1.weight", storageNumel: 24, size: [2, 3, 2, 2], stride: [12, 4, 2, 1] },
  { key: "fc.weight_t", storageNumel: 12, size: [4, 3], stride: [1, 4] },
  { key: "layer1.0.bn1.running_mean", storageNumel: 8, size: [8], stride: [1] },
]);

/** Decodes `bytes` as `file`, checking what every outcome must satisfy. */
function decodeChecked(file: string, bytes: Uint8Array, decode: (file: string, bytes: Uint8Array) => Decoded): Decoded {
  const { value, grew } = growthOf(() => decode(file, bytes));
  // Bounded by the input: materialised tensors are at most twice the file plus 64 MiB (torch-load.ts).
  expect(grew, `${file}: memory grew by ${grew} bytes`).toBeLessThan(2 * bytes.length + 64 * MiB);
  if (E.isLeft(value)) {
    expect(renderCheckpointError(value.left)).toContain(file);
  } else {
    for (const [k, t] of value.right.tensors) expect(t.data.length, k).toBe(numel(t.shape));
  }
  return value;
}
const torch = (file: string, bytes: Uint8Array) => decodeChecked(file, bytes, decodeTorchCheckpoint);
const safetensors = (file: string, bytes: Uint8Array) => decodeChecked(file, bytes, decodeSafetensors);

function refused(r: Decoded, names: readonly string[], what: string): void {
  expectRefusal(E.isLeft(r) ? renderCheckpointError(r.left) : undefined, names, what);
}

/** A copy of the safetensors fixture with a new JSON header (its data section kept). */
function withHeader(header: string): Uint8Array {
  const h = new TextEncoder().encode(header);
  const out = new Uint8Array(8 + h.length + SAFE.length - HEADER_END);
  new DataView(out.buffer).setBigUint64(0, BigInt(h.length), true);
  out.set(h, 8);
  out.set(SAFE.subarray(HEADER_END), 8 + h.length);
  return out;
}
const ENTRY = (dtype: string, shape: number[], offsets: number[]) => JSON.stringify({ dtype, shape, data_offsets: offsets });

describe("bad checkpoints, by hand", () => {
  it.each([
    ["zip truncated in the middle", "z1.pth", ZIP.subarray(0, ZIP.length >> 1), []],
    ["zip without its end-of-directory record", "z2.pth", ZIP.subarray(0, ZIP.length - 22), []],
    ["zip with a flipped byte in data.pkl (CRC)", "z3.pth", flip(ZIP, 80, 3), ["CRC"]],
    ["zip whose storage entry is missing", "z4.pth", buildZip([{ name: "archive/data.pkl", data: PICKLE_OF_ZIP }]), ["conv1.weight", "missing"]],
    ["zip with two data.pkl", "z5.pth", buildZip([{ name: "a/data.pkl", data: PICKLE_OF_ZIP }, { name: "b/data.pkl", data: PICKLE_OF_ZIP }]), ["data.pkl"]],
    ["stride-0 broadcast of 4 bytes to 4 GiB", "b1.pth", viewsPth([{ key: "w", storageNumel: 1, size: [1 << 30], stride: [0] }]), ["w", "stride 0"]],
    ["[2^20, 2^20] broadcast", "b2.pth", viewsPth([{ key: "w", storageNumel: 1, size: [1 << 20, 1 << 20], stride: [0, 0] }]), ["w"]],
    ["overlapping strides", "b3.pth", viewsPth([{ key: "w", storageNumel: 8, size: [8, 8], stride: [1, 1] }]), ["w"]],
    ["view past the end of its storage", "b4.pth", viewsPth([{ key: "w", storageNumel: 8, offset: 6, size: [4], stride: [1] }]), ["w", "reaches element 9"]],
    ["storage shorter than its persistent id says", "b5.pth", viewsPth([{ key: "w", storageNumel: 1 << 20, storageBytes: 64, size: [1 << 20], stride: [1] }]), ["w", "truncated"]],
    ["storage size near 2^53", "b6.pth", viewsPth([{ key: "w", storageNumel: 2 ** 31 - 1, storageBytes: 16, size: [2 ** 31 - 1], stride: [1] }]), ["w"]],
    ["deflated storage inflating past its claimed size", "d1.pth", claimSize(buildZip([{ name: "archive/data.pkl", data: PICKLE_OF_ZIP }, { name: "archive/data/0", data: new Uint8Array(64 * MiB), deflate: true }]), "archive/data/0", 100), ["archive/data/0"]],
    ["directory claiming more than deflate can produce", "d2.pth", claimSize(buildZip([{ name: "archive/data.pkl", data: PICKLE_OF_ZIP }, { name: "archive/data/0", data: new Uint8Array(96), deflate: true }]), "archive/data/0", 2 ** 31), ["more than deflate can produce"]],
    ["pickle calling os.system", "m1.pth", pk(PROTO2, global("os", "system"), MARK, ustr("echo pwned"), TUPLE, REDUCE, STOP), ["os.system", "nothing was executed"]],
    ["pickle calling builtins.eval through STACK_GLOBAL", "m2.pth", pk(PROTO2, ustr("builtins"), ustr("eval"), 0x93, MARK, ustr("1"), TUPLE, REDUCE, STOP), ["builtins.eval"]],
    ["legacy with a damaged magic number", "l1.pth", flip(LEGACY, 5, 0), ["magic"]],
    ["legacy with another protocol version", "l2.pth", flip(LEGACY, 18, 1), ["protocol"]],
    ["legacy cut inside its storages", "l3.pth", LEGACY.subarray(0, LEGACY.length - 40), ["truncated: storage"]],
    ["a text file", "t1.pth", new TextEncoder().encode("just some text"), ["is not a PyTorch checkpoint (not a zip archive nor a pickle"]],
    ["a PNG image", "t2.pth", Uint8Array.of(0x89, 0x50, 0x4e, 0x47, 13, 10, 26, 10), ["not a zip archive nor a pickle"]],
    ["an empty file", "t3.pth", new Uint8Array(0), ["the file is empty"]],
  ] as const)("%s is refused", (what, file, bytes, names) => {
    countCase();
    refused(torch(file, bytes), [file, ...names], what);
  });

  it.each([
    ["header length beyond the file", "s1.safetensors", (() => { const b = SAFE.slice(); new DataView(b.buffer).setBigUint64(0, 1n << 40n, true); return b; })(), ["header length"]],
    ["header length 2^64 - 1", "s2.safetensors", (() => { const b = SAFE.slice(); new DataView(b.buffer).setBigUint64(0, 2n ** 64n - 1n, true); return b; })(), ["header length"]],
    ["7 bytes", "s3.safetensors", SAFE.subarray(0, 7), ["too short"]],
    ["header that is not JSON", "s4.safetensors", withHeader("{not json"), ["not valid JSON"]],
    ["header that is a JSON array", "s5.safetensors", withHeader("[1,2]"), ["not a JSON object"]],
    ["unknown dtype", "s6.safetensors", withHeader(`{"w":${ENTRY("F128", [2], [0, 8])}}`), ["w", "unknown dtype"]],
    ["overlapping offsets", "s7.safetensors", withHeader(`{"a":${ENTRY("F32", [2], [0, 8])},"b":${ENTRY("F32", [2], [4, 12])}}`), ["overlap"]],
    ["shape that does not fit its offsets", "s8.safetensors", withHeader(`{"w":${ENTRY("F32", [3], [0, 8])}}`), ["w", "needs 12 bytes"]],
    ["a [2^40, 2^40] shape", "s9.safetensors", withHeader(`{"w":${ENTRY("F32", [2 ** 40, 2 ** 40], [0, 8])}}`), ["w"]],
    ["negative and fractional dims", "s10.safetensors", withHeader(`{"w":${ENTRY("F32", [-2, 1.5], [0, 8])}}`), ["w", "invalid shape"]],
    ["offsets past the data", "s11.safetensors", withHeader(`{"w":${ENTRY("F32", [1000], [0, 4000])}}`), ["w", "outside"]],
    ["100k-deep JSON", "s12.safetensors", withHeader("[".repeat(100_000) + "]".repeat(100_000)), []],
    ["metadata that is not strings", "s13.safetensors", withHeader(`{"__metadata__":{"a":1}}`), ["__metadata__"]],
  ] as const)("safetensors with %s is refused", (what, file, bytes, names) => {
    countCase();
    refused(safetensors(file, bytes), [file, ...names], what);
  });

  it("a __proto__ tensor name pollutes no prototype", () => {
    countCase();
    safetensors("p.safetensors", withHeader(`{"__proto__":${ENTRY("F32", [2], [0, 8])},"constructor":${ENTRY("F32", [2], [8, 16])}}`));
    expect(({} as Record<string, unknown>)["dtype"]).toBeUndefined();
  });

  it("the fixtures themselves decode (the damage above is what is refused)", () => {
    expect(E.isRight(torch("flat_zip.pth", ZIP)) && E.isRight(torch("flat_legacy.pth", LEGACY)) && E.isRight(safetensors("s.safetensors", SAFE))).toBe(true);
    expect(ZIP_PICKLE.tensors.size).toBeGreaterThan(3);
    expect(E.isRight(torch("r.pth", viewsPth([{ key: "w", storageNumel: 6, size: [3, 2], stride: [1, 3] }])))).toBe(true);
  });
});

describe("bad checkpoints, generated (fast-check)", () => {
  const RUNS = { numRuns: 60, seed: 18 };
  const prop = <T>(arb: fc.Arbitrary<T>, check: (t: T) => void, runs = RUNS) =>
    fc.assert(
      fc.property(arb, (t) => {
        countCase();
        check(t);
      }),
      runs,
    );
  const flips = (n: number, length: number) => fc.array(fc.tuple(fc.integer({ min: 0, max: length - 1 }), fc.integer({ min: 0, max: 7 })), { minLength: 1, maxLength: n });
  const applyFlips = (bytes: Uint8Array, fs: readonly (readonly [number, number])[]) => fs.reduce((b, [at, bit]) => flip(b, at, bit), bytes);

  it("safetensors cut anywhere is refused, naming the file", () => {
    prop(fc.integer({ min: 0, max: SAFE.length - 1 }), (cut) => refused(safetensors("cut.safetensors", SAFE.subarray(0, cut)), ["cut.safetensors"], `cut at ${cut}`));
  });

  it("safetensors with flipped header bytes decode or are refused, never throw", () => {
    prop(flips(4, HEADER_END), (fs) => void safetensors("flip.safetensors", applyFlips(SAFE, fs)), { ...RUNS, numRuns: 100 });
  });

  it("safetensors with any header length field decode or are refused", () => {
    prop(fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }), (n) => {
      const b = SAFE.slice();
      new DataView(b.buffer).setBigUint64(0, n, true);
      const r = safetensors("len.safetensors", b);
      if (n !== BigInt(HEADER_END - 8)) refused(r, ["len.safetensors"], `header length ${n}`);
    });
  });

  it("zip checkpoints whose data.pkl has flipped bytes (CRCs recomputed) decode or are refused", () => {
    prop(flips(3, PICKLE_OF_ZIP.length), (fs) => void torch("pkl.pth", rezip(applyFlips(PICKLE_OF_ZIP, fs))), { ...RUNS, numRuns: 100 });
  });

  it("zip checkpoints whose data.pkl is cut anywhere are refused", () => {
    prop(fc.integer({ min: 0, max: PICKLE_OF_ZIP.length - 2 }), (cut) => refused(torch("pcut.pth", rezip(PICKLE_OF_ZIP.subarray(0, cut))), ["pcut.pth"], `data.pkl cut at ${cut}`));
  });

  it("legacy checkpoints with flipped bytes decode or are refused", () => {
    prop(flips(3, LEGACY.length), (fs) => void torch("leg.pth", applyFlips(LEGACY, fs)), { ...RUNS, numRuns: 100 });
  });

  it("pickle length fields (BINUNICODE, BINPUT targets, storage sizes) set to any value decode or are refused", () => {
    // Every 4-byte field after a BINUNICODE (0x58) or LONG_BINPUT/BININT opcode in the fixture's pickles.
    const fields = [...LEGACY.keys()].filter((i) => (LEGACY[i] === 0x58 || LEGACY[i] === 0x4a || LEGACY[i] === 0x72) && i + 5 < LEGACY.length);
    prop(fc.tuple(fc.constantFrom(...fields), fc.integer({ min: 0, max: 2 ** 32 - 1 })), ([at, value]) => {
      const b = LEGACY.slice();
      new DataView(b.buffer).setUint32(at + 1, value, true);
      torch("field.pth", b);
    });
  });
});

afterAll(() => {
  console.log(`bad-input suite (checkpoints): ${caseCount()} cases`);
});
