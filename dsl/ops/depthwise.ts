// Depthwise convolution (NCHW, one filter per channel: PyTorch's conv2d with groups = C) and its
// two adjoints, each a first-class op, as conv.ts's conv2d family. MobileNetV2's 3x3 stages.
//
// The weight keeps PyTorch's grouped layout [C, 1, KH, KW] (in-channels per group = 1), so a
// torchvision state dict's `features.N.conv.1.0.weight` imports unchanged.

import { tapIndex } from "../../format/conv-geometry";
import type { F32, Pair, Shape, Tensor } from "../ir";
import { convOutSize } from "../shape";
import { type ConvAttrs, type ConvOpts, checkConvAttrs, convAttrs } from "./conv";
import { accumulate, fail, node, requireDType, requireRank } from "./build";
import type { Data, OpDef } from "./def";
import { sum } from "./reductions";

export interface DepthwiseAttrs {
  depthwiseConv2d: ConvAttrs;
  depthwiseConv2dInputGrad: ConvAttrs & { readonly inputSize: Pair };
  depthwiseConv2dWeightGrad: ConvAttrs & { readonly kernel: Pair };
}

/** The output size of each spatial axis, or a ShapeError naming the operands when a window does not fit. */
function outSize(op: string, operands: [string, Tensor][], a: ConvAttrs, size: Pair, kernel: Pair): Pair {
  const oh = convOutSize(size[0], kernel[0], a.stride[0], a.padding[0], a.dilation[0]);
  const ow = convOutSize(size[1], kernel[1], a.stride[1], a.padding[1], a.dilation[1]);
  if (oh < 1 || ow < 1) fail(op, operands, { ...a }, `output would be ${oh}x${ow}: the window does not fit`);
  return [oh, ow];
}

/** Checks a depthwise weight [C, 1, KH, KW] against C channels. */
function checkWeight(op: string, operands: [string, Tensor][], a: object, w: Tensor, c: number, what: string): void {
  if (w.shape[0] !== c || w.shape[1] !== 1) fail(op, operands, { ...a }, `weight must be [${c},1,KH,KW] (one filter per channel of ${what}), got [${w.shape.join(",")}]`);
}

/**
 * Depthwise 2-D cross-correlation, NCHW:
 *   y[n,c,i,j] = b[c] + sum_{u,v} x[n,c, i*s_h - p_h + u*d_h, j*s_w - p_w + v*d_w] * w[c,0,u,v]
 * with x read as 0 outside the input: F.conv2d(x, w, b, stride, padding, dilation, groups=C).
 */
export function depthwiseConv2d(x: F32<4>, w: F32<4>, bias?: F32<1>, opts: ConvOpts = {}): F32<4> {
  const op = "depthwiseConv2d";
  const a = convAttrs(opts);
  const operands: [string, Tensor][] = [["input", x], ["weight", w]];
  if (bias) operands.push(["bias", bias]);
  requireRank(op, "input", x, 4, a, operands);
  requireRank(op, "weight", w, 4, a, operands);
  checkConvAttrs(op, operands, a);
  for (const [name, t] of operands) requireDType(op, name, t, ["f32"], operands, a);
  const [n, c, h, wd] = x.shape as [number, number, number, number];
  checkWeight(op, operands, a, w, c, `the input's ${c} channels`);
  if (bias && (bias.rank !== 1 || bias.shape[0] !== c)) fail(op, operands, { ...a }, `bias must be [${c}]`);
  const [oh, ow] = outSize(op, operands, a, [h, wd], [w.shape[2]!, w.shape[3]!]);
  return node({ op, inputs: bias ? [x, w, bias] : [x, w], attrs: a }, [n, c, oh, ow], "f32");
}

/**
 * The input-gradient of depthwiseConv2d (its adjoint in x):
 *   dx[n,c,h,w] = sum_{u,v : i = (h + p_h - u*d_h)/s_h integral and in [0, OH), likewise j}
 *                 dy[n,c,i,j] * w[c,0,u,v]
 * `inputSize` fixes H and W, which the forward size rule cannot recover when strides floor.
 */
export function depthwiseConv2dInputGrad(dy: F32<4>, w: F32<4>, inputSize: Pair, opts: ConvOpts = {}): F32<4> {
  const op = "depthwiseConv2dInputGrad";
  const a = { ...convAttrs(opts), inputSize };
  const operands: [string, Tensor][] = [["gradOutput", dy], ["weight", w]];
  requireRank(op, "gradOutput", dy, 4, a, operands);
  requireRank(op, "weight", w, 4, a, operands);
  checkConvAttrs(op, operands, a);
  const [n, c, oh, ow] = dy.shape as [number, number, number, number];
  checkWeight(op, operands, a, w, c, `gradOutput's ${c} channels`);
  const [eh, ew] = outSize(op, operands, a, inputSize, [w.shape[2]!, w.shape[3]!]);
  if (eh !== oh || ew !== ow) fail(op, operands, a, `an input of ${inputSize.join("x")} gives ${eh}x${ew}, not ${oh}x${ow}`);
  return node({ op, inputs: [dy, w], attrs: a }, [n, c, inputSize[0], inputSize[1]], "f32");
}

/**
 * The weight-gradient of depthwiseConv2d (its adjoint in w), a reduction over n, i, j:
 *   dw[c,0,u,v] = sum_{n,i,j} dy[n,c,i,j] * x[n,c, i*s_h - p_h + u*d_h, j*s_w - p_w + v*d_w]
 */
export function depthwiseConv2dWeightGrad(x: F32<4>, dy: F32<4>, kernel: Pair, opts: ConvOpts = {}): F32<4> {
  const op = "depthwiseConv2dWeightGrad";
  const a = { ...convAttrs(opts), kernel };
  const operands: [string, Tensor][] = [["input", x], ["gradOutput", dy]];
  requireRank(op, "input", x, 4, a, operands);
  requireRank(op, "gradOutput", dy, 4, a, operands);
  checkConvAttrs(op, operands, a);
  const [n, c, h, wd] = x.shape as [number, number, number, number];
  const [dn, dc, oh, ow] = dy.shape as [number, number, number, number];
  if (n !== dn) fail(op, operands, a, "batch sizes differ");
  if (c !== dc) fail(op, operands, a, `input has ${c} channels, gradOutput ${dc}`);
  const [eh, ew] = outSize(op, operands, a, [h, wd], kernel);
  if (eh !== oh || ew !== ow) fail(op, operands, a, `input gives ${eh}x${ew}, not ${oh}x${ow}`);
  return node({ op, inputs: [x, dy], attrs: a }, [c, 1, kernel[0], kernel[1]], "f32");
}

/**
 * Visits every (output, tap) pair of a depthwise convolution whose input position is in range,
 * in the order (n, c, i, j, u, v); the tap index h = i*s - p + u*d is format/conv-geometry.ts's.
 */
function forEachTap(xShape: Shape, kernel: Pair, yShape: Shape, a: ConvAttrs, f: (yIdx: number, xIdx: number, wIdx: number) => void): void {
  const [N, C, H, W] = xShape as [number, number, number, number];
  const [KH, KW] = kernel;
  const [, , OH, OW] = yShape as [number, number, number, number];
  for (let n = 0; n < N; n++)
    for (let c = 0; c < C; c++)
      for (let i = 0; i < OH; i++)
        for (let j = 0; j < OW; j++) {
          const yIdx = ((n * C + c) * OH + i) * OW + j;
          for (let u = 0; u < KH; u++) {
            const h = tapIndex(i, a.stride[0], a.padding[0], u, a.dilation[0]);
            if (h < 0 || h >= H) continue;
            for (let v = 0; v < KW; v++) {
              const w = tapIndex(j, a.stride[1], a.padding[1], v, a.dilation[1]);
              if (w < 0 || w >= W) continue;
              f(yIdx, ((n * C + c) * H + h) * W + w, (c * KH + u) * KW + v);
            }
          }
        }
}

const f4 = (t: Tensor) => t as F32<4>;
const kernelOf = (w: { readonly shape: Shape }): Pair => [w.shape[2]!, w.shape[3]!];

export const DEPTHWISE_OPS = {
  // The transposition algebra, as conv2d's with the channel sum gone. With y = dwconv(x, w):
  //   dx = depthwiseConv2dInputGrad(dy, w),  dw = depthwiseConv2dWeightGrad(x, dy),
  //   db = sum_{n,h,w} dy.
  // Both gradient ops are bilinear, so their own VJPs are the other two ops of the triple.
  depthwiseConv2d: {
    evaluate: (n, [x, w, b], out, shape) => {
      const acc = accumulate(out, (add) => forEachTap(x!.shape, kernelOf(w!), shape, n.attrs, (yi, xi, wi) => add(yi, x!.data[xi]! * w!.data[wi]!)));
      const [, C, OH, OW] = shape as [number, number, number, number];
      for (let i = 0; i < out.length; i++) out[i] = acc[i]! + (b ? b.data[Math.floor(i / (OH * OW)) % C]! : 0);
    },
    vjp: (n, dy) => {
      const [x, w] = [f4(n.inputs[0]!), f4(n.inputs[1]!)];
      return [
        depthwiseConv2dInputGrad(f4(dy), w, [x.shape[2]!, x.shape[3]!], n.attrs),
        depthwiseConv2dWeightGrad(x, f4(dy), kernelOf(w), n.attrs),
        n.inputs.length > 2 ? sum(dy, [0, 2, 3]) : undefined,
      ];
    },
    lowering: { kind: "template", operands: "buffers", epilogue: true },
    gradcheck: { kind: "cases" },
  },
  // z = depthwiseConv2dInputGrad(g, w):  dg = depthwiseConv2d(dz, w),  dw = depthwiseConv2dWeightGrad(dz, g)
  depthwiseConv2dInputGrad: {
    evaluate: (n, [dy, w], out, shape) => {
      out.set(accumulate(out, (add) => forEachTap(shape, kernelOf(w!), dy!.shape, n.attrs, (yi, xi, wi) => add(xi, dy!.data[yi]! * w!.data[wi]!))));
    },
    vjp: (n, dz) => {
      const [g, w] = [f4(n.inputs[0]!), f4(n.inputs[1]!)];
      return [depthwiseConv2d(f4(dz), w, undefined, n.attrs), depthwiseConv2dWeightGrad(f4(dz), g, kernelOf(w), n.attrs)];
    },
    lowering: { kind: "template", operands: "buffers", epilogue: true },
    gradcheck: { kind: "cases" },
  },
  // z = depthwiseConv2dWeightGrad(x, g):  dx = depthwiseConv2dInputGrad(g, dz),  dg = depthwiseConv2d(x, dz)
  depthwiseConv2dWeightGrad: {
    evaluate: (n, [x, dy], out) => {
      out.set(accumulate(out, (add) => forEachTap(x!.shape, n.attrs.kernel, dy!.shape, n.attrs, (yi, xi, wi) => add(wi, dy!.data[yi]! * x!.data[xi]!))));
    },
    vjp: (n, dz) => {
      const [x, g] = [f4(n.inputs[0]!), f4(n.inputs[1]!)];
      return [depthwiseConv2dInputGrad(g, f4(dz), [x.shape[2]!, x.shape[3]!], n.attrs), depthwiseConv2d(x, f4(dz), undefined, n.attrs)];
    },
    lowering: { kind: "template", operands: "buffers", epilogue: true },
    gradcheck: { kind: "cases" },
  },
} satisfies { readonly [K in keyof DepthwiseAttrs]: OpDef<K> };
