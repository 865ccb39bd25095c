// Pillow-exact resizing: `img.resize((W, H), Image.BICUBIC)` for 8-bit RGB images and
// `label.resize((W, H), Image.NEAREST)` for label maps, the two calls of the official loaders
// (docs §4.3). Exact means the same bytes as Pillow 9.4 (Debian bookworm's python3-pil), checked
// value for value against Pillow's own output in resize.test.ts.
//
// BICUBIC is a separable convolution, and what makes it Pillow's and not a textbook bicubic:
//
// 1. The kernel is Keys' cubic with a = -0.5 (Catmull-Rom), support 2 input pixels.
// 2. Downscaling by s = in/out > 1 stretches the kernel by s (support 2s, argument divided by s):
//    each output averages every input it covers, i.e. the resize antialiases. Upscaling keeps the
//    plain kernel (the stretch is max(s, 1)).
// 3. Output pixel i samples the input at center c = (i + 0.5) * s (pixel centers line up, no
//    align-corners). Its window is the input pixels [trunc(c - support + 0.5), trunc(c + support +
//    0.5)) cut to the image, and its weights are kernel((j - c + 0.5) / max(s, 1)) for input j,
//    divided by their sum, so the window's weights add to 1 even where the image edge cuts it.
//    All of this is double precision, in Pillow's order of operations.
// 4. The weights go to fixed point with 22 fraction bits (32 bits - 8 for the pixel - 2 for the
//    overshoot of the negative lobes), rounded half away from zero.
// 5. The horizontal pass runs first, over only the rows the vertical pass will read; each output
//    is (1 << 21) + sum(pixel * weight), shifted right by 22 (rounding to nearest) and clamped to
//    0..255 into a uint8 image. The vertical pass does the same on that image. A pass whose size
//    does not change is skipped, and an unchanged size is a copy.
//
// Image.resize in Pillow 9.4 defaults to reducing_gap=None and box=(0, 0, width, height), so the
// default call is exactly this, with no integer pre-reduction (Image.reduce) in front.

import type { LabelMap, RgbImage, Size } from "./rgb";

/** Fraction bits of Pillow's fixed-point weights for 8-bit images: 32 - 8 - 2. */
export const PRECISION_BITS = 22;
const FIXED_ONE = 1 << PRECISION_BITS;
/** Added before the final shift, so the shift rounds to nearest instead of down. */
const FIXED_HALF = 1 << (PRECISION_BITS - 1);

/** Keys' cubic convolution kernel with a = -0.5; zero outside |x| < 2. */
export function keysCubic(x: number): number {
  const a = -0.5;
  const t = x < 0 ? -x : x;
  // The two polynomial pieces, evaluated in Pillow's grouping so the doubles round identically:
  // (a + 2)|x|^3 - (a + 3)|x|^2 + 1 on [0, 1), and a(|x|^3 - 5|x|^2 + 8|x| - 4) on [1, 2).
  if (t < 1) return ((a + 2) * t - (a + 3)) * t * t + 1;
  if (t < 2) return (((t - 5) * t + 8) * t - 4) * a;
  return 0;
}

const BICUBIC_SUPPORT = 2;

/** The weights of one resampled axis: output i reads inputs first[i] .. first[i] + count[i] - 1. */
export interface AxisWeights<W extends Float64Array | Int32Array> {
  readonly inSize: number;
  readonly outSize: number;
  /** Row stride of `weights`: the most taps any output can have, 2 * ceil(support) + 1. */
  readonly stride: number;
  readonly first: Int32Array;
  readonly count: Int32Array;
  /** outSize x stride; entries past count[i] are 0. */
  readonly weights: W;
}

/**
 * Normalised double-precision bicubic weights of resizing an axis of `inSize` pixels to `outSize`
 * (Pillow's precompute_coeffs with box (0, inSize)). The order of every operation is Pillow's, so
 * each weight is the same double.
 */
export function bicubicWeights(inSize: number, outSize: number): AxisWeights<Float64Array> {
  const scale = inSize / outSize;
  const filterScale = Math.max(scale, 1);
  const support = BICUBIC_SUPPORT * filterScale;
  const stride = Math.ceil(support) * 2 + 1;
  // Pillow multiplies by the reciprocal rather than dividing by filterScale; the two can differ in
  // the last bit.
  const invFilterScale = 1 / filterScale;
  const first = new Int32Array(outSize);
  const count = new Int32Array(outSize);
  const weights = new Float64Array(outSize * stride);
  for (let i = 0; i < outSize; i++) {
    const center = (i + 0.5) * scale;
    // Math.trunc is C's (int) conversion: toward zero, so a window starting at -0.7 starts at 0.
    const lo = Math.max(0, Math.trunc(center - support + 0.5));
    const hi = Math.min(inSize, Math.trunc(center + support + 0.5));
    const base = i * stride;
    let sum = 0;
    for (let j = lo; j < hi; j++) {
      const w = keysCubic((j - center + 0.5) * invFilterScale);
      weights[base + j - lo] = w;
      sum += w;
    }
    if (sum !== 0) for (let j = 0; j < hi - lo; j++) weights[base + j] = weights[base + j]! / sum;
    first[i] = lo;
    count[i] = hi - lo;
  }
  return { inSize, outSize, stride, first, count, weights };
}

/** A weight in 22-bit fixed point, rounded half away from zero as Pillow does: trunc(w * 2^22 ± 0.5). */
export function toFixedPoint(w: number): number {
  return w < 0 ? Math.trunc(-0.5 + w * FIXED_ONE) : Math.trunc(0.5 + w * FIXED_ONE);
}

export function fixedPointWeights(axis: AxisWeights<Float64Array>): AxisWeights<Int32Array> {
  return { ...axis, weights: Int32Array.from(axis.weights, toFixedPoint) };
}

/**
 * Fixed-point axes by (in, out) size pair. Dataset images come in a handful of sizes, so the tables
 * are built once; the map is bounded because scale augmentation asks for many sizes.
 */
const axisCache = new Map<string, AxisWeights<Int32Array>>();
const AXIS_CACHE_LIMIT = 64;

export function bicubicAxis(inSize: number, outSize: number): AxisWeights<Int32Array> {
  const key = `${inSize}:${outSize}`;
  const hit = axisCache.get(key);
  if (hit !== undefined) return hit;
  const axis = fixedPointWeights(bicubicWeights(inSize, outSize));
  if (axisCache.size >= AXIS_CACHE_LIMIT) axisCache.delete(axisCache.keys().next().value!);
  axisCache.set(key, axis);
  return axis;
}

/**
 * A fixed-point sum back to a byte: the sum already carries +2^21, so the arithmetic shift by 22
 * rounds to nearest; the negative lobes can push it below 0 or above 255, hence the clamp.
 * Sums stay within int32 (at most 255 * sum|w| + 2^21, about 1.4e9 < 2^31), so JS's shift, which
 * first converts to int32, sees the exact sum, as C's int accumulator does.
 */
function clip8(sum: number): number {
  const v = sum >> PRECISION_BITS;
  return v < 0 ? 0 : v > 255 ? 255 : v;
}

/**
 * Horizontal pass over rows [rowFirst, rowFirst + rowCount) of an RGB image `width` pixels wide:
 * each output pixel is the weighted sum of its window in the same row, per channel.
 */
export function horizontalPass(
  src: Uint8Array,
  width: number,
  rowFirst: number,
  rowCount: number,
  axis: AxisWeights<Int32Array>,
): Uint8Array {
  const { outSize, stride, first, count, weights } = axis;
  const out = new Uint8Array(outSize * rowCount * 3);
  for (let r = 0; r < rowCount; r++) {
    const rowBase = (rowFirst + r) * width * 3;
    const outBase = r * outSize * 3;
    for (let x = 0; x < outSize; x++) {
      const n = count[x]!;
      const wBase = x * stride;
      let p = rowBase + first[x]! * 3;
      let s0 = FIXED_HALF;
      let s1 = FIXED_HALF;
      let s2 = FIXED_HALF;
      for (let t = 0; t < n; t++, p += 3) {
        const w = weights[wBase + t]!;
        s0 += src[p]! * w;
        s1 += src[p + 1]! * w;
        s2 += src[p + 2]! * w;
      }
      const o = outBase + x * 3;
      out[o] = clip8(s0);
      out[o + 1] = clip8(s1);
      out[o + 2] = clip8(s2);
    }
  }
  return out;
}

/**
 * Vertical pass: output row y is the weighted sum of source rows first[y] - rowOffset onwards
 * (`rowOffset` is the first source row held in `src`). Channels never mix in this direction, so a
 * row is `rowValues` independent bytes. The sum runs row by row into an int32 accumulator: integer
 * addition is exact and does not overflow, so this order gives Pillow's per-value sums.
 */
export function verticalPass(src: Uint8Array, rowValues: number, rowOffset: number, axis: AxisWeights<Int32Array>): Uint8Array {
  const { outSize, stride, first, count, weights } = axis;
  const out = new Uint8Array(outSize * rowValues);
  const acc = new Int32Array(rowValues);
  for (let y = 0; y < outSize; y++) {
    acc.fill(FIXED_HALF);
    const n = count[y]!;
    for (let t = 0; t < n; t++) {
      const w = weights[y * stride + t]!;
      const rowBase = (first[y]! - rowOffset + t) * rowValues;
      for (let i = 0; i < rowValues; i++) acc[i] = acc[i]! + src[rowBase + i]! * w;
    }
    const outBase = y * rowValues;
    for (let i = 0; i < rowValues; i++) out[outBase + i] = clip8(acc[i]!);
  }
  return out;
}

function checkSize(what: string, size: Size): void {
  if (!Number.isInteger(size.width) || !Number.isInteger(size.height) || size.width < 1 || size.height < 1) {
    throw new Error(`${what}: sizes must be positive integers, got ${size.width}x${size.height}`);
  }
}

/**
 * Pillow's `img.resize((width, height), Image.BICUBIC)` of an 8-bit RGB image, byte for byte.
 * An unchanged size returns the input itself (Pillow returns a copy of it).
 */
export function resizeRgbBicubic(img: RgbImage, size: Size): RgbImage {
  checkSize("resizeRgbBicubic", img);
  checkSize("resizeRgbBicubic", size);
  const needHorizontal = size.width !== img.width;
  const needVertical = size.height !== img.height;
  if (!needHorizontal && !needVertical) return img;
  const vertical = needVertical ? bicubicAxis(img.height, size.height) : undefined;
  let data = img.data;
  let rowOffset = 0;
  if (needHorizontal) {
    // Only the source rows some output row reads: from the first window's start to the last
    // window's end (windows move monotonically down the image).
    const last = size.height - 1;
    const rowEnd = vertical === undefined ? img.height : vertical.first[last]! + vertical.count[last]!;
    rowOffset = vertical === undefined ? 0 : vertical.first[0]!;
    data = horizontalPass(img.data, img.width, rowOffset, rowEnd - rowOffset, bicubicAxis(img.width, size.width));
  }
  if (vertical !== undefined) data = verticalPass(data, size.width * 3, rowOffset, vertical);
  return { width: size.width, height: size.height, data };
}

/**
 * Source index of each output position under Pillow's NEAREST resize (its affine scaler): the
 * sample point starts at 0.5 * in/out and advances by in/out per output pixel, accumulated in
 * double precision, then is truncated. That is floor((x + 0.5) * in/out) up to the rounding of the
 * running sum, and it is the running sum that Pillow uses: the closed form differs on a handful of
 * boundary pixels (see the Pillow fixture tests).
 *
 * Pillow fills a position whose index falls past the image with 0; the running sum stays below
 * in - s/2 + out * in * 2^-53, which is under `inSize` for any out < 6e7, so that never happens
 * and the clamp here only guards the typed-array read.
 */
export function nearestSourceIndices(inSize: number, outSize: number): Int32Array {
  const scale = inSize / outSize;
  const idx = new Int32Array(outSize);
  let pos = scale * 0.5;
  for (let x = 0; x < outSize; x++) {
    idx[x] = Math.min(inSize - 1, Math.trunc(pos));
    pos += scale;
  }
  return idx;
}

/**
 * Pillow's `label.resize((width, height), Image.NEAREST)`: every output takes one source value, so
 * label ids are never blended. An unchanged size returns the input itself.
 */
export function resizeLabelNearest(label: LabelMap, size: Size): LabelMap {
  if (label.width === size.width && label.height === size.height) return label;
  const xs = nearestSourceIndices(label.width, size.width);
  const ys = nearestSourceIndices(label.height, size.height);
  const out = new Uint8Array(size.width * size.height);
  for (let y = 0; y < size.height; y++) {
    const row = ys[y]! * label.width;
    for (let x = 0; x < size.width; x++) out[y * size.width + x] = label.data[row + xs[x]!]!;
  }
  return { width: size.width, height: size.height, data: out };
}
