// Convolution (NCHW, groups 1) and its two adjoints, each a first-class op.

import { tapIndex } from "../../format/conv-geometry";
import type { F32, Pair, Shape, Tensor } from "../ir";
import { convOutSize } from "../shape";
import { accumulate, fail, node, pair, requireDType, requireRank } from "./build";
import type { Data, OpDef } from "./def";
import { sum } from "./reductions";

export interface ConvAttrs {
  readonly stride: Pair;
  readonly padding: Pair;
  readonly dilation: Pair;
}

export interface ConvOpAttrs {
  conv2d: ConvAttrs;
  conv2dInputGrad: ConvAttrs & { readonly inputSize: Pair };
  conv2dWeightGrad: ConvAttrs & { readonly kernel: Pair };
}

export interface ConvOpts {
  readonly stride?: number | Pair;
  readonly padding?: number | Pair;
  readonly dilation?: number | Pair;
}

/** Stride and dilation default to 1, padding to 0 (PyTorch's defaults); shared with depthwise.ts. */
export function convAttrs(opts: ConvOpts): ConvAttrs {
  return { stride: pair(opts.stride, 1), padding: pair(opts.padding, 0), dilation: pair(opts.dilation, 1) };
}

export function checkConvAttrs(op: string, operands: [string, Tensor][], a: ConvAttrs): void {
  const bad = [...a.stride, ...a.dilation].some((v) => !Number.isInteger(v) || v < 1) || a.padding.some((v) => !Number.isInteger(v) || v < 0);
  if (bad) fail(op, operands, { ...a }, "stride and dilation must be positive integers, padding non-negative");
}

/**
 * 2-D cross-correlation, NCHW, groups 1:
 *   y[n,o,i,j] = b[o] + sum_{c,u,v} x[n,c, i*s_h - p_h + u*d_h, j*s_w - p_w + v*d_w] * w[o,c,u,v]
 * with x read as 0 outside the input. Output size: convOutSize.
 */
export function conv2d(x: F32<4>, w: F32<4>, bias?: F32<1>, opts: ConvOpts = {}): F32<4> {
  const a = convAttrs(opts);
  const operands: [string, Tensor][] = [["input", x], ["weight", w]];
  if (bias) operands.push(["bias", bias]);
  requireRank("conv2d", "input", x, 4, a, operands);
  requireRank("conv2d", "weight", w, 4, a, operands);
  checkConvAttrs("conv2d", operands, a);
  for (const [name, t] of operands) requireDType("conv2d", name, t, ["f32"], operands, a);
  const [n, c, h, wd] = x.shape as [number, number, number, number];
  const [o, ci, kh, kw] = w.shape as [number, number, number, number];
  if (c !== ci) fail("conv2d", operands, { ...a }, `input has ${c} channels, weight expects ${ci}`);
  if (bias && (bias.rank !== 1 || bias.shape[0] !== o)) fail("conv2d", operands, { ...a }, `bias must be [${o}]`);
  const oh = convOutSize(h, kh, a.stride[0], a.padding[0], a.dilation[0]);
  const ow = convOutSize(wd, kw, a.stride[1], a.padding[1], a.dilation[1]);
  if (oh < 1 || ow < 1) fail("conv2d", operands, { ...a }, `output would be ${oh}x${ow}: the window does not fit`);
  return node({ op: "conv2d", inputs: bias ? [x, w, bias] : [x, w], attrs: a }, [n, o, oh, ow], "f32");
}

/**
 * The input-gradient of conv2d (the adjoint in x):
 *   dx[n,c,h,w] = sum_{o,u,v : i = (h + p_h - u*d_h)/s_h integral and in range, likewise j}
 *                 dy[n,o,i,j] * w[o,c,u,v]
 * `inputSize` fixes H and W, which the forward size rule cannot recover when strides floor.
 */
export function conv2dInputGrad(dy: F32<4>, w: F32<4>, inputSize: Pair, opts: ConvOpts = {}): F32<4> {
  const a = { ...convAttrs(opts), inputSize };
  const operands: [string, Tensor][] = [["gradOutput", dy], ["weight", w]];
  requireRank("conv2dInputGrad", "gradOutput", dy, 4, a, operands);
  requireRank("conv2dInputGrad", "weight", w, 4, a, operands);
  checkConvAttrs("conv2dInputGrad", operands, a);
  const [n, o, oh, ow] = dy.shape as [number, number, number, number];
  const [wo, c, kh, kw] = w.shape as [number, number, number, number];
  if (o !== wo) fail("conv2dInputGrad", operands, a, `gradOutput has ${o} channels, weight has ${wo} outputs`);
  const eh = convOutSize(inputSize[0], kh, a.stride[0], a.padding[0], a.dilation[0]);
  const ew = convOutSize(inputSize[1], kw, a.stride[1], a.padding[1], a.dilation[1]);
  if (eh !== oh || ew !== ow) fail("conv2dInputGrad", operands, a, `an input of ${inputSize.join("x")} gives ${eh}x${ew}, not ${oh}x${ow}`);
  return node({ op: "conv2dInputGrad", inputs: [dy, w], attrs: a }, [n, c, inputSize[0], inputSize[1]], "f32");
}

/**
 * The weight-gradient of conv2d (the adjoint in w):
 *   dw[o,c,u,v] = sum_{n,i,j} dy[n,o,i,j] * x[n,c, i*s_h - p_h + u*d_h, j*s_w - p_w + v*d_w]
 */
export function conv2dWeightGrad(x: F32<4>, dy: F32<4>, kernel: Pair, opts: ConvOpts = {}): F32<4> {
  const a = { ...convAttrs(opts), kernel };
  const operands: [string, Tensor][] = [["input", x], ["gradOutput", dy]];
  requireRank("conv2dWeightGrad", "input", x, 4, a, operands);
  requireRank("conv2dWeightGrad", "gradOutput", dy, 4, a, operands);
  checkConvAttrs("conv2dWeightGrad", operands, a);
  const [n, , h, wd] = x.shape as [number, number, number, number];
  const [dn, o, oh, ow] = dy.shape as [number, number, number, number];
  if (n !== dn) fail("conv2dWeightGrad", operands, a, "batch sizes differ");
  const eh = convOutSize(h, kernel[0], a.stride[0], a.padding[0], a.dilation[0]);
  const ew = convOutSize(wd, kernel[1], a.stride[1], a.padding[1], a.dilation[1]);
  if (eh !== oh || ew !== ow) fail("conv2dWeightGrad", operands, a, `input gives ${eh}x${ew}, not ${oh}x${ow}`);
  return node({ op: "conv2dWeightGrad", inputs: [x, dy], attrs: a }, [o, x.shape[1]!, kernel[0], kernel[1]], "f32");
}

/**
 * Visits every (output position, tap) pair of a convolution whose input position is in range;
 * the tap index h = i*s - p + u*d is format/conv-geometry.ts's, as in every conv template.
 */
function forEachTap(xShape: Shape, wShape: Shape, yShape: Shape, a: ConvAttrs, f: (yIdx: number, xIdx: number, wIdx: number) => void): void {
  const [N, C, H, W] = xShape as [number, number, number, number];
  const [O, , KH, KW] = wShape as [number, number, number, number];
  const [, , OH, OW] = yShape as [number, number, number, number];
  for (let n = 0; n < N; n++)
    for (let o = 0; o < O; o++)
      for (let i = 0; i < OH; i++)
        for (let j = 0; j < OW; j++) {
          const yIdx = ((n * O + o) * OH + i) * OW + j;
          for (let c = 0; c < C; c++)
            for (let u = 0; u < KH; u++) {
              const h = tapIndex(i, a.stride[0], a.padding[0], u, a.dilation[0]);
              if (h < 0 || h >= H) continue;
              for (let v = 0; v < KW; v++) {
                const w = tapIndex(j, a.stride[1], a.padding[1], v, a.dilation[1]);
                if (w < 0 || w >= W) continue;
                f(yIdx, ((n * C + c) * H + h) * W + w, ((o * C + c) * KH + u) * KW + v);
              }
            }
        }
}

const f4 = (t: Tensor) => t as F32<4>;

export const CONV_OPS = {
  // The transposition algebra. With y = conv(x, w):
  //   dx = conv2dInputGrad(dy, w),  dw = conv2dWeightGrad(x, dy),  db = sum_{n,h,w} dy.
  // Both gradient ops are bilinear, so their own VJPs are the other two ops of the triple.
  conv2d: {
    evaluate: (n, [x, w, b], out, shape) => {
      const acc = accumulate(out, (add) => forEachTap(x!.shape, w!.shape, shape, n.attrs, (yi, xi, wi) => add(yi, x!.data[xi]! * w!.data[wi]!)));
      const [, O, OH, OW] = shape as [number, number, number, number];
      for (let i = 0; i < out.length; i++) out[i] = acc[i]! + (b ? b.data[Math.floor(i / (OH * OW)) % O]! : 0);
    },
    vjp: (n, dy) => {
      const [x, w] = [f4(n.inputs[0]!), f4(n.inputs[1]!)];
      return [
        conv2dInputGrad(f4(dy), w, [x.shape[2]!, x.shape[3]!], n.attrs),
        conv2dWeightGrad(x, f4(dy), [w.shape[2]!, w.shape[3]!], n.attrs),
        n.inputs.length > 2 ? sum(dy, [0, 2, 3]) : undefined,
      ];
    },
    lowering: { kind: "template", operands: "buffers", epilogue: true },
    gradcheck: { kind: "cases" },
  },
  // z = conv2dInputGrad(g, w):  dg = conv2d(dz, w),  dw = conv2dWeightGrad(dz, g)
  conv2dInputGrad: {
    evaluate: (n, [dy, w], out, shape) => {
      out.set(accumulate(out, (add) => forEachTap(shape, w!.shape, dy!.shape, n.attrs, (yi, xi, wi) => add(xi, dy!.data[yi]! * w!.data[wi]!))));
    },
    vjp: (n, dz) => {
      const [g, w] = [f4(n.inputs[0]!), f4(n.inputs[1]!)];
      return [conv2d(f4(dz), w, undefined, n.attrs), conv2dWeightGrad(f4(dz), g, [w.shape[2]!, w.shape[3]!], n.attrs)];
    },
    lowering: { kind: "template", operands: "buffers", epilogue: true },
    gradcheck: { kind: "cases" },
  },
  // z = conv2dWeightGrad(x, g):  dx = conv2dInputGrad(g, dz),  dg = conv2d(x, dz)
  conv2dWeightGrad: {
    evaluate: (n, [x, dy], out, shape) => {
      out.set(accumulate(out, (add) => forEachTap(x!.shape, shape, dy!.shape, n.attrs, (yi, xi, wi) => add(wi, dy!.data[yi]! * x!.data[xi]!))));
    },
    vjp: (n, dz) => {
      const [x, g] = [f4(n.inputs[0]!), f4(n.inputs[1]!)];
      return [conv2dInputGrad(g, f4(dz), [x.shape[2]!, x.shape[3]!], n.attrs), conv2d(x, f4(dz), undefined, n.attrs)];
    },
    lowering: { kind: "template", operands: "buffers", epilogue: true },
    gradcheck: { kind: "cases" },
  },
} satisfies { readonly [K in keyof ConvOpAttrs]: OpDef<K> };

