// Loading `torch.save` checkpoints without Python.
//
// Two container formats exist:
// - zip (PyTorch >= 1.6): `<archive>/data.pkl` is the object pickle, and each storage's raw
//   little-endian bytes are the entry `<archive>/data/<key>`.
// - legacy (before 1.6; the official AdaptSegNet weights): five things back to back: a pickled
//   magic number, a pickled protocol version (1001), a pickled sys_info dict, the object pickle,
//   and a pickled list of storage keys; then, for each listed key in order, an 8-byte
//   little-endian element count followed by the storage's raw bytes.
//
// In both, the object pickle names storages through persistent ids and describes each tensor as
// (storage, offset, size, stride). Tensors are materialised as contiguous row-major arrays;
// views (a transpose saved as-is, a slice) are gathered element by element. A view is never
// materialised larger than its storage (checkExtent), so memory is bounded by the file's bytes.

import * as E from "fp-ts/lib/Either.js";
import { pipe } from "fp-ts/lib/function.js";
import * as TE from "fp-ts/lib/TaskEither.js";
import { checkpointError, type CheckpointError } from "./errors";
import { hashKey, unpickle, type PyDict, type PyValue, type StorageRef, type TensorRef } from "./pickle";
import { readBytes } from "./safetensors";
import { assertLittleEndianHost, itemSize, makeTensor, numel, showShape, tensorFromBytes, viewAs, type Tensor } from "./tensor";
import { isZip, readZipDirectory, readZipEntry } from "./zip";

export type TorchFormat = "zip" | "legacy";

export interface TorchCheckpoint {
  readonly file: string;
  readonly format: TorchFormat;
  /** Where the state dict sat: [] when the file is the dict itself, ["state_dict"] when nested. */
  readonly container: readonly string[];
  readonly tensors: ReadonlyMap<string, Tensor>;
  /** Other top-level entries of a nested file (iteration counters, configs), by name. */
  readonly otherEntries: readonly string[];
}

const LEGACY_MAGIC = 0x1950a86a20f9469cfc6cn;
const LEGACY_PROTOCOL = 1001n;
/** Keys under which training scripts commonly nest the state dict, tried in this order. */
export const CONTAINER_KEYS = ["state_dict", "model", "model_state_dict", "net"] as const;

export function loadTorchCheckpoint(path: string): TE.TaskEither<CheckpointError, TorchCheckpoint> {
  return pipe(
    readBytes(path),
    TE.flatMapEither((bytes) => decodeTorchCheckpoint(path, bytes)),
  );
}

export function decodeTorchCheckpoint(file: string, bytes: Uint8Array): E.Either<CheckpointError, TorchCheckpoint> {
  assertLittleEndianHost();
  if (isZip(bytes)) return guarded(file, () => decodeZip(file, bytes));
  const notPickle = notAPickle(file, bytes);
  return notPickle !== undefined ? E.left(notPickle) : guarded(file, () => decodeLegacy(file, bytes));
}

/**
 * torch.save pickles with protocol 2 or later, so its pickles open with PROTO (0x80) and a
 * version up to 5. Anything else (a text file, an image, an empty file) is named as such here,
 * instead of by whichever opcode its first byte happens to be ("memo entry 101 read before it
 * was written" for a text starting with 'j').
 */
function notAPickle(file: string, bytes: Uint8Array): CheckpointError | undefined {
  if (bytes.byteLength >= 2 && bytes[0] === 0x80 && bytes[1]! <= 5) return undefined;
  const head = Array.from(bytes.subarray(0, 8), (b) => b.toString(16).padStart(2, "0")).join(" ");
  const what = bytes.byteLength === 0 ? "the file is empty" : `it begins with bytes ${head}`;
  return checkpointError("corrupt", file, `${file} is not a PyTorch checkpoint (not a zip archive nor a pickle: ${what})`);
}

/**
 * The decoders return every refusal they foresee as a value; this turns anything they did not
 * foresee (a RangeError from a length no check bounded) into one too, so a hostile file can
 * never end the process with a stack trace.
 */
function guarded(file: string, decode: () => E.Either<CheckpointError, TorchCheckpoint>): E.Either<CheckpointError, TorchCheckpoint> {
  try {
    return decode();
  } catch (e) {
    return E.left(checkpointError("corrupt", file, `cannot be decoded (${e instanceof Error ? `${e.name}: ${e.message}` : String(e)})`));
  }
}

// ---------------------------------------------------------------------------------------------
// zip

function decodeZip(file: string, bytes: Uint8Array): E.Either<CheckpointError, TorchCheckpoint> {
  const corrupt = (detail: string, tensor?: string) => E.left(checkpointError("corrupt", file, detail, tensor));
  const dir = readZipDirectory(file, bytes);
  if (E.isLeft(dir)) return dir;
  const pickles = [...dir.right.values()].filter((e) => e.name === "data.pkl" || e.name.endsWith("/data.pkl"));
  const pkl = pickles[0];
  if (pkl === undefined || pickles.length > 1) {
    return corrupt(`a torch zip archive has exactly one <archive>/data.pkl, found ${pickles.length}`);
  }
  const prefix = pkl.name.slice(0, -"data.pkl".length);
  const byteorder = dir.right.get(`${prefix}byteorder`);
  if (byteorder !== undefined) {
    const order = E.map((b: Uint8Array) => new TextDecoder().decode(b).trim())(readZipEntry(file, bytes, byteorder));
    if (E.isLeft(order)) return order;
    if (order.right !== "little") {
      return E.left(checkpointError("unsupported", file, `storages are ${order.right}-endian; only little-endian is read`));
    }
  }
  const pickleBytes = readZipEntry(file, bytes, pkl);
  if (E.isLeft(pickleBytes)) return pickleBytes;
  const loaded = unpickle(file, pickleBytes.right, 0, { format: "zip", what: pkl.name });
  if (E.isLeft(loaded)) return loaded;
  const selected = selectStateDict(file, loaded.right.value);
  if (E.isLeft(selected)) return selected;

  const storageBytes = (ref: StorageRef, tensor: string): E.Either<CheckpointError, Uint8Array> => {
    const entry = dir.right.get(`${prefix}data/${ref.key}`);
    if (entry === undefined) return corrupt(`storage ${ref.key} (entry ${prefix}data/${ref.key}) is missing from the archive`, tensor);
    return readZipEntry(file, bytes, entry);
  };
  return E.map((tensors: ReadonlyMap<string, Tensor>) => ({ file, format: "zip" as const, ...selected.right, tensors }))(
    materialise(file, selected.right.refs, storageBytes),
  );
}

// ---------------------------------------------------------------------------------------------
// legacy

function decodeLegacy(file: string, bytes: Uint8Array): E.Either<CheckpointError, TorchCheckpoint> {
  const corrupt = (detail: string, tensor?: string) => E.left(checkpointError("corrupt", file, detail, tensor));
  if (looksLikeTar(bytes)) {
    return E.left(checkpointError("unsupported", file, "tar-format checkpoint (PyTorch before 0.1.10); re-save it with a newer PyTorch"));
  }
  const magic = unpickle(file, bytes, 0, { format: "legacy", what: "magic number" });
  if (E.isLeft(magic)) return magic;
  if (magic.right.value.type !== "int" || magic.right.value.value !== LEGACY_MAGIC) {
    return corrupt("not a PyTorch checkpoint: neither a zip archive nor a legacy file starting with torch's magic number");
  }
  const protocol = unpickle(file, bytes, magic.right.end, { format: "legacy", what: "protocol version" });
  if (E.isLeft(protocol)) return protocol;
  if (protocol.right.value.type !== "int" || protocol.right.value.value !== LEGACY_PROTOCOL) {
    return E.left(checkpointError("unsupported", file, `legacy protocol version is not ${LEGACY_PROTOCOL}`));
  }
  const sysInfo = unpickle(file, bytes, protocol.right.end, { format: "legacy", what: "sys_info" });
  if (E.isLeft(sysInfo)) return sysInfo;
  const littleEndian = sysInfo.right.value.type === "dict" ? lookup(sysInfo.right.value, "little_endian") : undefined;
  if (littleEndian?.type === "bool" && !littleEndian.value) {
    return E.left(checkpointError("unsupported", file, "saved on a big-endian machine; only little-endian storages are read"));
  }
  const main = unpickle(file, bytes, sysInfo.right.end, { format: "legacy", what: "main pickle" });
  if (E.isLeft(main)) return main;
  const selected = selectStateDict(file, main.right.value);
  if (E.isLeft(selected)) return selected;
  const keyList = unpickle(file, bytes, main.right.end, { format: "legacy", what: "storage key list" });
  if (E.isLeft(keyList)) return keyList;
  const keys = keyList.right.value;
  if (keys.type !== "list" || !keys.items.every((k) => k.type === "str")) return corrupt("storage key list is not a list of strings");

  // Which tensor each storage feeds, so a truncated storage can be reported by tensor name.
  const users = new Map<string, string>();
  for (const [name, ref] of selected.right.refs) if (!users.has(ref.storage.key)) users.set(ref.storage.key, name);

  const storages = new Map<string, Uint8Array>();
  let at = keyList.right.end;
  for (const item of keys.items) {
    const key = item.type === "str" ? item.value : "";
    const ref = main.right.storages.get(key);
    const label = `storage ${key}`;
    if (ref === undefined) return corrupt(`${label} is listed but no tensor refers to it`);
    if (at + 8 > bytes.byteLength) {
      return corrupt(`truncated: ${label} header at byte ${at} is past the end of the ${bytes.byteLength}-byte file`, users.get(key));
    }
    const count = new DataView(bytes.buffer, bytes.byteOffset + at, 8).getBigUint64(0, true);
    if (count !== BigInt(ref.storageNumel)) {
      return corrupt(`${label} holds ${count} elements, its persistent id says ${ref.storageNumel}`, users.get(key));
    }
    const length = ref.storageNumel * itemSize(ref.dtype);
    const start = at + 8;
    if (start + length > bytes.byteLength) {
      return corrupt(
        `truncated: ${label} needs ${length} bytes from byte ${start}, the file ends after ${bytes.byteLength - start}`,
        users.get(key),
      );
    }
    storages.set(key, bytes.subarray(start, start + length));
    at = start + length;
  }
  const storageBytes = (ref: StorageRef, tensor: string): E.Either<CheckpointError, Uint8Array> => {
    const b = storages.get(ref.key);
    return b === undefined ? corrupt(`storage ${ref.key} is not in the file's storage list`, tensor) : E.right(b);
  };
  return E.map((tensors: ReadonlyMap<string, Tensor>) => ({ file, format: "legacy" as const, ...selected.right, tensors }))(
    materialise(file, selected.right.refs, storageBytes),
  );
}

/** POSIX tar puts "ustar" at byte 257 of its first header. */
function looksLikeTar(bytes: Uint8Array): boolean {
  return bytes.byteLength > 262 && new TextDecoder().decode(bytes.subarray(257, 262)) === "ustar";
}

// ---------------------------------------------------------------------------------------------
// Finding the state dict

interface Selected {
  readonly container: readonly string[];
  readonly refs: readonly (readonly [string, TensorRef])[];
  readonly otherEntries: readonly string[];
}

function lookup(d: PyDict, key: string): PyValue | undefined {
  const at = d.index.get(hashKey({ type: "str", value: key }));
  return at === undefined ? undefined : d.entries[at]![1];
}

/** The (name, tensor) pairs of a dict whose keys are all strings and values all tensors. */
function tensorEntries(d: PyDict): (readonly [string, TensorRef])[] | undefined {
  const out: (readonly [string, TensorRef])[] = [];
  for (const [k, v] of d.entries) {
    if (k.type !== "str" || v.type !== "tensor") return undefined;
    out.push([k.value, v.tensor]);
  }
  return out;
}

/**
 * The file is either the state dict itself or a dict holding it under one of CONTAINER_KEYS
 * next to other entries; anything else is reported with the top-level keys, so the user can
 * see where the tensors are.
 */
function selectStateDict(file: string, value: PyValue): E.Either<CheckpointError, Selected> {
  if (value.type !== "dict") {
    return E.left(checkpointError("unsupported", file, `the checkpoint holds a ${value.type}, expected a dict of tensors`));
  }
  const direct = tensorEntries(value);
  if (direct !== undefined) return E.right({ container: [], refs: direct, otherEntries: [] });
  for (const key of CONTAINER_KEYS) {
    const inner = lookup(value, key);
    const nested = inner?.type === "dict" ? tensorEntries(inner) : undefined;
    if (nested !== undefined) {
      const others = value.entries.map(([k]) => (k.type === "str" ? k.value : hashKey(k))).filter((k) => k !== key);
      return E.right({ container: [key], refs: nested, otherEntries: others });
    }
  }
  const top = value.entries.map(([k, v]) => `${k.type === "str" ? k.value : hashKey(k)} (${v.type})`).join(", ");
  return E.left(
    checkpointError("unsupported", file, `no dict of tensors at the top level or under ${CONTAINER_KEYS.join("/")}; top-level entries: ${top}`),
  );
}

// ---------------------------------------------------------------------------------------------
// Materialising tensors

type StorageSource = (ref: StorageRef, tensor: string) => E.Either<CheckpointError, Uint8Array>;

function materialise(
  file: string,
  refs: readonly (readonly [string, TensorRef])[],
  storageBytes: StorageSource,
): E.Either<CheckpointError, ReadonlyMap<string, Tensor>> {
  const tensors = new Map<string, Tensor>();
  // Aligned copies of storages read by strided views, shared by all views of one storage.
  const aligned = new Map<string, Uint8Array>();
  const budget = materialiseBudget(refs);
  let materialised = 0;
  for (const [name, ref] of refs) {
    const raw = storageBytes(ref.storage, name);
    if (E.isLeft(raw)) return raw;
    const expected = ref.storage.storageNumel * itemSize(ref.storage.dtype);
    if (raw.right.byteLength < expected) {
      return E.left(
        checkpointError("corrupt", file, `truncated: storage ${ref.storage.key} has ${raw.right.byteLength} bytes, expected ${expected}`, name),
      );
    }
    const problem = checkView(ref) ?? checkExtent(ref);
    if (problem !== undefined) return E.left(checkpointError("corrupt", file, problem, name));
    const size = itemSize(ref.storage.dtype);
    const count = numel(ref.size);
    materialised += count * size;
    if (materialised > budget) {
      return E.left(
        checkpointError("corrupt", file, `the tensors would take ${materialised} bytes once materialised, more than ${budget} for ${refs.length} tensors over storages of this size`, name),
      );
    }
    if (isRowMajor(ref.size, ref.stride)) {
      tensors.set(name, tensorFromBytes(ref.storage.dtype, ref.size, raw.right.subarray(ref.offset * size, (ref.offset + count) * size)));
      continue;
    }
    let src = aligned.get(ref.storage.key);
    if (src === undefined) {
      src = raw.right.slice(0, expected);
      aligned.set(ref.storage.key, src);
    }
    const out = gatherStrided(src, size, ref.offset, ref.size, ref.stride);
    tensors.set(name, makeTensor(ref.storage.dtype, ref.size, viewAs(ref.storage.dtype, out.buffer as ArrayBuffer, 0, count)));
  }
  return E.right(tensors);
}

/** Why a (offset, size, stride) view reaches outside its storage, or undefined. */
export function checkView(ref: TensorRef): string | undefined {
  if (numel(ref.size) === 0) return undefined;
  const last = ref.size.reduce((acc, d, i) => acc + (d - 1) * ref.stride[i]!, ref.offset);
  if (last >= ref.storage.storageNumel) {
    return `view (offset ${ref.offset}, size ${showShape(ref.size)}, stride ${showShape(ref.stride)}) reaches element ${last} of storage ${ref.storage.key}, which has ${ref.storage.storageNumel}`;
  }
  return undefined;
}

/**
 * Why a view has more elements than its storage holds, or undefined. A view that reads each
 * storage element at most once (any transpose or slice) has at most storageNumel elements; more
 * means a zero stride (a broadcast saved as-is) or overlapping strides, which materialising would
 * turn into a tensor far larger than the file: 4 bytes broadcast to [2^20, 2^20] is 4 TiB. The
 * element count is thereby bounded by the bytes the storage actually has (torch-load checks them
 * against storageNumel before this).
 */
export function checkExtent(ref: TensorRef): string | undefined {
  const count = numel(ref.size);
  if (count <= ref.storage.storageNumel) return undefined;
  return (
    `view (offset ${ref.offset}, size ${showShape(ref.size)}, stride ${showShape(ref.stride)}) has ${count} elements but storage ${ref.storage.key} holds ${ref.storage.storageNumel}: ` +
    "a broadcast (stride 0) or overlapping view is not materialised; save the tensor with .contiguous()"
  );
}

/**
 * At most twice the bytes of all distinct storages, plus 64 MiB: each tensor is at most its
 * storage (checkExtent), and state dicts share a storage between at most a few tensors (tied
 * weights); many views of one storage would otherwise multiply memory without a bound.
 */
function materialiseBudget(refs: readonly (readonly [string, TensorRef])[]): number {
  const storages = new Map<string, number>();
  for (const [, ref] of refs) storages.set(ref.storage.key, ref.storage.storageNumel * itemSize(ref.storage.dtype));
  let total = 0;
  for (const b of storages.values()) total += b;
  return 2 * total + 64 * 1024 * 1024;
}

/** Row-major strides, ignoring size-1 dims (whose stride is irrelevant and often arbitrary). */
export function isRowMajor(size: readonly number[], stride: readonly number[]): boolean {
  let expected = 1;
  for (let i = size.length - 1; i >= 0; i--) {
    if (size[i]! !== 1 && stride[i]! !== expected) return numel(size) === 0;
    expected *= size[i]!;
  }
  return true;
}

/**
 * Copies a strided view into a new contiguous buffer: output element j (row-major over `size`)
 * is source element offset + Σ idx_d · stride_d. Elements are moved as raw bit patterns of
 * their width, so NaN payloads and int64 values pass through untouched.
 * `src` must start at byte 0 of its own buffer (aligned for every width).
 */
export function gatherStrided(
  src: Uint8Array,
  elementBytes: number,
  offset: number,
  size: readonly number[],
  stride: readonly number[],
): Uint8Array {
  const count = numel(size);
  const out = new Uint8Array(count * elementBytes);
  if (count === 0) return out;
  // 8-byte elements move as two 32-bit words.
  const words = elementBytes === 8 ? 2 : 1;
  const unit = elementBytes === 8 ? 4 : elementBytes;
  const from = wordView(src.buffer as ArrayBuffer, unit, src.byteLength / unit);
  const to = wordView(out.buffer, unit, out.byteLength / unit);
  const rank = size.length;
  const idx = new Array<number>(rank).fill(0);
  let source = offset;
  for (let j = 0; j < count; j++) {
    for (let w = 0; w < words; w++) to[j * words + w] = from[source * words + w]!;
    // Odometer increment of the multi-index, keeping `source` in step.
    for (let d = rank - 1; d >= 0; d--) {
      idx[d] = idx[d]! + 1;
      source += stride[d]!;
      if (idx[d]! < size[d]!) break;
      source -= stride[d]! * size[d]!;
      idx[d] = 0;
    }
  }
  return out;
}

function wordView(buffer: ArrayBuffer, unit: number, length: number): Uint8Array | Uint16Array | Uint32Array {
  switch (unit) {
    case 1:
      return new Uint8Array(buffer, 0, length);
    case 2:
      return new Uint16Array(buffer, 0, length);
    case 4:
      return new Uint32Array(buffer, 0, length);
    default:
      throw new Error(`no word view of ${unit} bytes`);
  }
}
