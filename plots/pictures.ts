// Pictures for people: rows of panels (image | ground truth | predictions of several models)
// with a title over each column, built from evaluation/'s palette and side-by-side layout.

import * as TE from "fp-ts/lib/TaskEither.js";
import { mkdir } from "node:fs/promises";
import { dirname } from "node:path";
import sharp from "sharp";
import type { RgbImage } from "../datasets/image.js";
import { resizeRgbNearest } from "../evaluation/colorize.js";
import { plotEmptyError, type PlotError, plotWriteError } from "./errors.js";

export interface Column {
  readonly title: string;
}

const GAP = 4;
const HEADER = 26;
const FONT = `font-family="DejaVu Sans, Helvetica, Arial, sans-serif"`;

const esc = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");

/**
 * One PNG: a header with `titles`, then one row per entry of `rows`, each row's panels scaled
 * (nearest, so class colors stay exact) to `panelHeight` and laid side by side.
 */
export function writePanelGrid(path: string, titles: readonly string[], rows: readonly (readonly RgbImage[])[], panelHeight: number): TE.TaskEither<PlotError, void> {
  // The first panel sets every panel's width (the aspect ratio of the dataset's images).
  const first = rows[0]?.[0];
  if (first === undefined) return TE.left(plotEmptyError("picture", path));
  return TE.tryCatch(
    async () => {
      const panelWidth = Math.round((first.width * panelHeight) / first.height);
      const cols = Math.max(...rows.map((r) => r.length));
      const width = cols * panelWidth + (cols - 1) * GAP;
      const height = HEADER + rows.length * panelHeight + (rows.length - 1) * GAP;
      const canvas = new Uint8Array(3 * width * height).fill(255);
      rows.forEach((row, r) => {
        row.forEach((img, c) => {
          const p = resizeRgbNearest(img, { width: panelWidth, height: panelHeight });
          const top = HEADER + r * (panelHeight + GAP);
          const left = c * (panelWidth + GAP);
          for (let y = 0; y < panelHeight; y++) canvas.set(p.data.subarray(3 * y * panelWidth, 3 * (y + 1) * panelWidth), 3 * ((top + y) * width + left));
        });
      });
      const svg = [
        `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${HEADER}">`,
        ...titles.map((t, c) => `<text x="${c * (panelWidth + GAP) + panelWidth / 2}" y="18" text-anchor="middle" font-size="14" font-weight="bold" ${FONT}>${esc(t)}</text>`),
        "</svg>",
      ].join("");
      await mkdir(dirname(path), { recursive: true });
      await sharp(canvas, { raw: { width, height, channels: 3 } })
        .composite([{ input: Buffer.from(svg), top: 0, left: 0 }])
        .png({ compressionLevel: 9 })
        .toFile(path);
    },
    (e) => plotWriteError("picture", path, e),
  );
}
