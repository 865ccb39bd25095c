import * as E from "fp-ts/lib/Either.js";
import { describe, expect, it } from "vitest";
import { renderCheckpointError } from "./errors";
import { unpickle, type PyValue } from "./pickle";
import { fixtureBytes } from "./test-fixtures";
import { global, int32, MARK, NONE, pk, PROTO2, py2str, REDUCE, STOP, TUPLE, u32, ustr, type Piece } from "./test-pickle-assembler";
import { readZipDirectory, readZipEntry } from "./zip";

function load(bytes: Uint8Array, format: "zip" | "legacy" = "zip") {
  return unpickle("test.pth", bytes, 0, { format, what: "data.pkl" });
}

function value(...pieces: Piece[]): PyValue {
  const r = load(pk(...pieces));
  if (E.isLeft(r)) throw new Error(renderCheckpointError(r.left));
  return r.right.value;
}

/** Python-ish rendering for compact expectations. */
function show(v: PyValue): string {
  switch (v.type) {
    case "none":
      return "None";
    case "bool":
      return v.value ? "True" : "False";
    case "int":
      return v.value.toString();
    case "float":
      return String(v.value);
    case "str":
      return JSON.stringify(v.value);
    case "bytes":
      return `b[${[...v.value].join(",")}]`;
    case "tuple":
      return `(${v.items.map(show).join(", ")})`;
    case "list":
      return `[${v.items.map(show).join(", ")}]`;
    case "dict":
      return `{${v.entries.map(([k, x]) => `${show(k)}: ${show(x)}`).join(", ")}}`;
    case "global":
      return `${v.module}.${v.name}`;
    case "storage":
      return `storage(${v.storage.key})`;
    case "tensor":
      return `tensor(${v.tensor.storage.key})`;
  }
}

describe("restricted unpickler: refusing code", () => {
  it.each([
    ["os", "system"],
    ["posix", "system"],
    ["builtins", "eval"],
    ["subprocess", "Popen"],
    ["torch.storage", "_load_from_bytes"],
    ["collections", "defaultdict"],
  ])("refuses GLOBAL %s.%s before reading its arguments", (module, name) => {
    const r = load(pk(PROTO2, global(module, name), ustr("echo pwned"), 0x85, REDUCE, STOP));
    expect(E.isLeft(r) && r.left.kind).toBe("unsafe");
    expect(E.isLeft(r) && renderCheckpointError(r.left)).toContain(`global ${module}.${name} is not on the whitelist`);
  });

  it("refuses the same through STACK_GLOBAL (protocol 4 framing)", () => {
    const framed = pk(0x80, 4, 0x95, new Uint8Array(8), 0x8c, 8, "builtins", 0x94, 0x8c, 4, "eval", 0x94, 0x93, ustr("1+1"), 0x85, REDUCE, STOP);
    const r = load(framed);
    expect(E.isLeft(r) && r.left.detail).toContain("builtins.eval");
  });

  it("refuses the raw os.system fixture, naming os.system", () => {
    const r = load(fixtureBytes("malicious_os_system.pkl"), "legacy");
    expect(E.isLeft(r) && r.left.detail).toContain("os.system");
  });

  it("refuses to call a whitelisted storage class", () => {
    const r = load(pk(PROTO2, global("torch", "FloatStorage"), ")", REDUCE, STOP));
    expect(E.isLeft(r) && r.left.kind).toBe("unsupported");
  });

  it("refuses persistent ids other than storages (pickled module source)", () => {
    const pid = pk(PROTO2, MARK, ustr("module"), ustr("class Evil: ..."), TUPLE, "Q", STOP);
    const r = load(pid);
    expect(E.isLeft(r) && r.left.kind).toBe("unsafe");
  });

  it("refuses opcodes outside the torch.save subset, naming the byte", () => {
    // INST (0x69) builds an instance from a class name: not needed, not allowed.
    const r = load(pk(PROTO2, "i", "os\nsystem\n", STOP));
    expect(E.isLeft(r) && r.left.detail).toMatch(/opcode 0x69 at byte 2/);
  });
});

describe("restricted unpickler: data", () => {
  it("decodes the integer forms, including negative and arbitrary-size longs", () => {
    const long1 = (bytes: number[]): Piece[] => [0x8a, bytes.length, ...bytes];
    const magic = [0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19];
    const v = value(PROTO2, MARK, int32(-5), "K", 200, "M", 0xe9, 0x03, long1([0xff]), long1(magic), long1([]), TUPLE, STOP);
    expect(show(v)).toBe(`(-5, 200, 1001, -1, ${0x1950a86a20f9469cfc6cn}, 0)`);
  });

  it("decodes floats, None, booleans, strings of every width and bytes", () => {
    const f = new Uint8Array(8);
    new DataView(f.buffer).setFloat64(0, -0.15625, false);
    const v = value(PROTO2, MARK, "G", f, NONE, 0x88, 0x89, ustr("ü"), 0x8c, 1, "a", py2str("py2"), "T", u32(2), "ok", 0x43, 2, 1, 2, TUPLE, STOP);
    expect(show(v)).toBe('(-0.15625, None, True, False, "ü", "a", "py2", "ok", b[1,2])');
  });

  it("shares memoised objects: BINGET returns the very object BINPUT stored", () => {
    // l = [1]; (l, l)
    const v = value(PROTO2, "]", "q", 0, "K", 1, "a", "h", 0, 0x86, STOP);
    expect(show(v)).toBe("([1], [1])");
    expect(v.type === "tuple" && v.items[0] === v.items[1]).toBe(true);
  });

  it("builds Python 3 OrderedDicts (empty REDUCE then SETITEMS) and keeps insertion order", () => {
    const v = value(PROTO2, global("collections", "OrderedDict"), ")", REDUCE, MARK, ustr("b"), "K", 1, ustr("a"), "K", 2, "u", STOP);
    expect(show(v)).toBe('{"b": 1, "a": 2}');
  });

  it("builds Python 2.7 OrderedDicts, pickled as OrderedDict([[k, v], ...])", () => {
    const pair = (k: string, x: number): Piece[] => ["]", MARK, py2str(k), "K", x, "e"];
    const v = value(PROTO2, global("collections", "OrderedDict"), "]", MARK, pair("w", 1), pair("b", 2), "e", 0x85, REDUCE, STOP);
    expect(show(v)).toBe('{"w": 1, "b": 2}');
  });

  it("replaces a repeated key in place, as Python dicts do", () => {
    const v = value(PROTO2, "}", MARK, ustr("k"), "K", 1, ustr("j"), "K", 2, ustr("k"), "K", 3, "u", STOP);
    expect(show(v)).toBe('{"k": 3, "j": 2}');
  });

  it("keeps BUILD state on a dict as inert attributes", () => {
    const v = value(PROTO2, "}", "}", MARK, ustr("_metadata"), NONE, "u", "b", STOP);
    expect(v.type === "dict" && v.attributes !== undefined).toBe(true);
  });

  it("reports where the stream ends for the legacy format's next pickle", () => {
    const r = load(pk(PROTO2, "K", 7, STOP, PROTO2, "K", 8, STOP));
    expect(E.isRight(r) && r.right.end).toBe(5);
  });
});

describe("restricted unpickler: malformed streams", () => {
  it("reports a stack underflow instead of crashing", () => {
    const r = load(pk(PROTO2, 0x85, STOP));
    expect(E.isLeft(r) && r.left.detail).toMatch(/stack underflow/);
  });

  it("reports a read of an unwritten memo slot", () => {
    const r = load(pk(PROTO2, "h", 3, STOP));
    expect(E.isLeft(r) && r.left.detail).toMatch(/memo entry 3/);
  });

  it("returns an error, never throws, for every truncation of a real data.pkl", () => {
    const zip = fixtureBytes("flat_zip.pth");
    const dir = readZipDirectory("flat_zip.pth", zip);
    if (E.isLeft(dir)) throw new Error("fixture must read");
    const pkl = readZipEntry("flat_zip.pth", zip, dir.right.get("flat_zip/data.pkl")!);
    if (E.isLeft(pkl)) throw new Error("fixture must read");
    const bytes = pkl.right.slice();
    for (let cut = 0; cut < bytes.length; cut++) {
      const r = unpickle("flat_zip.pth", bytes.subarray(0, cut), 0, { format: "zip", what: "data.pkl" });
      expect(E.isLeft(r) && r.left.kind, `cut at ${cut}`).toBe("corrupt");
    }
    expect(E.isRight(load(bytes))).toBe(true);
  });
});
