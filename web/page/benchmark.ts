// The synthetic domain-shift benchmark in memory, and the user's own images, as samples for the
// shared training and evaluation code. The images are the generator's (datasets/synth), made from
// the same seeds as the files `npm run demo -- --quick` writes, listed in the order the Node
// loaders list those files, and turned into samples by the same code (datasets/sample.ts): PNG
// is lossless, so a sample here equals the sample Node decodes from disk, bit for bit.

import type { ClassTable } from "../../datasets/class-table";
import { mapLabels } from "../../datasets/classes";
import { labelLut } from "../../datasets/label-coding";
import { resizeLabelNearest, resizeRgbBicubic } from "../../datasets/resize";
import type { RgbImage, Size } from "../../datasets/rgb";
import { assembleSample, type LabelMode, type Sample } from "../../datasets/sample";
import { type SynthSpec, synthEntries, synthImage } from "../../datasets/synth/benchmark";

/** The demo's quick benchmark (demo/demo.ts QUICK_SYNTH; web.test.ts checks they agree). */
export const WEB_SYNTH: SynthSpec = {
  seed: 0,
  sourceSize: { width: 256, height: 128 },
  targetSize: { width: 256, height: 128 },
  countSource: 24,
  countTrain: 24,
  countVal: 8,
  shift: 0.5,
};

/** One image of a split: its decoded pixels and, where it has one, its label (Cityscapes label ids). */
export interface MemoryImage {
  /** As the Node loaders name it: `00001.png`, `<city>/<key>_leftImg8bit.png`, or the user's file name. */
  readonly name: string;
  readonly rgb: RgbImage;
  readonly labelIds?: Uint8Array;
}

export interface MemoryBenchmark {
  readonly source: readonly MemoryImage[];
  readonly train: readonly MemoryImage[];
  readonly val: readonly MemoryImage[];
}

/** readdir().sort() order of the Node layouts: gta5 by file name; Cityscapes by city, then file name. */
const byName = (a: MemoryImage, b: MemoryImage) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);

/** Every image of the benchmark, generated from its seed (yields to the page between images). */
export async function generateBenchmark(spec: SynthSpec, onImage?: (done: number, total: number) => Promise<void>): Promise<MemoryBenchmark> {
  const entries = synthEntries(spec);
  const out: Record<"source" | "train" | "val", MemoryImage[]> = { source: [], train: [], val: [] };
  for (const [i, e] of entries.entries()) {
    const img = synthImage(e.domain, e.size, e.seed);
    const name = e.city === undefined ? e.file : `${e.city}/${e.file}_leftImg8bit.png`;
    out[e.split].push({ name, rgb: { ...e.size, data: img.rgb }, labelIds: img.label });
    await onImage?.(i + 1, entries.length);
  }
  return { source: out.source.sort(byName), train: out.train.sort(byName), val: out.val.sort(byName) };
}

/**
 * A sample as preprocess.ts's loadSample makes it from the files: the image resized (Pillow's
 * bicubic) to `size`, the label ids mapped to the protocol and, for "input-size", resized
 * NEAREST; "original-size" keeps the stored label pixels (evaluation).
 */
export function memorySample(img: MemoryImage, size: Size | undefined, labels: LabelMode, protocol: ClassTable): Sample {
  const rgb = size === undefined ? img.rgb : resizeRgbBicubic(img.rgb, size);
  let label;
  if (labels !== "none" && img.labelIds !== undefined) {
    const mapped = { width: img.rgb.width, height: img.rgb.height, data: mapLabels(img.labelIds, labelLut("cityscapes-label-id", protocol)) };
    label = labels === "input-size" && size !== undefined ? resizeLabelNearest(mapped, size) : mapped;
  }
  return assembleSample(img.name, rgb, label, { ...(size !== undefined ? { size } : {}), labels, protocol });
}

/** RGBA pixels (ImageData) -> 8-bit RGB, alpha dropped as `.convert('RGB')` does. */
export function rgbFromRgba(width: number, height: number, rgba: Uint8ClampedArray): RgbImage {
  const data = new Uint8Array(3 * width * height);
  for (let i = 0; i < width * height; i++) {
    data[3 * i] = rgba[4 * i]!;
    data[3 * i + 1] = rgba[4 * i + 1]!;
    data[3 * i + 2] = rgba[4 * i + 2]!;
  }
  return { width, height, data };
}
