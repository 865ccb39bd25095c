import * as E from "fp-ts/lib/Either.js";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { renderCheckpointError, type CheckpointError } from "./errors";
import { numel } from "./tensor";
import { fixtureBytes, manifest, torchDType, values } from "./test-fixtures";
import { global, MARK, pk, PROTO2, py2str, REDUCE, STOP, TUPLE, u64, ustr } from "./test-pickle-assembler";
import { viewsPth } from "./test-pth";
import { decodeTorchCheckpoint, gatherStrided, isRowMajor, loadTorchCheckpoint, type TorchCheckpoint } from "./torch-load";

function decode(name: string, bytes = fixtureBytes(name)): TorchCheckpoint {
  const r = decodeTorchCheckpoint(name, bytes);
  if (E.isLeft(r)) throw new Error(renderCheckpointError(r.left));
  return r.right;
}

function refuse(name: string, bytes: Uint8Array): CheckpointError {
  const r = decodeTorchCheckpoint(name, bytes);
  if (E.isRight(r)) throw new Error(`${name} should have been refused`);
  return r.left;
}

function expectMatchesManifest(ckpt: TorchCheckpoint, expected: typeof manifest.flat): void {
  expect([...ckpt.tensors.keys()]).toEqual(Object.keys(expected));
  for (const [key, want] of Object.entries(expected)) {
    const t = ckpt.tensors.get(key)!;
    expect({ key, dtype: t.dtype, shape: t.shape }).toEqual({ key, dtype: torchDType(want.dtype), shape: want.shape });
    expect(values(t), key).toEqual(want.values);
  }
}

describe("torch.save checkpoints", () => {
  it.each([
    ["flat_zip.pth", "zip"],
    ["flat_legacy.pth", "legacy"],
    ["flat_zip_deflated.pth", "zip"],
  ] as const)("%s (%s format) gives PyTorch's keys, dtypes, shapes and values", (file, format) => {
    const ckpt = decode(file);
    expect(ckpt.format).toBe(format);
    expect(ckpt.container).toEqual([]);
    expectMatchesManifest(ckpt, manifest.flat);
  });

  it("gathers non-contiguous views: a transpose and a strided slice with an offset", () => {
    for (const file of ["flat_zip.pth", "flat_legacy.pth"]) {
      const ckpt = decode(file);
      // base = arange(12).reshape(3,4) * 0.25, saved as base.t()
      expect(values(ckpt.tensors.get("fc.weight_t")!)).toEqual([0, 1, 2, 0.25, 1.25, 2.25, 0.5, 1.5, 2.5, 0.75, 1.75, 2.75]);
      // grid = arange(20).reshape(4,5) - 10, saved as grid[:, 1::2] and grid[2] (one shared storage)
      expect(values(ckpt.tensors.get("fc.cols")!)).toEqual([-9, -7, -4, -2, 1, 3, 6, 8]);
      expect(values(ckpt.tensors.get("fc.row")!)).toEqual([0, 1, 2, 3, 4]);
    }
  });

  it("finds a state dict nested under 'state_dict' and lists the other entries", () => {
    const ckpt = decode("nested_state_dict.pth");
    expect(ckpt.container).toEqual(["state_dict"]);
    expect(ckpt.otherEntries).toEqual(["iteration", "arch"]);
    expectMatchesManifest(ckpt, manifest.nested);
  });

  it("reads the init-style legacy file", () => {
    expectMatchesManifest(decode(manifest.init.file), manifest.init.tensors);
  });

  it("reads a PyTorch 0.3-style legacy file: Python 2 strings, OrderedDict([[k, v]]), torch.cuda storage, storage view, _rebuild_tensor", () => {
    const magic = [0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19];
    const pid = [MARK, py2str("storage"), global("torch.cuda", "FloatStorage"), py2str("140"), py2str("cuda:0"), "K", 8, MARK, py2str("141"), "K", 2, "K", 5, TUPLE, TUPLE, "Q"];
    const tensor = [global("torch._utils", "_rebuild_tensor"), MARK, ...pid, "K", 1, "K", 2, "K", 2, 0x86, "K", 1, "K", 2, 0x86, TUPLE, REDUCE];
    const main = pk(PROTO2, global("collections", "OrderedDict"), "]", MARK, "]", MARK, py2str("w"), tensor, "e", "e", 0x85, REDUCE, STOP);
    const storage = new Float32Array([0, 1, 2, 3, 4, 5, 6, 7]);
    const file = pk(
      pk(PROTO2, 0x8a, 10, magic, STOP),
      pk(PROTO2, "M", 0xe9, 0x03, STOP),
      pk(PROTO2, "}", MARK, ustr("little_endian"), 0x88, "u", STOP),
      main,
      pk(PROTO2, "]", MARK, py2str("140"), "e", STOP),
      u64(8),
      new Uint8Array(storage.buffer),
    );
    const ckpt = decode("old.pth", file);
    // view = storage[2:7]; tensor offset 1 in the view, size (2,2), stride (1,2): elements 3,5 / 4,6
    expect(ckpt.tensors.get("w")).toMatchObject({ dtype: "F32", shape: [2, 2] });
    expect(values(ckpt.tensors.get("w")!)).toEqual([3, 5, 4, 6]);
  });

  it("loads from disk through TaskEither", async () => {
    const r = await loadTorchCheckpoint(new URL("./fixtures/flat_zip.pth", import.meta.url).pathname)();
    expect(E.isRight(r) && r.right.tensors.size).toBe(Object.keys(manifest.flat).length);
  });
});

describe("refusing bad checkpoints", () => {
  it.each([
    ["malicious_os_system.pkl", "os.system"],
    ["malicious_posix_system.pth", "posix.system"],
  ])("refuses %s, naming %s", (file, global) => {
    const e = refuse(file, fixtureBytes(file));
    expect(e.kind).toBe("unsafe");
    expect(renderCheckpointError(e)).toContain(file);
    expect(renderCheckpointError(e)).toContain(global);
  });

  it("names the file for every truncation of a legacy checkpoint, and the tensor once storages are cut", () => {
    const bytes = fixtureBytes("flat_legacy.pth");
    const keys = Object.keys(manifest.flat);
    let cutInStorages = 0;
    for (let cut = 0; cut < bytes.length; cut++) {
      const e = refuse("flat_legacy.pth", bytes.subarray(0, cut));
      expect(e.file).toBe("flat_legacy.pth");
      expect(e.kind, `cut at ${cut}`).toBe("corrupt");
      if (e.tensor !== undefined) {
        expect(keys).toContain(e.tensor);
        expect(e.detail).toMatch(/truncated: storage/);
        cutInStorages++;
      }
    }
    // Storage bytes are most of the file; every cut among them named a tensor.
    expect(cutInStorages).toBeGreaterThan(300);
    const last = refuse("flat_legacy.pth", bytes.subarray(0, bytes.length - 1));
    expect(renderCheckpointError(last)).toMatch(/^corrupt checkpoint in flat_legacy\.pth: [\w.]+: truncated: storage/);
  });

  it("names the file for every truncation of a zip checkpoint", () => {
    const bytes = fixtureBytes("flat_zip.pth");
    for (let cut = 0; cut < bytes.length; cut += 7) {
      const e = refuse("flat_zip.pth", bytes.subarray(0, cut));
      expect(renderCheckpointError(e)).toContain("flat_zip.pth");
    }
  });

  it("refuses a file that is neither format", () => {
    const e = refuse("notes.txt", new TextEncoder().encode("just some text, not a checkpoint"));
    expect(renderCheckpointError(e)).toContain("notes.txt");
  });

  it("refuses a pickle that is not a dict of tensors, listing what it holds", () => {
    const zipLike = pk(PROTO2, "}", MARK, ustr("epoch"), "K", 3, "u", STOP);
    const magic = [0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19];
    const file = pk(pk(PROTO2, 0x8a, 10, magic, STOP), pk(PROTO2, "M", 0xe9, 0x03, STOP), pk(PROTO2, "}", STOP), zipLike);
    expect(refuse("e.pth", file).detail).toMatch(/top-level entries: epoch \(int\)/);
  });
});

describe("strided gather", () => {
  it("recognises row-major strides, ignoring size-1 dims", () => {
    expect(isRowMajor([2, 3], [3, 1])).toBe(true);
    expect(isRowMajor([2, 1, 3], [3, 99, 1])).toBe(true);
    expect(isRowMajor([3, 2], [1, 3])).toBe(false);
    expect(isRowMajor([], [])).toBe(true);
  });

  it("equals direct indexing for every permuted view of a row-major tensor", () => {
    const dims = fc.array(fc.integer({ min: 1, max: 4 }), { minLength: 0, maxLength: 4 });
    fc.assert(
      fc.property(dims, fc.integer({ min: 0, max: 5 }), fc.func(fc.integer()), (shape, offset, order) => {
        const perm = shape.map((_, i) => i).sort((a, b) => order(a) - order(b) || a - b);
        const base = shape.reduceRight<number[]>((acc, d, i) => ((acc[i] = (acc[i + 1] ?? 1) * (shape[i + 1] ?? 1)), acc), []);
        const size = perm.map((p) => shape[p]!);
        const stride = perm.map((p) => base[p]!);
        const src = new Float32Array(offset + numel(shape)).map((_, i) => i);
        const out = new Float32Array(gatherStrided(new Uint8Array(src.buffer), 4, offset, size, stride).buffer);
        const expected: number[] = [];
        const walk = (d: number, at: number): void => {
          if (d === size.length) expected.push(src[at]!);
          else for (let i = 0; i < size[d]!; i++) walk(d + 1, at + i * stride[d]!);
        };
        walk(0, offset);
        expect(Array.from(out)).toEqual(expected);
      }),
      { numRuns: 200 },
    );
  });

  it("moves 8-byte elements as raw bits (int64 beyond 2^53, NaN payloads)", () => {
    const src = new BigInt64Array([1n, -(2n ** 62n) - 3n, 5n, 2n ** 60n + 1n]);
    const out = new BigInt64Array(gatherStrided(new Uint8Array(src.buffer), 8, 0, [2, 2], [1, 2]).buffer);
    expect(Array.from(out)).toEqual([1n, 5n, -(2n ** 62n) - 3n, 2n ** 60n + 1n]);
  });
});

describe("views that would be materialised larger than their storage", () => {
  it("materialises a transpose from a zip file built by the test builder (the builder is sound)", () => {
    const ckpt = decode("t.pth", viewsPth([{ key: "w", storageNumel: 6, size: [3, 2], stride: [1, 3] }]));
    expect(values(ckpt.tensors.get("w")!)).toEqual([0, 3, 1, 4, 2, 5]);
  });

  it("refuses a stride-0 broadcast of one float to 4 Mi elements, naming the tensor, before allocating it", () => {
    const before = process.memoryUsage().arrayBuffers;
    const e = refuse("b.pth", viewsPth([{ key: "layer1.bias", storageNumel: 1, size: [1 << 22], stride: [0] }]));
    expect(e.tensor).toBe("layer1.bias");
    expect(renderCheckpointError(e)).toMatch(/b\.pth: layer1\.bias: .*4194304 elements.*storage 0 holds 1/);
    expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(8 << 20);
  });

  it("refuses a [2^20, 2^20] broadcast as a value, not an uncaught RangeError", () => {
    const r = decodeTorchCheckpoint("huge.pth", viewsPth([{ key: "w", storageNumel: 1, size: [1 << 20, 1 << 20], stride: [0, 0] }]));
    expect(E.isLeft(r) && renderCheckpointError(r.left)).toMatch(/huge\.pth: w: /);
  });

  it("refuses an overlapping view with more elements than its storage (stride 1 over two dims)", () => {
    const e = refuse("o.pth", viewsPth([{ key: "w", storageNumel: 4, size: [3, 4], stride: [0, 1] }]));
    expect(e.tensor).toBe("w");
  });

  it("still gathers a view that reads each storage element at most once (a strided slice)", () => {
    const ckpt = decode("s.pth", viewsPth([{ key: "w", storageNumel: 10, offset: 1, size: [5], stride: [2] }]));
    expect(values(ckpt.tensors.get("w")!)).toEqual([1, 3, 5, 7, 9]);
  });
});

describe("input that is not a PyTorch checkpoint", () => {
  it.each([
    ["notes.txt", "just some text, not a checkpoint"],
    ["image.png", "\x89PNG\r\n\x1a\n...."],
    ["empty.pth", ""],
  ])("refuses %s up front as neither a zip archive nor a pickle, naming the file", (name, text) => {
    const e = refuse(name, new TextEncoder().encode(text));
    expect(renderCheckpointError(e)).toContain(`${name} is not a PyTorch checkpoint (not a zip archive nor a pickle`);
    expect(e.detail).not.toMatch(/memo|opcode/);
  });
});
