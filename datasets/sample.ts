// One sample from decoded pixels to network input, as the official loaders do it (docs §4.1-4.2):
// the augmentation window and flip, RGB -> BGR, minus the mean, CHW float32. No Node: the
// browser build feeds its own decoded pixels through the same code; preprocess.ts decodes files.

import type { ClassTable } from "./class-table";
import { IGNORE } from "./classes";
import { createRng, mixSeed } from "./prng";
import { resizeLabelNearest } from "./resize";
import { type LabelMap, type RgbImage, type Size, flipLabel, flipRgb, toNetworkInput } from "./rgb";

/** What to do with labels: none (target training), at the input size (source training), or as stored (evaluation). */
export type LabelMode = "none" | "input-size" | "original-size";

export interface Augment {
  readonly mirror: boolean;
  /** Resize factor before cropping/padding back to the input size; 1 = none. */
  readonly scale: number;
  /** Where the crop (scale > 1) or the padding (scale < 1) sits, as fractions of the slack in [0, 1]. */
  readonly offsetX: number;
  readonly offsetY: number;
}

export const NO_AUGMENT: Augment = { mirror: false, scale: 1, offsetX: 0.5, offsetY: 0.5 };

export interface AugmentPolicy {
  readonly mirror: boolean;
  /** [min, max] scale factor, or undefined for none. */
  readonly scale?: readonly [number, number];
}

export const OFFICIAL_AUGMENT_POLICY: AugmentPolicy = { mirror: false };

/** The augmentation of draw number `position` under `seed`: a pure function, so resuming repeats it. */
export function drawAugment(policy: AugmentPolicy, seed: number, position: number): Augment {
  if (!policy.mirror && policy.scale === undefined) return NO_AUGMENT;
  const rng = createRng(mixSeed(seed, position, 0x61756720));
  const mirror = policy.mirror && rng.next() < 0.5;
  const scale = policy.scale === undefined ? 1 : rng.uniform(policy.scale[0], policy.scale[1]);
  return { mirror, scale, offsetX: rng.next(), offsetY: rng.next() };
}

export interface LoadOptions {
  /** The input size; undefined keeps the image as stored. */
  readonly size?: Size;
  readonly labels: LabelMode;
  /** The class space the labels are returned in: a built-in protocol or a user's table. */
  readonly protocol: ClassTable;
  readonly augment?: Augment;
}

export interface Sample {
  readonly name: string;
  readonly width: number;
  readonly height: number;
  /** 3 x height x width, BGR minus the official mean. */
  readonly image: Float32Array;
  /** labelHeight x labelWidth class indices of the protocol, 255 = ignore. */
  readonly label?: Uint8Array;
  readonly labelWidth: number;
  readonly labelHeight: number;
}

/**
 * The `size` window of an interleaved image whose top-left corner sits at (left, top) in it;
 * pixels outside the image get `fill` (one value per channel).
 */
function placeWindow(src: Uint8Array, srcSize: Size, size: Size, left: number, top: number, fill: readonly number[]): Uint8Array {
  const channels = fill.length;
  const out = new Uint8Array(size.width * size.height * channels);
  for (let y = 0; y < size.height; y++) {
    const sy = y + top;
    for (let x = 0; x < size.width; x++) {
      const sx = x + left;
      const inside = sy >= 0 && sy < srcSize.height && sx >= 0 && sx < srcSize.width;
      for (let c = 0; c < channels; c++) {
        out[(y * size.width + x) * channels + c] = inside ? src[(sy * srcSize.width + sx) * channels + c]! : fill[c]!;
      }
    }
  }
  return out;
}

/** The window origin for an image of `scaled` size cut or padded to `size` (negative = padding). */
function windowOrigin(scaled: Size, size: Size, a: Augment): { left: number; top: number } {
  return {
    left: Math.floor((scaled.width - size.width) * a.offsetX),
    top: Math.floor((scaled.height - size.height) * a.offsetY),
  };
}

export function scaledSize(size: Size, scale: number): Size {
  return { width: Math.max(1, Math.round(size.width * scale)), height: Math.max(1, Math.round(size.height * scale)) };
}

/**
 * Padding an image with the per-channel mean (in RGB order) makes it 0 after mean subtraction,
 * the usual choice; it is rounded to uint8 because the window is cut before the float conversion.
 */
const PAD_RGB = [123, 117, 104] as const;

function augmentRgb(img: RgbImage, size: Size, a: Augment): RgbImage {
  let out = img;
  if (a.scale !== 1) {
    const { left, top } = windowOrigin(img, size, a);
    out = { ...size, data: placeWindow(img.data, img, size, left, top, PAD_RGB) };
  }
  return a.mirror ? flipRgb(out) : out;
}

function augmentLabel(label: LabelMap, size: Size, a: Augment): LabelMap {
  let out = label;
  if (a.scale !== 1) {
    const { left, top } = windowOrigin(label, size, a);
    out = { ...size, data: placeWindow(label.data, label, size, left, top, [IGNORE]) };
  }
  return a.mirror ? flipLabel(out) : out;
}

/** Augmentation needs a fixed input size and labels at that size (see loadSample); a bug otherwise. */
export function checkAugment(a: Augment, opts: LoadOptions): void {
  const augmented = a.mirror || a.scale !== 1;
  if (augmented && (opts.labels === "original-size" || opts.size === undefined)) {
    throw new Error("loadSample: augmentation needs a fixed input size and labels at that size");
  }
}

/**
 * The sample from its decoded pixels: `rgb` already resized to the decode size (the input size
 * times the augmentation's scale), `label` mapped to the protocol and resized as LabelMode says.
 * Then the augmentation window and flip, and the official input transform.
 */
export function assembleSample(name: string, rgb: RgbImage, label: LabelMap | undefined, opts: LoadOptions): Sample {
  const a = opts.augment ?? NO_AUGMENT;
  const augmented = a.mirror || a.scale !== 1;
  const size = opts.size ?? rgb;
  const img = augmented ? augmentRgb(rgb, size, a) : rgb;
  let lab = label === undefined ? undefined : augmented ? augmentLabel(label, size, a) : label;
  // Only reachable without a preset size: image and label stored at different sizes.
  if (opts.labels === "input-size" && lab !== undefined && (lab.width !== img.width || lab.height !== img.height)) lab = resizeLabelNearest(lab, img);
  return {
    name,
    width: img.width,
    height: img.height,
    image: toNetworkInput(img),
    ...(lab === undefined ? {} : { label: lab.data }),
    labelWidth: lab?.width ?? img.width,
    labelHeight: lab?.height ?? img.height,
  };
}
