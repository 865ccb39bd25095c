// Label maps to colors with a zero-padded palette (colorize.ts explains the palettes and writes
// the PNGs). Free of Node, so the browser page paints its predictions with it.

import { TRAIN_ID_PALETTE } from "../datasets/classes";
import type { LabelMap, RgbImage } from "../datasets/rgb";

/** Label map -> RGB: value v gets `palette[3v .. 3v+2]` (256 entries; the Cityscapes trainId palette by default). */
export function colorize(map: LabelMap, palette: Uint8Array = TRAIN_ID_PALETTE): RgbImage {
  const n = map.width * map.height;
  const data = new Uint8Array(3 * n);
  for (let i = 0; i < n; i++) {
    const v = map.data[i]! * 3;
    data[3 * i] = palette[v]!;
    data[3 * i + 1] = palette[v + 1]!;
    data[3 * i + 2] = palette[v + 2]!;
  }
  return { width: map.width, height: map.height, data };
}
