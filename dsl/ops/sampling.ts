// Spatial resampling, NCHW: max pooling and bilinear resizing, with their adjoints.

import type { F32, Pair, Shape } from "../ir";
import { poolOutSize, showShape } from "../shape";
import { fail, node, pair, requireRank, sameShape } from "./build";
import { type Data, NONDIFF, type OpDef, type Value } from "./def";
import { tapIndex } from "../../format/conv-geometry";
import { linearTaps } from "../../format/resize-taps";

export interface PoolAttrs {
  readonly kernel: Pair;
  readonly stride: Pair;
  readonly padding: Pair;
  readonly ceilMode: boolean;
}

export interface SamplingAttrs {
  maxPool2d: PoolAttrs;
  maxPool2dGrad: PoolAttrs;
  resize: { readonly size: Pair; readonly alignCorners: boolean };
  resizeGrad: { readonly size: Pair; readonly alignCorners: boolean };
}

export interface PoolOpts {
  readonly kernel: number | Pair;
  readonly stride?: number | Pair;
  readonly padding?: number | Pair;
  readonly ceilMode?: boolean;
}

/**
 * Max pooling, NCHW: y[n,c,i,j] = max over the window at (i*s - p, j*s - p) of the valid input
 * positions (padding never wins). Output size: poolOutSize (PyTorch's rule, ceil mode included).
 */
export function maxPool2d(x: F32<4>, opts: PoolOpts): F32<4> {
  const kernel = pair(opts.kernel, 1);
  const a = { kernel, stride: pair(opts.stride, kernel[0]), padding: pair(opts.padding, 0), ceilMode: opts.ceilMode ?? false };
  requireRank("maxPool2d", "input", x, 4, a);
  const [n, c, h, w] = x.shape as [number, number, number, number];
  if (a.padding[0] * 2 > kernel[0] || a.padding[1] * 2 > kernel[1]) fail("maxPool2d", [["input", x]], a, "padding must be at most half the kernel");
  const oh = poolOutSize(h, kernel[0], a.stride[0], a.padding[0], 1, a.ceilMode);
  const ow = poolOutSize(w, kernel[1], a.stride[1], a.padding[1], 1, a.ceilMode);
  if (oh < 1 || ow < 1) fail("maxPool2d", [["input", x]], a, `output would be ${oh}x${ow}`);
  return node({ op: "maxPool2d", inputs: [x], attrs: a }, [n, c, oh, ow], "f32");
}

/**
 * Gradient of maxPool2d in gather form: dx[p] = sum of dy over the windows whose (first, in
 * scan order) maximum is p. Each input position gathers; nothing is scattered.
 */
export function maxPool2dGrad(x: F32<4>, dy: F32<4>, attrs: PoolAttrs): F32<4> {
  const expected = maxPool2d(x, attrs).shape;
  if (!sameShape(expected, dy.shape)) {
    fail("maxPool2dGrad", [["input", x], ["gradOutput", dy]], { ...attrs }, `gradOutput must be ${showShape(expected)}`);
  }
  return node({ op: "maxPool2dGrad", inputs: [x, dy], attrs }, x.shape, "f32");
}

/**
 * Bilinear resize of the last two axes, PyTorch's `interpolate(mode='bilinear')`.
 * alignCorners: src = dst * (in-1)/(out-1) (0 when out = 1).
 * otherwise:    src = max((dst + 0.5) * in/out - 0.5, 0).
 * Then i0 = floor(src), i1 = min(i0+1, in-1), l = src - i0; y = (1-l) x[i0] + l x[i1], per axis.
 */
export function resize(x: F32<4>, size: Pair, opts: { readonly alignCorners: boolean }): F32<4> {
  const a = { size, alignCorners: opts.alignCorners };
  requireRank("resize", "input", x, 4, a);
  if (size.some((d) => !Number.isInteger(d) || d < 1)) fail("resize", [["input", x]], a, "size must be positive integers");
  const [n, c] = x.shape as [number, number];
  return node({ op: "resize", inputs: [x], attrs: a }, [n, c, size[0], size[1]], "f32");
}

/** The adjoint of resize (linear in dy), back to the input size `size`, in gather form. */
export function resizeGrad(dy: F32<4>, size: Pair, opts: { readonly alignCorners: boolean }): F32<4> {
  const a = { size, alignCorners: opts.alignCorners };
  requireRank("resizeGrad", "gradOutput", dy, 4, a);
  const [n, c] = dy.shape as [number, number];
  return node({ op: "resizeGrad", inputs: [dy], attrs: a }, [n, c, size[0], size[1]], "f32");
}

/**
 * Max pooling; with `dy`, its gather-form gradient. As PyTorch's CPU and CUDA kernels, the
 * scan takes an element when `val > best || isNaN(val)`: the window's first maximum, or its
 * last NaN, receives that window's dy, and the maximum is NaN over a NaN.
 */
function maxPoolInto(x: Value, dy: Value | undefined, a: PoolAttrs, yShape: Shape, out: Data): void {
  const [N, C, H, W] = x.shape as [number, number, number, number];
  const [, , OH, OW] = yShape as [number, number, number, number];
  const acc = dy ? new Float64Array(out.length) : undefined;
  for (let nc = 0; nc < N * C; nc++)
    for (let i = 0; i < OH; i++)
      for (let j = 0; j < OW; j++) {
        let best = -Infinity;
        let arg = -1;
        for (let u = 0; u < a.kernel[0]; u++) {
          const h = tapIndex(i, a.stride[0], a.padding[0], u, 1);
          if (h < 0 || h >= H) continue;
          for (let v = 0; v < a.kernel[1]; v++) {
            const w = tapIndex(j, a.stride[1], a.padding[1], v, 1);
            if (w < 0 || w >= W) continue;
            const idx = (nc * H + h) * W + w;
            const val = x.data[idx]!;
            if (arg < 0 || val > best || Number.isNaN(val)) {
              best = val;
              arg = idx;
            }
          }
        }
        const o = (nc * OH + i) * OW + j;
        if (acc) acc[arg]! += dy!.data[o]!;
        else out[o] = best;
      }
  if (acc) out.set(acc);
}

/** Bilinear resize, or (adjoint) its transpose, scattering dy back over the same taps. */
function resizeInto(x: Value, alignCorners: boolean, outShape: Shape, out: Data, adjoint: boolean): void {
  const big = adjoint ? x.shape : outShape; // the high-resolution side: where dst indices live
  const small = adjoint ? outShape : x.shape;
  const [N, C, h, w] = small as [number, number, number, number];
  const [, , H, W] = big as [number, number, number, number];
  const ty = linearTaps(h, H, alignCorners);
  const tx = linearTaps(w, W, alignCorners);
  const acc = adjoint ? new Float64Array(out.length) : undefined;
  for (let nc = 0; nc < N * C; nc++)
    for (let Y = 0; Y < H; Y++)
      for (let X = 0; X < W; X++) {
        const ly = ty.l[Y]!;
        const lx = tx.l[X]!;
        const taps: [number, number][] = [
          [(nc * h + ty.i0[Y]!) * w + tx.i0[X]!, (1 - ly) * (1 - lx)],
          [(nc * h + ty.i0[Y]!) * w + tx.i1[X]!, (1 - ly) * lx],
          [(nc * h + ty.i1[Y]!) * w + tx.i0[X]!, ly * (1 - lx)],
          [(nc * h + ty.i1[Y]!) * w + tx.i1[X]!, ly * lx],
        ];
        const o = (nc * H + Y) * W + X;
        if (acc) for (const [i, wt] of taps) acc[i]! += wt * x.data[o]!;
        else out[o] = taps.reduce((s, [i, wt]) => s + wt * x.data[i]!, 0);
      }
  if (acc) out.set(acc);
}

const f4 = (t: { shape: Shape }) => t as F32<4>;

export const SAMPLING_OPS = {
  maxPool2d: {
    evaluate: (n, [x], out, shape) => maxPoolInto(x!, undefined, n.attrs, shape, out),
    vjp: (n, dy) => [maxPool2dGrad(f4(n.inputs[0]!), f4(dy), n.attrs)],
    lowering: { kind: "template", operands: "buffers", epilogue: true },
    gradcheck: { kind: "cases" },
  },
  // Piecewise constant in x: second-order pooling is not needed.
  maxPool2dGrad: {
    evaluate: (n, [x, dy], out) => maxPoolInto(x!, dy!, n.attrs, dy!.shape, out),
    vjp: NONDIFF,
    lowering: { kind: "template", operands: "buffers", epilogue: true },
    gradcheck: { kind: "none" },
  },
  // resize is linear: its VJP is its adjoint, and the adjoint's VJP is resize again.
  resize: {
    evaluate: (n, [x], out, shape) => resizeInto(x!, n.attrs.alignCorners, shape, out, false),
    vjp: (n, dy) => {
      const x = n.inputs[0]!;
      return [resizeGrad(f4(dy), [x.shape[2]!, x.shape[3]!], n.attrs)];
    },
    lowering: {
      kind: "view",
      // Bilinear interpolation at the output index, taps computed in f32 exactly as PyTorch and
      // linearTaps (format/resize-taps.ts) do: src = dst * scale (align corners) or max((dst + 0.5) * scale - 0.5, 0);
      // i0 = floor(src); i1 = min(i0 + 1, in - 1); l = src - i0.
      wgsl: (c) => {
        const src = c.node.inputs[0]!;
        const align = c.node.attrs.alignCorners;
        const axisTaps = (axis: 2 | 3) => {
          const inSize = src.shape[axis]!;
          const outSize = c.shape[axis]!;
          // The scale is the same float32 linearTaps uses.
          const scale = align ? (outSize > 1 ? Math.fround((inSize - 1) / (outSize - 1)) : 0) : Math.fround(inSize / outSize);
          const d = c.idx[axis]!;
          const s = align ? `f32(${d}) * ${c.literal(scale, "f32")}` : `max(${c.literal(scale, "f32")} * (f32(${d}) + 0.5f) - 0.5f, 0.0f)`;
          const srcName = c.bind(`s${axis}`, "s", s);
          const i0 = c.bind(`a${axis}`, "i", `min(i32(floor(${srcName})), ${inSize - 1}i)`);
          const i1 = c.bind(`b${axis}`, "i", `min(${i0} + 1i, ${inSize - 1}i)`);
          const l = c.bind(`l${axis}`, "l", `${srcName} - f32(${i0})`);
          return { i0, i1, l };
        };
        const y = axisTaps(2);
        const x = axisTaps(3);
        const at = (yy: string, xx: string) => c.arg(0, [c.idx[0]!, c.idx[1]!, yy, xx]);
        const top = `mix(${at(y.i0, x.i0)}, ${at(y.i0, x.i1)}, ${x.l})`;
        const bottom = `mix(${at(y.i1, x.i0)}, ${at(y.i1, x.i1)}, ${x.l})`;
        return c.value(`mix(${top}, ${bottom}, ${y.l})`);
      },
    },
    gradcheck: { kind: "cases" },
  },
  resizeGrad: {
    evaluate: (n, [dy], out, shape) => resizeInto(dy!, n.attrs.alignCorners, shape, out, true),
    vjp: (n, dz) => {
      const g = n.inputs[0]!;
      return [resize(f4(dz), [g.shape[2]!, g.shape[3]!], n.attrs)];
    },
    lowering: { kind: "template", operands: "buffers", epilogue: true },
    gradcheck: { kind: "cases" },
  },
} satisfies { readonly [K in keyof SamplingAttrs]: OpDef<K> };
