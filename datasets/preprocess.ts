// One sample from disk to network input, as the official loaders do it (docs §4.1-4.2): decode,
// bicubic resize of the image to the preset size and NEAREST resize of the label (both Pillow's,
// byte for byte: resize.ts), id -> class index, RGB -> BGR, minus the mean, CHW float32.
//
// Augmentation (mirror, scale) exists because the official scripts accept the flags, but like the
// official code it is off by default. The random draws are made by the caller (`drawAugment`) from
// the seed and the draw position, so a sample is a pure function of (file, options, position)
// wherever it is decoded — main thread or worker.

import * as TE from "fp-ts/lib/TaskEither.js";
import { pipe } from "fp-ts/lib/function.js";
import { mapLabels } from "./classes";
import type { DataError } from "./errors";
import { type LabelMap, type Size, readRawLabel, readRgb, resizeLabelNearest } from "./image";
import { checkLabelSize, storedImageSize } from "./label-check";
import { type SampleRef, labelLut } from "./layouts";
import { type LoadOptions, NO_AUGMENT, type Sample, assembleSample, checkAugment, scaledSize } from "./sample";

// The pixel half (augmentation, the input transform) is sample.ts, shared with the browser build.
export {
  type Augment,
  type AugmentPolicy,
  type LabelMode,
  type LoadOptions,
  type Sample,
  NO_AUGMENT,
  OFFICIAL_AUGMENT_POLICY,
  assembleSample,
  drawAugment,
} from "./sample";

/** Width and height of the network input for the official presets (docs §3.1). */
export const PRESET_SIZES = {
  gta5: { width: 1280, height: 720 },
  cityscapes: { width: 1024, height: 512 },
} as const satisfies Record<string, Size>;

function loadLabel(ref: SampleRef, opts: LoadOptions, target: Size | undefined): TE.TaskEither<DataError, LabelMap | undefined> {
  if (opts.labels === "none" || ref.labelPath === undefined) return TE.right(undefined);
  const labelPath = ref.labelPath;
  const lut = labelLut(ref.labelCoding, opts.protocol);
  return pipe(
    readRawLabel(labelPath),
    // A label stored at another size than its image is refused, not stretched onto it (label-check.ts).
    TE.chainFirst((raw) => pipe(storedImageSize(ref.imagePath), TE.chainEitherK((image) => checkLabelSize(labelPath, raw, ref.imagePath, image)))),
    TE.map((raw) => {
      const mapped: LabelMap = { width: raw.width, height: raw.height, data: mapLabels(raw.data, lut) };
      return target === undefined ? mapped : resizeLabelNearest(mapped, target);
    }),
  );
}

/**
 * Load one sample. With labels "original-size" no augmentation is allowed: evaluation compares
 * against the stored label pixels, and a flipped or rescaled label would change the score.
 */
export function loadSample(ref: SampleRef, opts: LoadOptions): TE.TaskEither<DataError, Sample> {
  const a = opts.augment ?? NO_AUGMENT;
  checkAugment(a, opts);
  const decodeSize = opts.size === undefined ? undefined : scaledSize(opts.size, a.scale);
  const labelTarget = opts.labels === "input-size" ? decodeSize : undefined;
  return pipe(
    TE.Do,
    TE.apS("rgb", readRgb(ref.imagePath, decodeSize)),
    TE.apS("label", loadLabel(ref, opts, labelTarget)),
    TE.map(({ rgb, label }) => assembleSample(ref.name, rgb, label, opts)),
  );
}
