// The value model of the restricted unpickler (pickle.ts): the Python values a torch
// checkpoint's pickle can build, as inert data, with the dict semantics they need (Python's key
// equality, a repeated key replacing) and the checked conversions the opcode machine and the
// global rules read their operands with. Nothing here executes anything.

import type { DType } from "./tensor";

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

export function emptyDict(): PyDict {
  return { type: "dict", entries: [], index: new Map(), attributes: undefined };
}

/**
 * Internal to the unpickler's files: unwinds the interpreter from any depth; `unpickle`
 * converts it to a CheckpointError at its boundary, so it never leaves pickle.ts.
 */
export class PickleFailure extends Error {
  constructor(
    readonly kind: "corrupt" | "unsafe" | "unsupported",
    readonly detail: string,
  ) {
    super(detail);
  }
}

export function fail(kind: PickleFailure["kind"], detail: string): never {
  throw new PickleFailure(kind, detail);
}

const utf8 = new TextDecoder("utf-8", { fatal: true });

export function decodeUtf8(b: Uint8Array): string {
  try {
    return utf8.decode(b);
  } catch {
    return fail("corrupt", "string is not valid UTF-8");
  }
}

export function describe(v: PyValue): string {
  return v.type === "global" ? `${v.module}.${v.name}` : `a ${v.type}`;
}

export function asDict(v: PyValue, op: string): PyDict {
  if (v.type !== "dict") fail("corrupt", `${op} on ${describe(v)}, expected a dict`);
  return v;
}

export function asList(v: PyValue, op: string): { type: "list"; items: PyValue[] } {
  if (v.type !== "list") fail("corrupt", `${op} on ${describe(v)}, expected a list`);
  return v;
}

export function asTuple(v: PyValue, what: string): readonly PyValue[] {
  if (v.type !== "tuple") fail("corrupt", `${what} are ${describe(v)}, expected a tuple`);
  return v.items;
}

export function asIndex(v: PyValue | undefined, what: string): number {
  if (v?.type !== "int" || v.value < 0n || v.value > BigInt(Number.MAX_SAFE_INTEGER)) {
    fail("corrupt", `${what} is ${v === undefined ? "missing" : describe(v)}, expected a non-negative integer`);
  }
  return Number(v.value);
}

export function asIndexTuple(v: PyValue | undefined, what: string): number[] {
  if (v?.type !== "tuple") fail("corrupt", `${what} is ${v === undefined ? "missing" : describe(v)}, expected a tuple`);
  return v.items.map((x, i) => asIndex(x, `${what}[${i}]`));
}

export function asString(v: PyValue | undefined, what: string): string {
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

export function setItems(d: PyDict, flat: readonly PyValue[]): void {
  if (flat.length % 2 !== 0) fail("corrupt", "SETITEMS with an odd number of items");
  for (let i = 0; i < flat.length; i += 2) setItem(d, flat[i]!, flat[i + 1]!);
}

export function setItem(d: PyDict, k: PyValue, v: PyValue): void {
  const h = hashKey(k);
  const at = d.index.get(h);
  if (at === undefined) {
    d.index.set(h, d.entries.length);
    d.entries.push([k, v]);
  } else {
    d.entries[at] = [d.entries[at]![0], v];
  }
}

