// Normalisation and classification: softmax, batch norm, the cross-entropy loss and its
// gradient, all over the channel (class) axis of NCHW tensors.

import type { F32, I32, Tensor } from "../ir";
import { numel } from "../ir";
import { normAxis } from "../shape";
import { fail, node, requireDType, requireRank, sameShape } from "./build";
import { type Data, NONDIFF, type OpDef } from "./def";
import { add, and, div, eq, ge, lt, maximum, mul, ne, sub, where } from "./binary";
import { mean, sum } from "./reductions";
import { cast, exp, neg, rsqrt } from "./unary";
import { reshape } from "./views";
import { iota } from "./sources";

export interface NormalizationAttrs {
  softmax: { readonly axis: number };
  logSoftmax: { readonly axis: number };
  batchNormEval: { readonly eps: number };
  batchNormTrain: { readonly eps: number };
  softmaxCrossEntropy: { readonly ignoreIndex: number };
  softmaxCrossEntropyGrad: { readonly ignoreIndex: number };
}

/** softmax along an axis: e^(x - max) / sum e^(x - max). */
export function softmax<R extends number>(x: F32<R>, axis: number): F32<R> {
  const a = normAxis(axis, x.rank);
  if (a === undefined) fail("softmax", [["x", x]], { axis }, "axis out of range");
  return node({ op: "softmax", inputs: [x], attrs: { axis: a } }, x.shape, "f32");
}

/** log softmax along an axis: x - max - log sum e^(x - max). */
export function logSoftmax<R extends number>(x: F32<R>, axis: number): F32<R> {
  const a = normAxis(axis, x.rank);
  if (a === undefined) fail("logSoftmax", [["x", x]], { axis }, "axis out of range");
  return node({ op: "logSoftmax", inputs: [x], attrs: { axis: a } }, x.shape, "f32");
}

function checkChannelVectors(op: string, x: Tensor, vecs: [string, Tensor][], eps: number): void {
  requireRank(op, "input", x, 4, { eps }, [["input", x], ...vecs]);
  const c = x.shape[1]!;
  for (const [name, v] of vecs) {
    if (v.rank !== 1 || v.shape[0] !== c) fail(op, [["input", x], ...vecs], { eps }, `${name} must be [${c}]`);
  }
}

/**
 * Batch norm with fixed statistics (PyTorch eval mode):
 *   y = (x - mean[c]) / sqrt(var[c] + eps) * weight[c] + bias[c]
 */
export function batchNormEval(x: F32<4>, weight: F32<1>, bias: F32<1>, runningMean: F32<1>, runningVar: F32<1>, eps = 1e-5): F32<4> {
  checkChannelVectors("batchNormEval", x, [["weight", weight], ["bias", bias], ["runningMean", runningMean], ["runningVar", runningVar]], eps);
  return node({ op: "batchNormEval", inputs: [x, weight, bias, runningMean, runningVar], attrs: { eps } }, x.shape, "f32");
}

/**
 * Batch norm with batch statistics (PyTorch train mode), per channel c over n, h, w (M values):
 *   mu = mean x,  var = mean (x - mu)^2 (biased),  y = (x - mu) / sqrt(var + eps) * weight + bias.
 * The running-statistics update is a separate expression (nn.ts: batchNorm2d).
 */
export function batchNormTrain(x: F32<4>, weight: F32<1>, bias: F32<1>, eps = 1e-5): F32<4> {
  checkChannelVectors("batchNormTrain", x, [["weight", weight], ["bias", bias]], eps);
  const m = x.shape[0]! * x.shape[2]! * x.shape[3]!;
  if (m < 2) fail("batchNormTrain", [["input", x], ["weight", weight], ["bias", bias]], { eps }, "needs more than one value per channel");
  return node({ op: "batchNormTrain", inputs: [x, weight, bias], attrs: { eps } }, x.shape, "f32");
}

function checkCrossEntropy(op: string, logits: Tensor, labels: Tensor, ignoreIndex: number): void {
  const operands: [string, Tensor][] = [["logits", logits], ["labels", labels]];
  requireDType(op, "logits", logits, ["f32"], operands, { ignoreIndex });
  requireDType(op, "labels", labels, ["i32"], operands, { ignoreIndex });
  const expected = [logits.shape[0], ...logits.shape.slice(2)];
  if (logits.rank < 2 || !sameShape(expected as number[], labels.shape)) {
    fail(op, operands, { ignoreIndex }, "labels must be logits' shape without the class axis 1");
  }
}

/**
 * Softmax cross-entropy over the class axis 1, PyTorch's CrossEntropyLoss(ignore_index):
 *   loss = sum_{p valid} -log softmax(x_p)[label_p] / #valid,  valid = label != ignoreIndex,
 * and 0 (not NaN) when no pixel is valid, as the official CrossEntropy2d. A label outside
 * [0, C) that is not ignoreIndex counts as invalid.
 */
export function softmaxCrossEntropy(logits: F32, labels: I32, opts: { readonly ignoreIndex?: number } = {}): F32<0> {
  const ignoreIndex = opts.ignoreIndex ?? 255;
  checkCrossEntropy("softmaxCrossEntropy", logits, labels, ignoreIndex);
  return node({ op: "softmaxCrossEntropy", inputs: [logits, labels], attrs: { ignoreIndex } }, [], "f32");
}

/** d softmaxCrossEntropy / d logits = (softmax(x) - onehot(label)) * valid / max(#valid, 1). */
export function softmaxCrossEntropyGrad(logits: F32, labels: I32, opts: { readonly ignoreIndex?: number } = {}): F32 {
  const ignoreIndex = opts.ignoreIndex ?? 255;
  checkCrossEntropy("softmaxCrossEntropyGrad", logits, labels, ignoreIndex);
  return node({ op: "softmaxCrossEntropyGrad", inputs: [logits, labels], attrs: { ignoreIndex } }, logits.shape, "f32");
}

const f = (t: Tensor) => t as F32;
/** Per-channel vector [C] viewed as [1, C, 1, 1] so it broadcasts over NCHW. */
const perChannel = (v: Tensor) => reshape(f(v), [1, v.shape[0]!, 1, 1]);
const sumNHW = (t: Tensor) => sum(f(t), [0, 2, 3]);
const KEEP = { keepdims: true } as const;

export const NORMALIZATION_OPS = {
  // dx = y (dy - sum(dy y))
  softmax: {
    evaluate: (n, [x], out) => softmaxInto(x!.data, x!.shape, n.attrs.axis, false, out),
    vjp: (n, dy, y) => [mul(f(y), sub(dy, sum(mul(dy, f(y)), [n.attrs.axis], KEEP)))],
    lowering: { kind: "template", operands: "expressions", epilogue: true },
    gradcheck: { kind: "cases" },
  },
  // dx = dy - e^y sum(dy)
  logSoftmax: {
    evaluate: (n, [x], out) => softmaxInto(x!.data, x!.shape, n.attrs.axis, true, out),
    vjp: (n, dy, y) => [sub(dy, mul(exp(f(y)), sum(dy, [n.attrs.axis], KEEP)))],
    lowering: { kind: "template", operands: "expressions", epilogue: true },
    gradcheck: { kind: "cases" },
  },
  // Eval-mode BN is an affine map per channel: y = (x - m) r w + b with r = (v + eps)^-1/2.
  //   dx = dy w r,  dw = sum dy (x - m) r,  db = sum dy,  dm = -sum dy w r,
  //   dv = sum dy w (x - m) (-1/2) r^3.
  // Codegen computes it inline, with per-channel operand loads.
  batchNormEval: {
    evaluate: (n, args, out) => batchNormInto(args.map((a) => a.data), args[0]!.shape, n.attrs.eps, false, out),
    vjp: (n, dy) => {
      const [x, w, , m, v] = n.inputs.map(f) as [F32, F32, F32, F32, F32];
      const r = rsqrt(add(v, n.attrs.eps));
      const xc = sub(x, perChannel(m));
      const dxhat = mul(dy, perChannel(mul(w, r)));
      return [
        dxhat,
        sumNHW(mul(dy, mul(xc, perChannel(r)))),
        sumNHW(dy),
        neg(sumNHW(dxhat)),
        sumNHW(mul(mul(dy, xc), perChannel(mul(w, mul(-0.5, mul(r, mul(r, r))))))),
      ];
    },
    lowering: {
      kind: "elementwise",
      wgsl: (c) => {
        const ch = [c.idx[1]!];
        const [x, w, b, m, v] = [c.arg(0), c.arg(1, ch), c.arg(2, ch), c.arg(3, ch), c.arg(4, ch)];
        return `(${x} - ${m}) * inverseSqrt(${v} + ${c.literal(c.node.attrs.eps, "f32")}) * ${w} + ${b}`;
      },
    },
    gradcheck: { kind: "cases" },
  },
  // Train-mode BN over M = N H W values per channel, xhat = (x - mu) r:
  //   dx = w r (dy - mean dy - xhat mean(dy xhat)),  dw = sum dy xhat,  db = sum dy.
  // Codegen decomposes it into mean, variance and an affine map, written exactly as this VJP
  // recomputes them, so common-subexpression elimination shares the statistics.
  batchNormTrain: {
    evaluate: (n, args, out) => batchNormInto(args.map((a) => a.data), args[0]!.shape, n.attrs.eps, true, out),
    vjp: (n, dy) => {
      const [x, w] = [f(n.inputs[0]!), f(n.inputs[1]!)];
      const xc = sub(x, mean(x, [0, 2, 3], KEEP));
      const r = rsqrt(add(mean(mul(xc, xc), [0, 2, 3], KEEP), n.attrs.eps));
      const xhat = mul(xc, r);
      const centred = sub(sub(dy, mean(dy, [0, 2, 3], KEEP)), mul(xhat, mean(mul(dy, xhat), [0, 2, 3], KEEP)));
      return [mul(mul(perChannel(w), r), centred), sumNHW(mul(dy, xhat)), sumNHW(dy)];
    },
    lowering: {
      kind: "decomposed",
      into: (n, [x, w, b]) => {
        const xc = sub(f(x!), mean(f(x!), [0, 2, 3], KEEP));
        const r = rsqrt(add(mean(mul(xc, xc), [0, 2, 3], KEEP), n.attrs.eps));
        const c = x!.shape[1]!;
        return add(mul(mul(xc, r), reshape(f(w!), [1, c, 1, 1])), reshape(f(b!), [1, c, 1, 1]));
      },
    },
    gradcheck: { kind: "cases" },
  },
  // The fused loss gradient (softmaxCrossEntropyGrad), scaled by the scalar dy.
  softmaxCrossEntropy: {
    evaluate: (n, [x, labels], out) => crossEntropyInto(x!.data, x!.shape, labels!.data, n.attrs.ignoreIndex, out, false),
    vjp: (n, dy) => [mul(softmaxCrossEntropyGrad(f(n.inputs[0]!), n.inputs[1]! as I32, n.attrs), dy), undefined],
    lowering: { kind: "template", operands: "expressions", epilogue: true },
    gradcheck: { kind: "cases" },
  },
  // Codegen decomposes it into the softmax template with an elementwise epilogue: a masked
  // one-hot difference scaled by 1 / max(#valid, 1).
  softmaxCrossEntropyGrad: {
    evaluate: (n, [x, labels], out) => crossEntropyInto(x!.data, x!.shape, labels!.data, n.attrs.ignoreIndex, out, true),
    vjp: NONDIFF,
    lowering: {
      kind: "decomposed",
      into: (n, [x, labels]) => {
        const ignore = n.attrs.ignoreIndex;
        const l = labels as I32;
        const c = x!.shape[1]!;
        const valid = and(ne(l, ignore), and(ge(l, 0), lt(l, c)));
        const count = sum(cast(valid, "f32"));
        const perPixel = [x!.shape[0]!, 1, ...x!.shape.slice(2)];
        const onehot = eq(iota(x!.shape, 1), reshape(l, perPixel));
        const diff = sub(softmax(f(x!), 1), cast(onehot, "f32"));
        return where(reshape(valid, perPixel), div(diff, maximum(count, 1)), 0);
      },
    },
    gradcheck: { kind: "none" },
  },
} satisfies { readonly [K in keyof NormalizationAttrs]: OpDef<K> };

function softmaxInto(x: Data, shape: readonly number[], axis: number, logarithm: boolean, out: Data): void {
  const n = shape[axis]!;
  const inner = numel(shape.slice(axis + 1));
  const outer = numel(shape.slice(0, axis));
  for (let o = 0; o < outer; o++)
    for (let i = 0; i < inner; i++) {
      const at = (k: number) => (o * n + k) * inner + i;
      let m = -Infinity;
      for (let k = 0; k < n; k++) m = Math.max(m, x[at(k)]!);
      let s = 0;
      for (let k = 0; k < n; k++) s += Math.exp(x[at(k)]! - m);
      for (let k = 0; k < n; k++) {
        const z = x[at(k)]! - m;
        out[at(k)] = logarithm ? z - Math.log(s) : Math.exp(z) / s;
      }
    }
}

function batchNormInto(args: readonly Data[], shape: readonly number[], eps: number, batchStats: boolean, out: Data): void {
  const [x, weight, bias] = args as [Data, Data, Data];
  const [N, C, H, W] = shape as [number, number, number, number];
  const hw = H * W;
  for (let c = 0; c < C; c++) {
    let mu: number;
    let variance: number;
    if (batchStats) {
      let s = 0;
      for (let n = 0; n < N; n++) for (let p = 0; p < hw; p++) s += x[(n * C + c) * hw + p]!;
      mu = s / (N * hw);
      let q = 0;
      for (let n = 0; n < N; n++) for (let p = 0; p < hw; p++) q += (x[(n * C + c) * hw + p]! - mu) ** 2;
      variance = q / (N * hw);
    } else {
      mu = args[3]![c]!;
      variance = args[4]![c]!;
    }
    const scale = weight[c]! / Math.sqrt(variance + eps);
    for (let n = 0; n < N; n++)
      for (let p = 0; p < hw; p++) {
        const i = (n * C + c) * hw + p;
        out[i] = (x[i]! - mu) * scale + bias[c]!;
      }
  }
}

/** Softmax cross-entropy (mean over valid pixels, 0 if none) or its gradient. */
function crossEntropyInto(x: Data, shape: readonly number[], labels: Data, ignore: number, out: Data, gradient: boolean): void {
  const N = shape[0]!;
  const C = shape[1]!;
  const inner = numel(shape.slice(2));
  const valid = (l: number) => l !== ignore && l >= 0 && l < C;
  let count = 0;
  for (let i = 0; i < labels.length; i++) if (valid(labels[i]!)) count++;
  let total = 0;
  for (let n = 0; n < N; n++)
    for (let p = 0; p < inner; p++) {
      const l = labels[n * inner + p]!;
      const at = (k: number) => (n * C + k) * inner + p;
      let m = -Infinity;
      for (let k = 0; k < C; k++) m = Math.max(m, x[at(k)]!);
      let s = 0;
      for (let k = 0; k < C; k++) s += Math.exp(x[at(k)]! - m);
      if (gradient) {
        for (let k = 0; k < C; k++) out[at(k)] = valid(l) ? (Math.exp(x[at(k)]! - m) / s - (k === l ? 1 : 0)) / count : 0;
      } else if (valid(l)) {
        total += Math.log(s) + m - x[at(l)]!;
      }
    }
  if (!gradient) out[0] = count > 0 ? total / count : 0;
}
