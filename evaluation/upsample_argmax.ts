// Logits at network resolution -> class map at label resolution, as the official evaluation does
// it (docs §3.6, §5): bilinear upsampling with align_corners=True, then argmax over classes with
// ties going to the first class (numpy's argmax).
//
// align_corners=True maps output pixel d to source coordinate s = d * (in-1)/(out-1), so the
// corner pixels of input and output coincide. With i0 = floor(s), i1 = min(i0+1, in-1) and
// w = s - i0, a value is (1-w) * x[i0] + w * x[i1], separably in y then x:
//
//   v = (1-wy) * ((1-wx) x[y0,x0] + wx x[y0,x1]) + wy * ((1-wx) x[y1,x0] + wx x[y1,x1])
//
// which is the order of operations of PyTorch's CPU kernel. The scale, the source coordinate, the
// weights and every partial sum are rounded to float32 (Math.fround) as PyTorch computes them for a
// float32 tensor, so near-ties break the same way. An output size of 1 samples source index 0.
//
// Memory: the C x H x W upsampled tensor (19 x 1024 x 2048 floats = 160 MB) is never built; each
// output pixel interpolates all classes from the four neighbours and keeps the running maximum.

const f = Math.fround;

export interface AxisWeights {
  readonly i0: Int32Array;
  readonly i1: Int32Array;
  /** Weight of i1 (float32); the weight of i0 is 1 - w in float32. */
  readonly w1: Float32Array;
  readonly w0: Float32Array;
}

/** Source indices and weights along one axis, align_corners=True, float32 as PyTorch. */
export function alignCornersWeights(inSize: number, outSize: number): AxisWeights {
  const scale = outSize > 1 ? f((inSize - 1) / (outSize - 1)) : 0;
  const i0 = new Int32Array(outSize);
  const i1 = new Int32Array(outSize);
  const w0 = new Float32Array(outSize);
  const w1 = new Float32Array(outSize);
  for (let d = 0; d < outSize; d++) {
    const s = f(scale * d);
    const lo = Math.min(Math.floor(s), inSize - 1);
    i0[d] = lo;
    i1[d] = Math.min(lo + 1, inSize - 1);
    w1[d] = f(s - lo);
    w0[d] = f(1 - w1[d]!);
  }
  return { i0, i1, w0, w1 };
}

/**
 * Upsample `logits` (C x h x w, row-major) to H x W and take the argmax per pixel.
 * Returns class indices in a Uint8Array (C must be at most 255).
 */
export function upsampleArgmax(
  logits: Float32Array,
  classes: number,
  h: number,
  w: number,
  outH: number,
  outW: number,
): Uint8Array {
  if (logits.length !== classes * h * w) {
    throw new Error(`upsampleArgmax: ${logits.length} logits for a ${classes}x${h}x${w} tensor`);
  }
  if (classes < 1 || classes > 255) throw new Error(`upsampleArgmax: ${classes} classes do not fit a uint8 map`);
  const ys = alignCornersWeights(h, outH);
  const xs = alignCornersWeights(w, outW);
  const plane = h * w;
  const out = new Uint8Array(outH * outW);
  for (let y = 0; y < outH; y++) {
    const r0 = ys.i0[y]! * w;
    const r1 = ys.i1[y]! * w;
    const wy0 = ys.w0[y]!;
    const wy1 = ys.w1[y]!;
    for (let x = 0; x < outW; x++) {
      const c0 = xs.i0[x]!;
      const c1 = xs.i1[x]!;
      const wx0 = xs.w0[x]!;
      const wx1 = xs.w1[x]!;
      let best = 0;
      let bestV = -Infinity;
      for (let c = 0, base = 0; c < classes; c++, base += plane) {
        const top = f(f(wx0 * logits[base + r0 + c0]!) + f(wx1 * logits[base + r0 + c1]!));
        const bot = f(f(wx0 * logits[base + r1 + c0]!) + f(wx1 * logits[base + r1 + c1]!));
        const v = f(f(wy0 * top) + f(wy1 * bot));
        // Strictly greater: ties keep the first class, as numpy. (A NaN logit never wins here, where
        // numpy would pick it; finite logits are the only case that matters.)
        if (v > bestV) {
          bestV = v;
          best = c;
        }
      }
      out[y * outW + x] = best;
    }
  }
  return out;
}

/** Argmax over classes at the logits' own resolution (ties to the first class). */
export function argmaxClasses(logits: Float32Array, classes: number, h: number, w: number): Uint8Array {
  return upsampleArgmax(logits, classes, h, w, h, w);
}
