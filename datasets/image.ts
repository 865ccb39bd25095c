// Reading and resizing one image or one label map, and the official input transform.
//
// Images are decoded by sharp (libvips: PNG, JPEG) to 8-bit RGB and then resized by resize.ts,
// a reimplementation of Pillow's BICUBIC that gives Pillow's bytes exactly (docs §4.3): libvips'
// own cubic resize uses the same kernel but not Pillow's fixed-point rounding, and differed by up
// to 2 grey levels on a fifth of the values of a 2048x1024 image. Labels go through our own PNG
// decoder (png.ts) and Pillow's NEAREST rule (resize.ts), so ids are never interpolated. Together
// every dataset loader resizes as the official `Image.resize` calls do.

import * as E from "fp-ts/lib/Either.js";
import * as TE from "fp-ts/lib/TaskEither.js";
import { pipe } from "fp-ts/lib/function.js";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { dirname } from "node:path";
import sharp from "sharp";
import { type DataError, corruptFile, errorText, isNotFound, missingFile, unsupportedFormat, writeFailed } from "./errors";
import { decodePng, encodePng, firstChannel } from "./png";
import { resizeRgbBicubic } from "./resize";

// The NEAREST rule lives with the bicubic one in resize.ts; re-exported so callers keep importing it from here.
export { nearestSourceIndices, resizeLabelNearest } from "./resize";
// The pixel types and the input transform live in rgb.ts (no Node); re-exported for existing callers.
export { type LabelMap, type RawLabelMap, type RgbImage, type Size, IMG_MEAN_BGR, flipLabel, flipRgb, toNetworkInput } from "./rgb";
import type { LabelMap, RawLabelMap, RgbImage, Size } from "./rgb";

/** Read a whole file; a missing file is its own error so the message says "missing", not "corrupt". */
export function readBytes(path: string): TE.TaskEither<DataError, Uint8Array> {
  return TE.tryCatch(
    async () => {
      const buf = await readFile(path);
      return new Uint8Array(buf.buffer, buf.byteOffset, buf.length);
    },
    (err) => (isNotFound(err) ? missingFile(path) : corruptFile(path, `cannot read: ${errorText(err)}`)),
  );
}

/**
 * Decode an image file to RGB and, when `size` is given, resize it to exactly that size with
 * Pillow's BICUBIC, byte for byte (aspect ratio not kept, as `img.resize((W, H), Image.BICUBIC)` in
 * the official loaders). Alpha is dropped and gray images are expanded to three channels, as
 * `.convert('RGB')` does before the official resize.
 */
export function readRgb(path: string, size?: Size): TE.TaskEither<DataError, RgbImage> {
  return pipe(
    readBytes(path),
    TE.chain((bytes) => decodeRgb(bytes, path)),
    TE.map((img) => (size === undefined ? img : resizeRgbBicubic(img, size))),
  );
}

/** sharp's full-resolution decode to 8-bit sRGB, no resize (that is resize.ts's, to match Pillow). */
function decodeRgb(bytes: Uint8Array, path: string): TE.TaskEither<DataError, RgbImage> {
  return TE.tryCatch(
    async () => {
      // failOn 'error' makes a truncated file an error instead of a gray-filled image.
      const pipeline = sharp(bytes, { failOn: "error" }).removeAlpha().toColourspace("srgb");
      const { data, info } = await pipeline.raw().toBuffer({ resolveWithObject: true });
      if (info.channels !== 3) throw new Error(`decoded to ${info.channels} channels, 3 expected`);
      return { width: info.width, height: info.height, data: new Uint8Array(data.buffer, data.byteOffset, data.length) };
    },
    (err) => corruptFile(path, `cannot decode image: ${errorText(err)}`),
  );
}

/** Decode a label PNG to its raw first-channel values (palette indices, gray levels, SYNTHIA's R). */
export function decodeLabelPng(bytes: Uint8Array, path: string): E.Either<DataError, RawLabelMap> {
  return pipe(
    decodePng(bytes, path),
    E.chain((png) =>
      png.colorType === "palette" || png.colorType === "gray" || png.bitDepth === 16
        ? E.right({ width: png.width, height: png.height, data: firstChannel(png) })
        : E.left(
            unsupportedFormat(
              path,
              `label PNGs must be 8-bit gray or palette, or 16-bit with the id in the first channel; this one is ${png.bitDepth}-bit ${png.colorType}`,
            ),
          ),
    ),
  );
}

export function readRawLabel(path: string): TE.TaskEither<DataError, RawLabelMap> {
  return pipe(
    readBytes(path),
    TE.chainEitherK((bytes) => decodeLabelPng(bytes, path)),
  );
}

export function writeBytes(path: string, bytes: Uint8Array): TE.TaskEither<DataError, void> {
  return TE.tryCatch(
    async () => {
      await mkdir(dirname(path), { recursive: true });
      await writeFile(path, bytes);
    },
    (err) => writeFailed(path, errorText(err)),
  );
}

/** A label map as an 8-bit gray PNG (Cityscapes *_labelIds.png, prediction files). */
export function writeGrayLabelPng(path: string, map: LabelMap): TE.TaskEither<DataError, void> {
  return writeBytes(path, encodePng({ width: map.width, height: map.height, colorType: "gray", bitDepth: 8, samples: map.data }));
}

/** A label map as an 8-bit palette PNG whose indices are the label values (GTA5 labels). */
export function writePaletteLabelPng(path: string, map: LabelMap, palette: Uint8Array): TE.TaskEither<DataError, void> {
  return writeBytes(
    path,
    encodePng({ width: map.width, height: map.height, colorType: "palette", bitDepth: 8, samples: map.data, palette }),
  );
}
