// safetensors: the on-disk format for every tensor file this project writes.
//
// Layout: u64 little-endian header length N, N bytes of UTF-8 JSON, then the data bytes.
// The JSON maps each tensor name to {dtype, shape, data_offsets: [begin, end]} (offsets are
// relative to the start of the data section) plus an optional "__metadata__" map of strings.
//
// Writing is deterministic: header keys are sorted by name, and data is laid out by element
// size (largest first), then by name. Ordering by element size with no gaps keeps every tensor
// aligned to its own element size (the data section starts 8-aligned because the header is
// space-padded to a multiple of 8), and "no gaps" is what the reference implementation checks,
// so files written here load there too.
//
// Reading trusts nothing: header length against the file size, offsets within the data
// section and not overlapping, known dtypes, and shape × element size == byte length, each
// error naming the file and the tensor.

import * as E from "fp-ts/lib/Either.js";
import { checkpointError, describeIoError, type CheckpointError } from "./errors";
import {
  assertLittleEndianHost,
  checkTensor,
  isDType,
  isValidShape,
  itemSize,
  numel,
  showShape,
  tensorBytes,
  tensorFromBytes,
  type StateDict,
  type Tensor,
} from "./tensor";

export interface SafetensorsContents {
  readonly tensors: StateDict;
  readonly metadata: Readonly<Record<string, string>>;
}

const METADATA_KEY = "__metadata__";
/** The reference reader refuses headers above 100 MB; a larger one means a corrupt length. */
const MAX_HEADER_BYTES = 100_000_000;

interface HeaderEntry {
  readonly name: string;
  readonly tensor: { readonly dtype: Tensor["dtype"]; readonly shape: readonly number[] };
  readonly begin: number;
  readonly end: number;
}

// ---------------------------------------------------------------------------------------------
// Decoding

export function decodeSafetensors(file: string, bytes: Uint8Array): E.Either<CheckpointError, SafetensorsContents> {
  assertLittleEndianHost();
  const corrupt = (detail: string, tensor?: string) => E.left(checkpointError("corrupt", file, detail, tensor));
  if (bytes.byteLength < 8) {
    return corrupt(`file is ${bytes.byteLength} bytes, too short for the 8-byte header length`);
  }
  const headerLength = new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true);
  if (headerLength > BigInt(bytes.byteLength - 8)) {
    return corrupt(`header length ${headerLength} exceeds the ${bytes.byteLength - 8} bytes after it (truncated file?)`);
  }
  if (headerLength > BigInt(MAX_HEADER_BYTES)) return corrupt(`header length ${headerLength} is implausibly large`);
  const dataStart = 8 + Number(headerLength);
  const header = parseHeaderJson(bytes.subarray(8, dataStart));
  if (E.isLeft(header)) return corrupt(header.left);

  const dataLength = bytes.byteLength - dataStart;
  const entries: HeaderEntry[] = [];
  let metadata: Record<string, string> = {};
  for (const [name, raw] of Object.entries(header.right)) {
    if (name === METADATA_KEY) {
      const parsed = parseMetadata(raw);
      if (E.isLeft(parsed)) return corrupt(parsed.left);
      metadata = parsed.right;
      continue;
    }
    const entry = parseEntry(name, raw, dataLength);
    if (E.isLeft(entry)) return corrupt(entry.left, name);
    entries.push(entry.right);
  }
  const overlap = findOverlap(entries);
  if (overlap !== undefined) return corrupt(overlap[1], overlap[0]);

  const tensors = new Map<string, Tensor>();
  for (const { name, tensor, begin, end } of entries) {
    tensors.set(name, tensorFromBytes(tensor.dtype, tensor.shape, bytes.subarray(dataStart + begin, dataStart + end)));
  }
  return E.right({ tensors, metadata });
}

function parseHeaderJson(bytes: Uint8Array): E.Either<string, Record<string, unknown>> {
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    return E.left("header is not valid UTF-8");
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    return E.left(`header is not valid JSON (${describeIoError(e)})`);
  }
  if (!isPlainObject(json)) return E.left("header is not a JSON object");
  return E.right(json);
}

function parseMetadata(raw: unknown): E.Either<string, Record<string, string>> {
  if (!isPlainObject(raw)) return E.left(`${METADATA_KEY} is not an object`);
  for (const [k, v] of Object.entries(raw)) {
    if (typeof v !== "string") return E.left(`${METADATA_KEY}.${k} is not a string`);
  }
  return E.right(raw as Record<string, string>);
}

function parseEntry(name: string, raw: unknown, dataLength: number): E.Either<string, HeaderEntry> {
  if (!isPlainObject(raw)) return E.left("header entry is not an object");
  const { dtype, shape, data_offsets: offsets } = raw;
  if (typeof dtype !== "string" || !isDType(dtype)) return E.left(`unknown dtype ${JSON.stringify(dtype)}`);
  if (!Array.isArray(shape) || !isValidShape(shape)) return E.left(`invalid shape ${JSON.stringify(shape)}`);
  if (!Array.isArray(offsets) || offsets.length !== 2 || !isValidShape(offsets)) {
    return E.left(`invalid data_offsets ${JSON.stringify(offsets)}`);
  }
  const [begin, end] = offsets as [number, number];
  if (begin > end || end > dataLength) {
    return E.left(`data_offsets [${begin},${end}] lie outside the ${dataLength}-byte data section (truncated file?)`);
  }
  const expectedBytes = numel(shape) * itemSize(dtype);
  if (end - begin !== expectedBytes) {
    return E.left(`shape ${showShape(shape)} of ${dtype} needs ${expectedBytes} bytes but data_offsets span ${end - begin}`);
  }
  return E.right({ name, tensor: { dtype, shape }, begin, end });
}

/** Returns [tensor, message] for the first tensor whose bytes overlap another's. */
function findOverlap(entries: readonly HeaderEntry[]): readonly [string, string] | undefined {
  const byBegin = entries.filter((e) => e.end > e.begin).sort((a, b) => a.begin - b.begin);
  for (let i = 1; i < byBegin.length; i++) {
    const prev = byBegin[i - 1]!;
    const cur = byBegin[i]!;
    if (cur.begin < prev.end) {
      return [cur.name, `data_offsets [${cur.begin},${cur.end}] overlap ${prev.name} [${prev.begin},${prev.end}]`];
    }
  }
  return undefined;
}

function isPlainObject(x: unknown): x is Record<string, unknown> {
  return typeof x === "object" && x !== null && !Array.isArray(x);
}

// ---------------------------------------------------------------------------------------------
// Encoding

/**
 * The file as a list of chunks: the length-prefixed header, then each tensor's bytes as a view
 * of its own data (no copy, so writing a 170 MB state dict does not double memory).
 */
export function encodeSafetensors(file: string, contents: SafetensorsContents): E.Either<CheckpointError, Uint8Array[]> {
  assertLittleEndianHost();
  for (const [name, t] of contents.tensors) {
    if (name === METADATA_KEY || name.length === 0) {
      return E.left(checkpointError("mismatch", file, "reserved or empty tensor name", JSON.stringify(name)));
    }
    const problem = checkTensor(t);
    if (problem !== undefined) return E.left(checkpointError("mismatch", file, problem, name));
  }
  for (const [k, v] of Object.entries(contents.metadata)) {
    if (typeof v !== "string") return E.left(checkpointError("mismatch", file, `metadata value ${k} is not a string`));
  }

  const layout = [...contents.tensors.entries()].sort(
    ([na, a], [nb, b]) => itemSize(b.dtype) - itemSize(a.dtype) || compareNames(na, nb),
  );
  // No prototype: a tensor named "__proto__" must become a key, not replace the prototype.
  const header = Object.create(null) as Record<string, unknown>;
  if (Object.keys(contents.metadata).length > 0) header[METADATA_KEY] = sortedRecord(contents.metadata);
  const offsets = new Map<string, readonly [number, number]>();
  let cursor = 0;
  for (const [name, t] of layout) {
    offsets.set(name, [cursor, cursor + t.data.byteLength]);
    cursor += t.data.byteLength;
  }
  for (const name of [...contents.tensors.keys()].sort(compareNames)) {
    const t = contents.tensors.get(name)!;
    header[name] = { dtype: t.dtype, shape: [...t.shape], data_offsets: offsets.get(name) };
  }

  const json = new TextEncoder().encode(JSON.stringify(header));
  const padded = Math.ceil(json.byteLength / 8) * 8;
  const head = new Uint8Array(8 + padded).fill(0x20, 8 + json.byteLength);
  new DataView(head.buffer).setBigUint64(0, BigInt(padded), true);
  head.set(json, 8);
  return E.right([head, ...layout.map(([, t]) => tensorBytes(t))]);
}

/** Code-unit order, independent of locale, so the same dict always gives the same bytes. */
function compareNames(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function sortedRecord(r: Readonly<Record<string, string>>): Record<string, string> {
  return Object.fromEntries(Object.entries(r).sort(([a], [b]) => compareNames(a, b)));
}

export function concatChunks(chunks: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.byteLength, 0));
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.byteLength;
  }
  return out;
}
