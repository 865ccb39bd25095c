// Colorized predictions with a zero-padded palette: by default the Cityscapes one indexed by
// trainId (docs §4.4; 255 and any id past the 19 classes are black, as the official script's
// palette makes them), or a class table's (class-table.ts, classPalette) for class-index maps;
// and a side-by-side panel image | ground truth | prediction(s) for looking at results.

import * as TE from "fp-ts/lib/TaskEither.js";
import { mkdir } from "node:fs/promises";
import { dirname } from "node:path";
import sharp from "sharp";
import { type DataError, errorText, writeFailed } from "../datasets/errors";
import type { RgbImage, Size } from "../datasets/image";
import { nearestSourceIndices } from "../datasets/image";

// The palette lookup is colors.ts (no Node; the browser page paints with it); re-exported for callers.
export { colorize } from "./colors";

/** Nearest-neighbour resize of an RGB panel, so colorized class maps keep pure palette colors. */
export function resizeRgbNearest(img: RgbImage, size: Size): RgbImage {
  if (img.width === size.width && img.height === size.height) return img;
  const xs = nearestSourceIndices(img.width, size.width);
  const ys = nearestSourceIndices(img.height, size.height);
  const data = new Uint8Array(3 * size.width * size.height);
  for (let y = 0; y < size.height; y++) {
    for (let x = 0; x < size.width; x++) {
      const s = 3 * (ys[y]! * img.width + xs[x]!);
      const d = 3 * (y * size.width + x);
      data[d] = img.data[s]!;
      data[d + 1] = img.data[s + 1]!;
      data[d + 2] = img.data[s + 2]!;
    }
  }
  return { ...size, data };
}

/**
 * Panels left to right, each scaled (nearest) to the height of the first and separated by `gap`
 * white columns. Nearest keeps class colors exact; the photo is usually already at label size.
 */
export function sideBySide(panels: readonly RgbImage[], gap = 4): RgbImage {
  const first = panels[0];
  if (first === undefined) throw new Error("sideBySide: no panels");
  const h = first.height;
  const scaled = panels.map((p) => resizeRgbNearest(p, { width: Math.max(1, Math.round((p.width * h) / p.height)), height: h }));
  const width = scaled.reduce((s, p) => s + p.width, 0) + gap * (scaled.length - 1);
  const data = new Uint8Array(3 * width * h).fill(255);
  let left = 0;
  for (const p of scaled) {
    for (let y = 0; y < h; y++) data.set(p.data.subarray(3 * y * p.width, 3 * (y + 1) * p.width), 3 * (y * width + left));
    left += p.width + gap;
  }
  return { width, height: h, data };
}

/** Write an RGB image as PNG (sharp; no metadata is written by default, so output is deterministic). */
export function writeRgbPng(path: string, img: RgbImage): TE.TaskEither<DataError, void> {
  return TE.tryCatch(
    async () => {
      await mkdir(dirname(path), { recursive: true });
      await sharp(img.data, { raw: { width: img.width, height: img.height, channels: 3 } })
        .png({ compressionLevel: 9, adaptiveFiltering: false, palette: false })
        .toFile(path);
    },
    (err) => writeFailed(path, errorText(err)),
  );
}
