// The taps of bilinear resizing (dsl/ops.ts: resize) along one axis, shared by the interpreter
// (dsl/interpret.ts) and the resize kernels (codegen/wgsl/expr.ts), so both read the same
// source pixels with the same weights.
//
// For output index d, with scale s = (in - 1) / (out - 1) when corners are aligned and
// s = in / out otherwise, the source coordinate is
//   src = d * s                      (align corners)
//   src = max(s * (d + 0.5) - 0.5, 0) (half-pixel centres, clamped at the edge)
// and the output is x[i0] * (1 - l) + x[i1] * l with i0 = floor(src) (clamped to in - 1),
// i1 = min(i0 + 1, in - 1) and l = src - i0. PyTorch computes the scale and the source
// coordinate in float32 (opmath of float), and so does the GPU; `fround` reproduces that
// arithmetic exactly, so taps agree to the bit.

/** The two source indices and the weight of the second, for every output index along an axis. */
export interface ResizeTaps {
  readonly i0: Int32Array;
  readonly i1: Int32Array;
  readonly l: Float64Array;
}

/** Source indices and weights of bilinear interpolation from `inSize` to `outSize` samples. */
export function linearTaps(inSize: number, outSize: number, alignCorners: boolean): ResizeTaps {
  const i0 = new Int32Array(outSize);
  const i1 = new Int32Array(outSize);
  const l = new Float64Array(outSize);
  const f = Math.fround;
  // One output sample under align corners has no spacing to keep: it reads source index 0.
  const scale = alignCorners ? (outSize > 1 ? f((inSize - 1) / (outSize - 1)) : 0) : f(inSize / outSize);
  for (let d = 0; d < outSize; d++) {
    const src = alignCorners ? f(d * scale) : Math.max(f(f(scale * (d + 0.5)) - 0.5), 0);
    const i = Math.min(Math.floor(src), inSize - 1);
    i0[d] = i;
    i1[d] = Math.min(i + 1, inSize - 1);
    l[d] = f(src - i);
  }
  return { i0, i1, l };
}
