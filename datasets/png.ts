// A small PNG codec for label maps.
//
// Why not sharp for labels: a GTA5 label is an 8-bit *palette* PNG whose indices are Cityscapes
// label ids, and sharp (libvips) expands a palette image to RGB on decode, losing the ids. SYNTHIA
// labels are 16-bit PNGs whose R channel holds the class id, which must not be rescaled to 8 bits.
// So labels are decoded here, returning the raw samples (palette indices, gray levels, or the
// first channel of a 16-bit image). The encoder exists for the same reason in reverse: the
// synthetic benchmark writes palette and gray label PNGs with exact indices, and its bytes must be
// identical for the same seed (no timestamps, fixed filters, fixed zlib level).
//
// Format facts used (PNG spec, ISO/IEC 15948): 8-byte signature; chunks of length (u32 BE), type,
// data, CRC-32 over type+data; IHDR first; IDAT chunks concatenate into one zlib stream; each
// scanline starts with a filter byte 0..4 (None, Sub, Up, Average, Paeth) applied per byte with
// `bpp` = bytes per complete pixel (at least 1).

import * as E from "fp-ts/lib/Either.js";
import { deflateSync, inflateSync } from "node:zlib";
import { type DataError, corruptFile, errorText, unsupportedFormat } from "./errors";
import { crc32 } from "../format/crc32";

const SIGNATURE = Uint8Array.from([137, 80, 78, 71, 13, 10, 26, 10]);

export type PngColorType = "gray" | "rgb" | "palette" | "gray-alpha" | "rgba";

/** Raw samples in row-major, channel-interleaved order; palette images give their indices. */
export interface DecodedPng {
  readonly width: number;
  readonly height: number;
  readonly colorType: PngColorType;
  readonly bitDepth: 1 | 2 | 4 | 8 | 16;
  readonly channels: number;
  readonly samples: Uint8Array | Uint16Array;
  /** RGB triplets of a PLTE chunk, when present. */
  readonly palette?: Uint8Array;
}

const COLOR_TYPE_CODES: Record<number, { type: PngColorType; channels: number }> = {
  0: { type: "gray", channels: 1 },
  2: { type: "rgb", channels: 3 },
  3: { type: "palette", channels: 1 },
  4: { type: "gray-alpha", channels: 2 },
  6: { type: "rgba", channels: 4 },
};

function colorTypeCode(t: PngColorType): number {
  switch (t) {
    case "gray":
      return 0;
    case "rgb":
      return 2;
    case "palette":
      return 3;
    case "gray-alpha":
      return 4;
    case "rgba":
      return 6;
    default: {
      const never: never = t;
      return never;
    }
  }
}


function readU32(b: Uint8Array, at: number): number {
  return ((b[at]! << 24) | (b[at + 1]! << 16) | (b[at + 2]! << 8) | b[at + 3]!) >>> 0;
}

function paeth(a: number, b: number, c: number): number {
  const p = a + b - c;
  const pa = Math.abs(p - a);
  const pb = Math.abs(p - b);
  const pc = Math.abs(p - c);
  return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
}

/** Undo the per-scanline filters in place; returns the filtered rows without their filter bytes. */
function unfilter(raw: Uint8Array, height: number, rowBytes: number, bpp: number): Uint8Array | string {
  if (raw.length < height * (rowBytes + 1)) {
    return `image data holds ${raw.length} bytes, ${height * (rowBytes + 1)} expected`;
  }
  const out = new Uint8Array(height * rowBytes);
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (rowBytes + 1)]!;
    const src = y * (rowBytes + 1) + 1;
    const dst = y * rowBytes;
    const prev = dst - rowBytes;
    for (let i = 0; i < rowBytes; i++) {
      const x = raw[src + i]!;
      const a = i >= bpp ? out[dst + i - bpp]! : 0;
      const b = y > 0 ? out[prev + i]! : 0;
      const c = y > 0 && i >= bpp ? out[prev + i - bpp]! : 0;
      switch (filter) {
        case 0:
          out[dst + i] = x;
          break;
        case 1:
          out[dst + i] = x + a;
          break;
        case 2:
          out[dst + i] = x + b;
          break;
        case 3:
          out[dst + i] = x + ((a + b) >> 1);
          break;
        case 4:
          out[dst + i] = x + paeth(a, b, c);
          break;
        default:
          return `scanline ${y} has unknown filter type ${filter}`;
      }
    }
  }
  return out;
}

/** Expand unfiltered rows to one sample per array element (sub-byte depths unpacked, 16-bit joined). */
function toSamples(rows: Uint8Array, width: number, height: number, channels: number, depth: number): Uint8Array | Uint16Array {
  const n = width * height * channels;
  if (depth === 8) return rows;
  const rowBytes = Math.ceil((width * channels * depth) / 8);
  if (depth === 16) {
    const out = new Uint16Array(n);
    for (let i = 0; i < n; i++) out[i] = (rows[2 * i]! << 8) | rows[2 * i + 1]!;
    return out;
  }
  const out = new Uint8Array(n);
  const perByte = 8 / depth;
  const mask = (1 << depth) - 1;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width * channels; x++) {
      const byte = rows[y * rowBytes + Math.floor(x / perByte)]!;
      const shift = 8 - depth * ((x % perByte) + 1);
      out[y * width * channels + x] = (byte >> shift) & mask;
    }
  }
  return out;
}

/** sharp's (libvips') default limitInputPixels, 0x3FFF squared: the same bound for labels as for images. */
const MAX_PIXELS = 0x3fff * 0x3fff;

const ALLOWED_DEPTHS: Record<PngColorType, readonly number[]> = {
  gray: [1, 2, 4, 8, 16],
  rgb: [8, 16],
  palette: [1, 2, 4, 8],
  "gray-alpha": [8, 16],
  rgba: [8, 16],
};

/**
 * Decode a non-interlaced PNG to raw samples. `path` only labels errors. CRCs are checked, so a
 * truncated or bit-flipped file is reported as corrupt rather than decoded to garbage.
 */
export function decodePng(bytes: Uint8Array, path: string): E.Either<DataError, DecodedPng> {
  if (bytes.length < 8 || SIGNATURE.some((v, i) => bytes[i] !== v)) {
    return E.left(corruptFile(path, "not a PNG file (bad signature)"));
  }
  let at = 8;
  let header: { width: number; height: number; depth: number; code: number; interlace: number } | undefined;
  let palette: Uint8Array | undefined;
  const idat: Uint8Array[] = [];
  let ended = false;
  while (at < bytes.length && !ended) {
    if (at + 12 > bytes.length) return E.left(corruptFile(path, `truncated chunk header at byte ${at}`));
    const length = readU32(bytes, at);
    const type = String.fromCharCode(bytes[at + 4]!, bytes[at + 5]!, bytes[at + 6]!, bytes[at + 7]!);
    const dataStart = at + 8;
    const dataEnd = dataStart + length;
    if (dataEnd + 4 > bytes.length) return E.left(corruptFile(path, `chunk ${type} runs past the end of the file`));
    if (crc32(bytes, at + 4, dataEnd) !== readU32(bytes, dataEnd)) {
      return E.left(corruptFile(path, `CRC mismatch in chunk ${type}`));
    }
    const data = bytes.subarray(dataStart, dataEnd);
    switch (type) {
      case "IHDR":
        if (length !== 13) return E.left(corruptFile(path, "IHDR chunk has the wrong length"));
        header = {
          width: readU32(data, 0),
          height: readU32(data, 4),
          depth: data[8]!,
          code: data[9]!,
          interlace: data[12]!,
        };
        break;
      case "PLTE":
        palette = data.slice();
        break;
      case "IDAT":
        idat.push(data);
        break;
      case "IEND":
        ended = true;
        break;
      default:
        // Ancillary chunks (tEXt, gAMA, ...) do not change the samples.
        break;
    }
    at = dataEnd + 4;
  }
  if (header === undefined) return E.left(corruptFile(path, "no IHDR chunk"));
  if (!ended) return E.left(corruptFile(path, "no IEND chunk (file truncated?)"));
  const ct = COLOR_TYPE_CODES[header.code];
  if (ct === undefined) return E.left(corruptFile(path, `invalid color type ${header.code}`));
  if (!ALLOWED_DEPTHS[ct.type].includes(header.depth)) {
    return E.left(corruptFile(path, `bit depth ${header.depth} is invalid for color type ${ct.type}`));
  }
  if (header.interlace !== 0) return E.left(unsupportedFormat(path, "interlaced (Adam7) PNGs are not supported"));
  if (header.width === 0 || header.height === 0) return E.left(corruptFile(path, "zero-sized image"));
  if (ct.type === "palette" && palette === undefined) return E.left(corruptFile(path, "palette image without PLTE"));

  if (header.width * header.height > MAX_PIXELS) {
    return E.left(corruptFile(path, `${header.width}x${header.height} is beyond the ${MAX_PIXELS}-pixel limit (sharp's default for images)`));
  }
  const bitsPerPixel = ct.channels * header.depth;
  const rowBytes = Math.ceil((header.width * bitsPerPixel) / 8);
  // The header fixes the size of the filtered rows; the inflater is held to it, so a small file
  // whose data inflates to gigabytes (a decompression bomb) is refused instead of allocated.
  const expected = header.height * (rowBytes + 1);
  let raw: Uint8Array;
  try {
    raw = inflateSync(Buffer.concat(idat), { maxOutputLength: expected });
  } catch (err) {
    const tooLong = (err as { code?: string }).code === "ERR_BUFFER_TOO_LARGE";
    return E.left(corruptFile(path, tooLong ? `image data inflates past the ${expected} bytes a ${header.width}x${header.height} image has` : `image data does not inflate: ${errorText(err)}`));
  }
  const rows = unfilter(raw, header.height, rowBytes, Math.max(1, bitsPerPixel >> 3));
  if (typeof rows === "string") return E.left(corruptFile(path, rows));
  return E.right({
    width: header.width,
    height: header.height,
    colorType: ct.type,
    bitDepth: header.depth as DecodedPng["bitDepth"],
    channels: ct.channels,
    samples: toSamples(rows, header.width, header.height, ct.channels, header.depth),
    ...(palette === undefined ? {} : { palette }),
  });
}

/** The first channel of every pixel: the label value for gray, palette and SYNTHIA's 16-bit RGB labels. */
export function firstChannel(png: DecodedPng): Uint8Array | Uint16Array {
  if (png.channels === 1) return png.samples;
  const n = png.width * png.height;
  const out = png.samples instanceof Uint16Array ? new Uint16Array(n) : new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = png.samples[i * png.channels]!;
  return out;
}

export interface PngImage {
  readonly width: number;
  readonly height: number;
  readonly colorType: PngColorType;
  readonly bitDepth: 8 | 16;
  /** One sample per element, channel-interleaved; Uint16Array for 16-bit images. */
  readonly samples: Uint8Array | Uint16Array;
  /** RGB triplets, at most 256 entries; required for palette images. */
  readonly palette?: Uint8Array;
}

function chunk(type: string, data: Uint8Array): Buffer {
  const out = Buffer.alloc(12 + data.length);
  out.writeUInt32BE(data.length, 0);
  out.write(type, 4, "latin1");
  out.set(data, 8);
  out.writeUInt32BE(crc32(out, 4, 8 + data.length), 8 + data.length);
  return out;
}

/** Paeth-filter one row (filter type 4), returned with its filter byte in front. */
function paethRow(cur: Uint8Array, prev: Uint8Array | undefined, bpp: number): Uint8Array {
  const out = new Uint8Array(cur.length + 1);
  out[0] = 4;
  for (let i = 0; i < cur.length; i++) {
    const a = i >= bpp ? cur[i - bpp]! : 0;
    const b = prev === undefined ? 0 : prev[i]!;
    const c = prev === undefined || i < bpp ? 0 : prev[i - bpp]!;
    out[i + 1] = (cur[i]! - paeth(a, b, c)) & 0xff;
  }
  return out;
}

/**
 * Encode a PNG deterministically: only IHDR, PLTE (palette images), IDAT and IEND. Label maps
 * (gray, palette) are large flat regions: filter None and zlib level 9 compress them as well as
 * anything. Photographs get the Paeth filter on every row and zlib level 3: within 2% of the
 * size of per-row adaptive filtering at level 6 on the synthetic images, in a third of the time.
 * The same input gives the same bytes on the same Node build (zlib is part of Node).
 */
export function encodePng(img: PngImage): Uint8Array {
  const ct = colorTypeCode(img.colorType);
  const channels = COLOR_TYPE_CODES[ct]!.channels;
  const expected = img.width * img.height * channels;
  if (img.samples.length !== expected) {
    throw new Error(`encodePng: ${img.samples.length} samples given, ${expected} expected`);
  }
  if (img.colorType === "palette" && (img.palette === undefined || img.palette.length % 3 !== 0)) {
    throw new Error("encodePng: a palette image needs RGB palette triplets");
  }
  const bytesPerSample = img.bitDepth / 8;
  const rowBytes = img.width * channels * bytesPerSample;
  const bpp = channels * bytesPerSample;
  const photo = img.colorType !== "palette" && img.colorType !== "gray";
  const filtered = new Uint8Array(img.height * (rowBytes + 1));
  let prev: Uint8Array | undefined;
  for (let y = 0; y < img.height; y++) {
    const cur = new Uint8Array(rowBytes);
    for (let i = 0; i < img.width * channels; i++) {
      const v = img.samples[y * img.width * channels + i]!;
      if (bytesPerSample === 1) cur[i] = v;
      else {
        cur[2 * i] = v >> 8;
        cur[2 * i + 1] = v & 0xff;
      }
    }
    if (photo) filtered.set(paethRow(cur, prev, bpp), y * (rowBytes + 1));
    else filtered.set(cur, y * (rowBytes + 1) + 1); // filter byte 0 = None
    prev = cur;
  }
  const ihdr = new Uint8Array(13);
  const view = new DataView(ihdr.buffer);
  view.setUint32(0, img.width);
  view.setUint32(4, img.height);
  ihdr[8] = img.bitDepth;
  ihdr[9] = ct;
  const parts = [Buffer.from(SIGNATURE), chunk("IHDR", ihdr)];
  if (img.colorType === "palette") parts.push(chunk("PLTE", img.palette!));
  parts.push(chunk("IDAT", deflateSync(filtered, { level: photo ? 3 : 9 })));
  parts.push(chunk("IEND", new Uint8Array(0)));
  // A plain Uint8Array copy, not a Buffer: Buffer#slice shares memory (a trap for callers who
  // copy with slice), and a small Buffer may be a view into Node's shared allocation pool.
  return new Uint8Array(Buffer.concat(parts));
}
