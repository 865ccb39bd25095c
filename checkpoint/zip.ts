// A small zip reader: exactly what PyTorch's checkpoint archives need.
//
// The central directory (found through the end-of-central-directory record at the end of the
// file) is authoritative for names and sizes; each local header is read only to find where its
// data starts, because PyTorch pads local headers with an extra field (to align storages to 64
// bytes) that the central directory does not repeat. Entries are stored (PyTorch never
// compresses) or deflated (other tools re-packing an archive do); both are CRC-checked.
// ZIP64 records are followed, since archives above 4 GiB or 65535 entries need them.

import { inflateRawSync } from "node:zlib";
import * as E from "fp-ts/lib/Either.js";
import { checkpointError, describeIoError, type CheckpointError } from "./errors";
import { crc32 } from "../format/crc32";

export interface ZipEntry {
  readonly name: string;
  /** 0 stored, 8 deflate. */
  readonly method: number;
  readonly flags: number;
  readonly crc32: number;
  readonly compressedSize: number;
  readonly size: number;
  readonly localHeaderOffset: number;
}

const SIG_LOCAL = 0x04034b50;
const SIG_CENTRAL = 0x02014b50;
const SIG_EOCD = 0x06054b50;
const SIG_ZIP64_LOCATOR = 0x07064b50;
const SIG_ZIP64_EOCD = 0x06064b50;
const ZIP64_EXTRA_ID = 0x0001;
const U16_MAX = 0xffff;
const U32_MAX = 0xffffffff;

export function isZip(bytes: Uint8Array): boolean {
  return bytes.byteLength >= 4 && view(bytes).getUint32(0, true) === SIG_LOCAL;
}

function view(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** 64-bit fields beyond 2^53 cannot be file offsets of anything we can hold in memory. */
function getU64(dv: DataView, at: number): number {
  const v = dv.getBigUint64(at, true);
  return v > BigInt(Number.MAX_SAFE_INTEGER) ? Number.POSITIVE_INFINITY : Number(v);
}

interface Directory {
  readonly count: number;
  readonly offset: number;
  readonly size: number;
}

export function readZipDirectory(file: string, bytes: Uint8Array): E.Either<CheckpointError, ReadonlyMap<string, ZipEntry>> {
  const corrupt = (detail: string, entry?: string) => E.left(checkpointError("corrupt", file, detail, entry));
  const dir = findDirectory(bytes);
  if (typeof dir === "string") return corrupt(dir);
  if (dir.offset + dir.size > bytes.byteLength) {
    return corrupt(`zip central directory [${dir.offset}, ${dir.offset + dir.size}) lies beyond the ${bytes.byteLength}-byte file (truncated?)`);
  }
  const dv = view(bytes);
  const entries = new Map<string, ZipEntry>();
  let at = dir.offset;
  for (let i = 0; i < dir.count; i++) {
    if (at + 46 > bytes.byteLength || dv.getUint32(at, true) !== SIG_CENTRAL) {
      return corrupt(`zip central directory entry ${i} at byte ${at} is damaged`);
    }
    const nameLength = dv.getUint16(at + 28, true);
    const extraLength = dv.getUint16(at + 30, true);
    const commentLength = dv.getUint16(at + 32, true);
    const end = at + 46 + nameLength + extraLength + commentLength;
    if (end > bytes.byteLength) return corrupt(`zip central directory entry ${i} runs past the end of the file`);
    const name = new TextDecoder().decode(bytes.subarray(at + 46, at + 46 + nameLength));
    const sizes = applyZip64Extra(
      {
        compressedSize: dv.getUint32(at + 20, true),
        size: dv.getUint32(at + 24, true),
        localHeaderOffset: dv.getUint32(at + 42, true),
      },
      bytes.subarray(at + 46 + nameLength, at + 46 + nameLength + extraLength),
    );
    if (sizes === undefined) return corrupt("zip64 extra field is too short", name);
    entries.set(name, {
      name,
      flags: dv.getUint16(at + 8, true),
      method: dv.getUint16(at + 10, true),
      crc32: dv.getUint32(at + 16, true),
      ...sizes,
    });
    at = end;
  }
  return E.right(entries);
}

/** Locates the central directory, or says why it cannot be found. */
function findDirectory(bytes: Uint8Array): Directory | string {
  const dv = view(bytes);
  // The EOCD record is 22 bytes plus a comment of at most 65535 bytes, at the very end.
  const lowest = Math.max(0, bytes.byteLength - 22 - U16_MAX);
  for (let at = bytes.byteLength - 22; at >= lowest; at--) {
    if (dv.getUint32(at, true) !== SIG_EOCD) continue;
    if (at + 22 + dv.getUint16(at + 20, true) > bytes.byteLength) continue; // a signature inside a comment
    const classic = { count: dv.getUint16(at + 10, true), size: dv.getUint32(at + 12, true), offset: dv.getUint32(at + 16, true) };
    const needs64 = classic.count === U16_MAX || classic.size === U32_MAX || classic.offset === U32_MAX;
    return needs64 ? findZip64Directory(dv, at) : classic;
  }
  return "no zip end-of-central-directory record (truncated archive?)";
}

function findZip64Directory(dv: DataView, eocdAt: number): Directory | string {
  const locator = eocdAt - 20;
  if (locator < 0 || dv.getUint32(locator, true) !== SIG_ZIP64_LOCATOR) return "zip64 end-of-central-directory locator missing";
  const record = getU64(dv, locator + 8);
  if (record + 56 > dv.byteLength || dv.getUint32(record, true) !== SIG_ZIP64_EOCD) {
    return "zip64 end-of-central-directory record missing or beyond the end of the file";
  }
  return { count: getU64(dv, record + 32), size: getU64(dv, record + 40), offset: getU64(dv, record + 48) };
}

interface EntryPlacement {
  readonly compressedSize: number;
  readonly size: number;
  readonly localHeaderOffset: number;
}

/**
 * A 32-bit field holding 0xFFFFFFFF means "see the zip64 extra field", which lists the
 * saturated fields, and only those, in the order: size, compressed size, local header offset.
 */
function applyZip64Extra(fields: EntryPlacement, extra: Uint8Array): EntryPlacement | undefined {
  const wanted = (["size", "compressedSize", "localHeaderOffset"] as const).filter((k) => fields[k] === U32_MAX);
  if (wanted.length === 0) return fields;
  const dv = view(extra);
  for (let at = 0; at + 4 <= extra.byteLength; ) {
    const id = dv.getUint16(at, true);
    const length = dv.getUint16(at + 2, true);
    if (id === ZIP64_EXTRA_ID) {
      if (length < 8 * wanted.length || at + 4 + length > extra.byteLength) return undefined;
      const out = { ...fields };
      wanted.forEach((k, i) => (out[k] = getU64(dv, at + 4 + 8 * i)));
      return out;
    }
    at += 4 + length;
  }
  return undefined;
}

/** The entry's uncompressed bytes: a view into `bytes` when stored, a new buffer when deflated. */
export function readZipEntry(file: string, bytes: Uint8Array, entry: ZipEntry): E.Either<CheckpointError, Uint8Array> {
  const corrupt = (detail: string) => E.left(checkpointError("corrupt", file, detail, entry.name));
  const dv = view(bytes);
  const at = entry.localHeaderOffset;
  if (at + 30 > bytes.byteLength || dv.getUint32(at, true) !== SIG_LOCAL) {
    return corrupt(`zip local header at byte ${at} is missing (truncated archive?)`);
  }
  if ((entry.flags & 1) !== 0) return E.left(checkpointError("unsupported", file, "encrypted zip entry", entry.name));
  const start = at + 30 + dv.getUint16(at + 26, true) + dv.getUint16(at + 28, true);
  const end = start + entry.compressedSize;
  if (end > bytes.byteLength) {
    return corrupt(`zip entry data [${start}, ${end}) runs past the end of the ${bytes.byteLength}-byte file (truncated?)`);
  }
  const raw = bytes.subarray(start, end);
  let data: Uint8Array;
  switch (entry.method) {
    case 0:
      data = raw;
      break;
    case 8:
      // Deflate expands at most 1032:1; a directory claiming more is lying, and the inflater is
      // held to the claimed size, so a crafted stream cannot allocate past it.
      if (entry.size > 1032 * entry.compressedSize + 1024) {
        return corrupt(`zip entry claims ${entry.size} bytes from ${entry.compressedSize} compressed, more than deflate can produce`);
      }
      try {
        data = new Uint8Array(inflateRawSync(raw, { maxOutputLength: Math.max(1, entry.size) }));
      } catch (e) {
        return corrupt(`deflate stream does not decode: ${describeIoError(e)}`);
      }
      break;
    default:
      return E.left(checkpointError("unsupported", file, `zip compression method ${entry.method} (only stored and deflate)`, entry.name));
  }
  if (data.byteLength !== entry.size) return corrupt(`zip entry has ${data.byteLength} bytes, the directory says ${entry.size}`);
  if (crc32(data) !== entry.crc32) return corrupt("zip entry CRC-32 does not match (damaged file)");
  return E.right(data);
}

