// A restricted unpickler for what `torch.save` writes for (nested) dicts of tensors.
//
// Python's pickle is a small stack machine whose GLOBAL + REDUCE opcodes call arbitrary
// functions by name, which is how a malicious .pth runs `os.system`. This interpreter never
// calls anything: it implements the data opcodes, and GLOBAL resolves only names on a short
// whitelist into inert descriptors (`AllowedGlobal`) whose "call" is interpreted here as data
// construction (an empty OrderedDict, a tensor view description). Any other global is refused
// at the GLOBAL opcode, before its arguments are even read, with an error naming module.name.
//
// This file is the opcode machine; the values it builds (and Python's dict-key equality) are in
// pickle-values.ts, the whitelist and the meaning of each whitelisted call in pickle-globals.ts.
//
// Tensors come out as descriptions (storage reference, offset, size, stride); their bytes live
// outside the pickle (zip entries or the legacy trailer) and are gathered by torch-load.ts.
//
// Opcode reference: the pickle protocol as documented in CPython's Lib/pickletools.py.

import * as E from "fp-ts/lib/Either.js";
import { checkpointError, type CheckpointError } from "./errors";
import { persistentLoad, reduce, resolveGlobal } from "./pickle-globals";
import {
  asDict,
  asList,
  asTuple,
  decodeUtf8,
  describe,
  emptyDict,
  fail,
  PickleFailure,
  type PyValue,
  setItems,
  type StorageRef,
} from "./pickle-values";

// The value model and the whitelist live in their own files; their public names are exported
// from here too, where torch-load.ts and the tests have always imported them.
export { resolveGlobal } from "./pickle-globals";
export { type AllowedGlobal, emptyDict, hashKey, type PyDict, type PyValue, type StorageRef, type TensorRef } from "./pickle-values";

const NONE: PyValue = { type: "none" };

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

