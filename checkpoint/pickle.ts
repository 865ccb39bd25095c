// A restricted unpickler for what `torch.save` writes for (nested) dicts of tensors.
//
// Python's pickle is a small stack machine whose GLOBAL + REDUCE opcodes call arbitrary
// functions by name, which is how a malicious .pth runs `os.system`. This interpreter never
// calls anything: it implements the data opcodes, and GLOBAL resolves only names on a short
// whitelist into inert descriptors (`AllowedGlobal`) whose "call" is interpreted here as data
// construction (an empty OrderedDict, a tensor view description). Any other global is refused
// at the GLOBAL opcode, before its arguments are even read, with an error naming module.name.
//
// Tensors come out as descriptions (storage reference, offset, size, stride); their bytes live
// outside the pickle (zip entries or the legacy trailer) and are gathered by torch-load.ts.
//
// Opcode reference: the pickle protocol as documented in CPython's Lib/pickletools.py.

import * as E from "fp-ts/lib/Either.js";
import { checkpointError, type CheckpointError } from "./errors";
import type { DType } from "./tensor";

// ---------------------------------------------------------------------------------------------
// Values

/** A storage as named by a persistent id; `elementOffset`/`numel` select a legacy view. */
export interface StorageRef {
  readonly key: string;
  readonly dtype: DType;
  readonly location: string;
  /** Elements in the whole storage as serialised. */
  readonly storageNumel: number;
  /** For legacy storage views (pre-0.4 files): where the view starts in the root storage. */
  readonly elementOffset: number;
}

export interface TensorRef {
  readonly storage: StorageRef;
  /** In elements, relative to the storage (view offset already added). */
  readonly offset: number;
  readonly size: readonly number[];
  readonly stride: readonly number[];
  readonly requiresGrad: boolean;
}

export type AllowedGlobal =
  | { readonly kind: "ordered-dict" }
  | { readonly kind: "rebuild-tensor" }
  | { readonly kind: "rebuild-tensor-v2" }
  | { readonly kind: "rebuild-parameter" }
  | { readonly kind: "storage-type"; readonly name: string; readonly dtype: DType };

export interface PyDict {
  readonly type: "dict";
  readonly entries: [PyValue, PyValue][];
  /** Hashable-key → position in `entries`, so a repeated key replaces as in Python. */
  readonly index: Map<string, number>;
  /** Instance attributes set by BUILD (a state_dict's `_metadata`); kept, never interpreted. */
  attributes: PyValue | undefined;
}

export type PyValue =
  | { readonly type: "none" }
  | { readonly type: "bool"; readonly value: boolean }
  | { readonly type: "int"; readonly value: bigint }
  | { readonly type: "float"; readonly value: number }
  | { readonly type: "str"; readonly value: string }
  | { readonly type: "bytes"; readonly value: Uint8Array }
  | { readonly type: "tuple"; readonly items: readonly PyValue[] }
  | { readonly type: "list"; readonly items: PyValue[] }
  | PyDict
  | { readonly type: "global"; readonly module: string; readonly name: string; readonly ref: AllowedGlobal }
  | { readonly type: "storage"; readonly storage: StorageRef }
  | { readonly type: "tensor"; readonly tensor: TensorRef };

const NONE: PyValue = { type: "none" };

export function emptyDict(): PyDict {
  return { type: "dict", entries: [], index: new Map(), attributes: undefined };
}

// ---------------------------------------------------------------------------------------------
// The whitelist

const STORAGE_DTYPES: Readonly<Record<string, DType>> = {
  FloatStorage: "F32",
  DoubleStorage: "F64",
  HalfStorage: "F16",
  BFloat16Storage: "BF16",
  LongStorage: "I64",
  IntStorage: "I32",
  ShortStorage: "I16",
  CharStorage: "I8",
  ByteStorage: "U8",
  BoolStorage: "BOOL",
};

/**
 * The only names a checkpoint may mention. Storage classes are dtype tags here; `torch.cuda.*`
 * variants appear in files saved from GPU by old PyTorch and mean the same dtype (the tensor is
 * loaded to the host either way).
 */
export function resolveGlobal(module: string, name: string): AllowedGlobal | undefined {
  if (module === "collections" && name === "OrderedDict") return { kind: "ordered-dict" };
  if (module === "torch._utils") {
    if (name === "_rebuild_tensor_v2") return { kind: "rebuild-tensor-v2" };
    if (name === "_rebuild_tensor") return { kind: "rebuild-tensor" };
    if (name === "_rebuild_parameter") return { kind: "rebuild-parameter" };
  }
  if ((module === "torch" || module === "torch.cuda") && Object.hasOwn(STORAGE_DTYPES, name)) {
    return { kind: "storage-type", name: `${module}.${name}`, dtype: STORAGE_DTYPES[name]! };
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// The machine

/** Internal: unwinds the interpreter; converted to a CheckpointError at `unpickle`'s boundary. */
class PickleFailure extends Error {
  constructor(
    readonly kind: "corrupt" | "unsafe" | "unsupported",
    readonly detail: string,
  ) {
    super(detail);
  }
}

function fail(kind: PickleFailure["kind"], detail: string): never {
  throw new PickleFailure(kind, detail);
}

export interface UnpickleResult {
  readonly value: PyValue;
  /** Byte position just after STOP: the legacy format has more data (and pickles) after it. */
  readonly end: number;
  /** Every storage a persistent id referred to, by key. */
  readonly storages: ReadonlyMap<string, StorageRef>;
}

export interface UnpickleOptions {
  /** Legacy files carry 6-element persistent ids (with view metadata), zip files 5. */
  readonly format: "zip" | "legacy";
  /** What the pickle is, for messages: "data.pkl", "main pickle". */
  readonly what: string;
}

const utf8 = new TextDecoder("utf-8", { fatal: true });

export function unpickle(
  file: string,
  bytes: Uint8Array,
  start: number,
  options: UnpickleOptions,
): E.Either<CheckpointError, UnpickleResult> {
  try {
    return E.right(run(bytes, start, options));
  } catch (e) {
    if (e instanceof PickleFailure) return E.left(checkpointError(e.kind, file, `${options.what}: ${e.detail}`));
    throw e;
  }
}

function run(bytes: Uint8Array, start: number, options: UnpickleOptions): UnpickleResult {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let pos = start;
  let opcodeAt = start;
  const stack: PyValue[] = [];
  const marks: number[] = [];
  const memo = new Map<number, PyValue>();
  const storages = new Map<string, StorageRef>();

  const take = (n: number): number => {
    if (n < 0 || pos + n > bytes.byteLength) {
      fail("corrupt", `truncated: opcode at byte ${opcodeAt} needs ${n} more bytes, the file ends after ${bytes.byteLength - pos}`);
    }
    const at = pos;
    pos += n;
    return at;
  };
  const u8 = () => bytes[take(1)]!;
  const u16 = () => dv.getUint16(take(2), true);
  const i32 = () => dv.getInt32(take(4), true);
  const u32 = () => dv.getUint32(take(4), true);
  const u64 = () => toSafeLength(dv.getBigUint64(take(8), true));
  const raw = (n: number) => bytes.subarray(take(n), pos);
  const text = (n: number) => decodeUtf8(raw(n));
  const line = (): string => {
    const nl = bytes.indexOf(0x0a, pos);
    if (nl < 0) fail("corrupt", `truncated: GLOBAL at byte ${opcodeAt} has no end of line`);
    return decodeUtf8(raw(nl - pos + 1).subarray(0, -1));
  };
  const pop = (): PyValue => {
    if (stack.length <= (marks.at(-1) ?? 0)) fail("corrupt", `stack underflow at byte ${opcodeAt}`);
    return stack.pop()!;
  };
  const top = (): PyValue => {
    if (stack.length <= (marks.at(-1) ?? 0)) fail("corrupt", `stack underflow at byte ${opcodeAt}`);
    return stack.at(-1)!;
  };
  const popMark = (): PyValue[] => {
    const mark = marks.pop();
    if (mark === undefined) fail("corrupt", `no MARK before the opcode at byte ${opcodeAt}`);
    return stack.splice(mark);
  };
  const memoGet = (i: number): PyValue => {
    const v = memo.get(i);
    if (v === undefined) fail("corrupt", `memo entry ${i} read before it was written (byte ${opcodeAt})`);
    return v;
  };
  const pushGlobal = (module: string, name: string) => {
    const ref = resolveGlobal(module, name);
    if (ref === undefined) {
      fail("unsafe", `global ${module}.${name} is not on the whitelist (OrderedDict, torch tensor rebuild functions, storage types); nothing was executed`);
    }
    stack.push({ type: "global", module, name, ref });
  };

  for (;;) {
    opcodeAt = pos;
    const op = u8();
    switch (op) {
      case 0x80: // PROTO
        if (u8() > 5) fail("unsupported", `pickle protocol above 5 at byte ${opcodeAt}`);
        break;
      case 0x95: // FRAME: a length hint for buffered readers; everything is in memory here
        u64();
        break;
      case 0x2e: // STOP
        return { value: pop(), end: pos, storages };
      case 0x28: // MARK
        marks.push(stack.length);
        break;
      case 0x7d: // EMPTY_DICT
        stack.push(emptyDict());
        break;
      case 0x5d: // EMPTY_LIST
        stack.push({ type: "list", items: [] });
        break;
      case 0x29: // EMPTY_TUPLE
        stack.push({ type: "tuple", items: [] });
        break;
      case 0x64: {
        // DICT (protocol 0/1 form, accepted for old writers): MARK k v k v ...
        const d = emptyDict();
        setItems(d, popMark());
        stack.push(d);
        break;
      }
      case 0x6c: // LIST (protocol 0/1 form)
        stack.push({ type: "list", items: popMark() });
        break;
      case 0x71: // BINPUT
        memo.set(u8(), top());
        break;
      case 0x72: // LONG_BINPUT
        memo.set(u32(), top());
        break;
      case 0x94: // MEMOIZE
        memo.set(memo.size, top());
        break;
      case 0x68: // BINGET
        stack.push(memoGet(u8()));
        break;
      case 0x6a: // LONG_BINGET
        stack.push(memoGet(u32()));
        break;
      case 0x4a: // BININT: signed 32-bit
        stack.push(int(BigInt(i32())));
        break;
      case 0x4b: // BININT1: unsigned 8-bit
        stack.push(int(BigInt(u8())));
        break;
      case 0x4d: // BININT2: unsigned 16-bit
        stack.push(int(BigInt(u16())));
        break;
      case 0x8a: // LONG1: n-byte two's complement, little-endian
        stack.push(int(decodeLong(raw(u8()))));
        break;
      case 0x58: // BINUNICODE
        stack.push(str(text(u32())));
        break;
      case 0x8c: // SHORT_BINUNICODE
        stack.push(str(text(u8())));
        break;
      case 0x8d: // BINUNICODE8
        stack.push(str(text(u64())));
        break;
      case 0x54: {
        // BINSTRING: a Python 2 str. torch.load decodes these as UTF-8, and so do we.
        const n = i32();
        if (n < 0) fail("corrupt", `negative BINSTRING length at byte ${opcodeAt}`);
        stack.push(str(text(n)));
        break;
      }
      case 0x55: // SHORT_BINSTRING
        stack.push(str(text(u8())));
        break;
      case 0x43: // SHORT_BINBYTES
        stack.push({ type: "bytes", value: raw(u8()) });
        break;
      case 0x42: // BINBYTES
        stack.push({ type: "bytes", value: raw(u32()) });
        break;
      case 0x74: // TUPLE
        stack.push({ type: "tuple", items: popMark() });
        break;
      case 0x85: // TUPLE1
        stack.push({ type: "tuple", items: [pop()] });
        break;
      case 0x86: {
        // TUPLE2
        const b = pop();
        stack.push({ type: "tuple", items: [pop(), b] });
        break;
      }
      case 0x87: {
        // TUPLE3
        const c = pop();
        const b = pop();
        stack.push({ type: "tuple", items: [pop(), b, c] });
        break;
      }
      case 0x73: {
        // SETITEM
        const v = pop();
        const k = pop();
        setItems(asDict(top(), "SETITEM"), [k, v]);
        break;
      }
      case 0x75: {
        // SETITEMS
        const items = popMark();
        setItems(asDict(top(), "SETITEMS"), items);
        break;
      }
      case 0x61: {
        // APPEND
        const v = pop();
        asList(top(), "APPEND").items.push(v);
        break;
      }
      case 0x65: {
        // APPENDS
        const items = popMark();
        asList(top(), "APPENDS").items.push(...items);
        break;
      }
      case 0x4e: // NONE
        stack.push(NONE);
        break;
      case 0x88: // NEWTRUE
        stack.push({ type: "bool", value: true });
        break;
      case 0x89: // NEWFALSE
        stack.push({ type: "bool", value: false });
        break;
      case 0x47: // BINFLOAT: big-endian IEEE double
        stack.push({ type: "float", value: dv.getFloat64(take(8), false) });
        break;
      case 0x63: {
        // GLOBAL: "module\nname\n"
        const module = line();
        pushGlobal(module, line());
        break;
      }
      case 0x93: {
        // STACK_GLOBAL
        const name = pop();
        const module = pop();
        if (module.type !== "str" || name.type !== "str") fail("corrupt", `STACK_GLOBAL operands are not strings at byte ${opcodeAt}`);
        pushGlobal(module.value, name.value);
        break;
      }
      case 0x52: {
        // REDUCE: callable(*args)
        const args = pop();
        const callable = pop();
        stack.push(reduce(callable, asTuple(args, "REDUCE arguments")));
        break;
      }
      case 0x81: {
        // NEWOBJ: cls.__new__(cls, *args)
        const args = pop();
        const cls = pop();
        asTuple(args, "NEWOBJ arguments");
        if (cls.type === "global" && cls.ref.kind === "ordered-dict") stack.push(emptyDict());
        else fail("unsupported", `NEWOBJ of ${describe(cls)}`);
        break;
      }
      case 0x62: {
        // BUILD: set instance state. Only dicts (a state_dict's _metadata) get state here.
        const state = pop();
        const target = top();
        if (target.type !== "dict") fail("unsupported", `BUILD on ${describe(target)}`);
        target.attributes = state;
        break;
      }
      case 0x51: {
        // BINPERSID: torch's reference to out-of-band storage bytes
        const storage = persistentLoad(pop(), options.format);
        const seen = storages.get(storage.key);
        if (seen !== undefined && (seen.dtype !== storage.dtype || seen.storageNumel !== storage.storageNumel)) {
          fail("corrupt", `storage ${storage.key} is declared twice with different dtype or size`);
        }
        storages.set(storage.key, storage);
        stack.push({ type: "storage", storage });
        break;
      }
      default:
        fail("unsupported", `pickle opcode 0x${op.toString(16).padStart(2, "0")} at byte ${opcodeAt} (not used by torch.save of tensor dicts)`);
    }
  }
}

function int(value: bigint): PyValue {
  return { type: "int", value };
}

function str(value: string): PyValue {
  return { type: "str", value };
}

function decodeUtf8(b: Uint8Array): string {
  try {
    return utf8.decode(b);
  } catch {
    return fail("corrupt", "string is not valid UTF-8");
  }
}

function decodeLong(b: Uint8Array): bigint {
  let v = 0n;
  for (let i = b.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]!);
  // The top bit of the last byte is the sign.
  if (b.length > 0 && (b[b.length - 1]! & 0x80) !== 0) v -= 1n << BigInt(8 * b.length);
  return v;
}

function toSafeLength(v: bigint): number {
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) fail("corrupt", `length ${v} is too large`);
  return Number(v);
}

function describe(v: PyValue): string {
  return v.type === "global" ? `${v.module}.${v.name}` : `a ${v.type}`;
}

function asDict(v: PyValue, op: string): PyDict {
  if (v.type !== "dict") fail("corrupt", `${op} on ${describe(v)}, expected a dict`);
  return v;
}

function asList(v: PyValue, op: string): { type: "list"; items: PyValue[] } {
  if (v.type !== "list") fail("corrupt", `${op} on ${describe(v)}, expected a list`);
  return v;
}

function asTuple(v: PyValue, what: string): readonly PyValue[] {
  if (v.type !== "tuple") fail("corrupt", `${what} are ${describe(v)}, expected a tuple`);
  return v.items;
}

function asIndex(v: PyValue | undefined, what: string): number {
  if (v?.type !== "int" || v.value < 0n || v.value > BigInt(Number.MAX_SAFE_INTEGER)) {
    fail("corrupt", `${what} is ${v === undefined ? "missing" : describe(v)}, expected a non-negative integer`);
  }
  return Number(v.value);
}

function asIndexTuple(v: PyValue | undefined, what: string): number[] {
  if (v?.type !== "tuple") fail("corrupt", `${what} is ${v === undefined ? "missing" : describe(v)}, expected a tuple`);
  return v.items.map((x, i) => asIndex(x, `${what}[${i}]`));
}

function asString(v: PyValue | undefined, what: string): string {
  if (v?.type === "str") return v.value;
  // Python 2 pickles read without an encoding may give bytes for str; accept ASCII bytes.
  if (v?.type === "bytes") return decodeUtf8(v.value);
  return fail("corrupt", `${what} is ${v === undefined ? "missing" : describe(v)}, expected a string`);
}

/** Python's hash equality for the key types a checkpoint can use. */
export function hashKey(k: PyValue): string {
  switch (k.type) {
    case "str":
      return `s${k.value}`;
    case "int":
      return `i${k.value}`;
    case "bool":
      return `i${k.value ? 1 : 0}`; // True == 1 in Python
    case "float":
      return Number.isInteger(k.value) ? `i${k.value}` : `f${k.value}`;
    case "none":
      return "n";
    case "bytes":
      return `b${Array.from(k.value).join(",")}`;
    case "tuple":
      return `t(${k.items.map(hashKey).join("|")})`;
    case "list":
    case "dict":
    case "global":
    case "storage":
    case "tensor":
      return fail("corrupt", `unhashable dict key: ${describe(k)}`);
    default: {
      const never: never = k;
      return never;
    }
  }
}

function setItems(d: PyDict, flat: readonly PyValue[]): void {
  if (flat.length % 2 !== 0) fail("corrupt", "SETITEMS with an odd number of items");
  for (let i = 0; i < flat.length; i += 2) setItem(d, flat[i]!, flat[i + 1]!);
}

function setItem(d: PyDict, k: PyValue, v: PyValue): void {
  const h = hashKey(k);
  const at = d.index.get(h);
  if (at === undefined) {
    d.index.set(h, d.entries.length);
    d.entries.push([k, v]);
  } else {
    d.entries[at] = [d.entries[at]![0], v];
  }
}

/** The whitelisted "calls", interpreted as data construction. */
function reduce(callable: PyValue, args: readonly PyValue[]): PyValue {
  if (callable.type !== "global") fail("corrupt", `REDUCE on ${describe(callable)}, which is not callable`);
  const ref = callable.ref;
  switch (ref.kind) {
    case "ordered-dict":
      return orderedDict(args);
    case "rebuild-tensor":
      // (storage, storage_offset, size, stride): PyTorch 0.3 and earlier
      return tensor(args, false);
    case "rebuild-tensor-v2":
      // (storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
      if (args.length < 6) fail("corrupt", `_rebuild_tensor_v2 takes at least 6 arguments, got ${args.length}`);
      return tensor(args, args[4]?.type === "bool" && args[4].value);
    case "rebuild-parameter": {
      // (data, requires_grad, backward_hooks): an nn.Parameter is its tensor for our purposes
      const data = args[0];
      if (data?.type !== "tensor") fail("corrupt", `_rebuild_parameter of ${data === undefined ? "nothing" : describe(data)}`);
      return { type: "tensor", tensor: { ...data.tensor, requiresGrad: args[1]?.type === "bool" && args[1].value } };
    }
    case "storage-type":
      return fail("unsupported", `calling ${ref.name} (constructing a storage from pickled data)`);
    default: {
      const never: never = ref;
      return never;
    }
  }
}

/** OrderedDict() (Python 3 pickles) or OrderedDict([[k, v], ...]) (Python 2.7 pickles). */
function orderedDict(args: readonly PyValue[]): PyValue {
  const d = emptyDict();
  if (args.length === 0) return d;
  const items = args[0];
  if (args.length > 1 || (items?.type !== "list" && items?.type !== "tuple")) {
    fail("corrupt", "OrderedDict arguments are not a list of pairs");
  }
  for (const pair of items.items) {
    if ((pair.type !== "list" && pair.type !== "tuple") || pair.items.length !== 2) {
      fail("corrupt", "OrderedDict item is not a (key, value) pair");
    }
    setItem(d, pair.items[0]!, pair.items[1]!);
  }
  return d;
}

function tensor(args: readonly PyValue[], requiresGrad: boolean): PyValue {
  const storage = args[0];
  if (storage?.type !== "storage") fail("corrupt", `tensor rebuilt from ${storage === undefined ? "nothing" : describe(storage)}, expected a storage`);
  const size = asIndexTuple(args[2], "tensor size");
  const stride = asIndexTuple(args[3], "tensor stride");
  if (size.length !== stride.length) fail("corrupt", `tensor size has ${size.length} dims but stride has ${stride.length}`);
  const offset = storage.storage.elementOffset + asIndex(args[1], "tensor storage offset");
  return { type: "tensor", tensor: { storage: storage.storage, offset, size, stride, requiresGrad } };
}

/**
 * torch's persistent ids: ('storage', storage_type, key, location, numel) in zip archives,
 * with a sixth element, view metadata (view_key, offset, view_size) or None, in legacy files.
 * Any other kind (PyTorch once pickled module source code as ('module', ...)) is refused.
 */
function persistentLoad(pid: PyValue, format: "zip" | "legacy"): StorageRef {
  if (pid.type !== "tuple") fail("corrupt", `persistent id is ${describe(pid)}, expected a tuple`);
  const [kind, type, key, location, numel, view] = pid.items;
  const typename = asString(kind, "persistent id kind");
  if (typename !== "storage") fail("unsafe", `persistent id of kind '${typename}' (only 'storage' is loaded)`);
  const expectedLength = format === "zip" ? 5 : 6;
  if (pid.items.length !== expectedLength) {
    fail("corrupt", `storage persistent id has ${pid.items.length} elements, expected ${expectedLength} in a ${format} file`);
  }
  if (type?.type !== "global" || type.ref.kind !== "storage-type") {
    fail("corrupt", `storage type is ${type === undefined ? "missing" : describe(type)}`);
  }
  const root: StorageRef = {
    key: asString(key, "storage key"),
    dtype: type.ref.dtype,
    location: asString(location, "storage location"),
    storageNumel: asIndex(numel, "storage size"),
    elementOffset: 0,
  };
  if (view === undefined || view.type === "none") return root;
  if (view.type !== "tuple" || view.items.length !== 3) fail("corrupt", `storage view metadata is ${describe(view)}`);
  const offset = asIndex(view.items[1], "storage view offset");
  const viewSize = asIndex(view.items[2], "storage view size");
  if (offset + viewSize > root.storageNumel) {
    fail("corrupt", `storage view [${offset}, ${offset + viewSize}) exceeds storage ${root.key} of ${root.storageNumel} elements`);
  }
  return { ...root, elementOffset: offset };
}
