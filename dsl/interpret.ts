// The reference interpreter: evaluates any graph on the CPU, in float64 or in float32.
//
// This is the specification that generated kernels are tested against, so it is written to be
// obviously right, not fast: one plain loop nest per op, index arithmetic spelled out. In
// "f32" precision every stored f32 value is rounded to single precision (a Float32Array), which
// mirrors what the GPU stores; accumulations inside one op run in float64 in both modes.

import { tapIndex } from "../format/conv-geometry";
import { type DType, type Node, type Shape, type Tensor, numel, stridesOf, topoSort } from "./ir";

export type Precision = "f64" | "f32";
export type Data = Float64Array | Float32Array | Int32Array | Uint8Array;

export interface Value {
  readonly shape: Shape;
  readonly dtype: DType;
  readonly data: Data;
}

export type Feeds = ReadonlyMap<string, ArrayLike<number>> | Readonly<Record<string, ArrayLike<number>>>;

export class MissingInputError extends Error {
  constructor(readonly inputName: string, readonly role: string, readonly shape: Shape) {
    super(`no value fed for ${role} "${inputName}" of shape [${shape.join(",")}]`);
    this.name = "MissingInputError";
  }
}

function alloc(dtype: DType, n: number, precision: Precision): Data {
  switch (dtype) {
    case "f32":
      return precision === "f64" ? new Float64Array(n) : new Float32Array(n);
    case "i32":
      return new Int32Array(n);
    case "bool":
      return new Uint8Array(n);
    default: {
      const never: never = dtype;
      throw new Error(`unknown dtype ${String(never)}`);
    }
  }
}

function lookup(feeds: Feeds, name: string): ArrayLike<number> | undefined {
  return feeds instanceof Map ? feeds.get(name) : (feeds as Record<string, ArrayLike<number>>)[name];
}

/**
 * Evaluates `outputs` given values for every reachable `input` node (by name). Returns the
 * values in the order of `outputs`.
 */
export function evaluate(outputs: readonly Tensor[], feeds: Feeds, precision: Precision = "f64"): Value[] {
  const values = new Map<number, Value>();
  for (const t of topoSort(outputs)) {
    const args = t.node.inputs.map((i) => values.get(i.id)!);
    const data = alloc(t.dtype, numel(t.shape), precision);
    if (t.node.op === "input") {
      const fed = lookup(feeds, t.node.attrs.name);
      if (fed === undefined) throw new MissingInputError(t.node.attrs.name, t.node.attrs.role, t.shape);
      if (fed.length !== data.length) {
        throw new Error(
          `${t.node.attrs.role} "${t.node.attrs.name}" expects ${data.length} values for shape [${t.shape.join(",")}], got ${fed.length}`,
        );
      }
      data.set(fed);
    } else {
      run(t.node, t, args, data);
    }
    values.set(t.id, { shape: t.shape, dtype: t.dtype, data });
  }
  return outputs.map((o) => values.get(o.id)!);
}

/** Evaluates one scalar-valued tensor to a number. */
export function evaluateScalar(t: Tensor, feeds: Feeds, precision: Precision = "f64"): number {
  return evaluate([t], feeds, precision)[0]!.data[0]!;
}

// ---------------------------------------------------------------------------------------------
// The kernels. `out` is preallocated with the node's shape and dtype.

const UNARY: Record<string, (x: number, attrs: never) => number> = {
  neg: (x) => -x,
  abs: (x) => Math.abs(x),
  sign: (x) => (x > 0 ? 1 : x < 0 ? -1 : 0), // PyTorch 1.13: (0 < x) - (x < 0), 0 for NaN
  exp: (x) => Math.exp(x),
  log: (x) => Math.log(x),
  log1p: (x) => Math.log1p(x),
  sqrt: (x) => Math.sqrt(x),
  rsqrt: (x) => 1 / Math.sqrt(x),
  // PyTorch's threshold: x <= 0 ? 0 : x, so relu(NaN) = NaN (x > 0 ? x : 0 would give 0).
  relu: (x) => (x <= 0 ? 0 : x),
  sigmoid: (x) => 1 / (1 + Math.exp(-x)),
  tanh: (x) => Math.tanh(x),
  not: (x) => (x ? 0 : 1),
};

const BINARY: Record<string, (a: number, b: number) => number> = {
  add: (a, b) => a + b,
  sub: (a, b) => a - b,
  mul: (a, b) => a * b,
  div: (a, b) => a / b,
  pow: (a, b) => Math.pow(a, b),
  maximum: (a, b) => (Number.isNaN(a) || Number.isNaN(b) ? NaN : a >= b ? a : b),
  minimum: (a, b) => (Number.isNaN(a) || Number.isNaN(b) ? NaN : a <= b ? a : b),
  lt: (a, b) => (a < b ? 1 : 0),
  le: (a, b) => (a <= b ? 1 : 0),
  gt: (a, b) => (a > b ? 1 : 0),
  ge: (a, b) => (a >= b ? 1 : 0),
  eq: (a, b) => (a === b ? 1 : 0),
  ne: (a, b) => (a !== b ? 1 : 0),
  and: (a, b) => (a && b ? 1 : 0),
  or: (a, b) => (a || b ? 1 : 0),
};

const saturateI32 = (v: number): number => (Number.isNaN(v) ? 0 : Math.min(2147483647, Math.max(-2147483648, Math.trunc(v))));

/** Integer results of i32 arithmetic wrap like the GPU's two's complement. */
const wrapI32 = (v: number): number => v | 0;

function run(node: Node, t: Tensor, args: Value[], out: Data): void {
  const x = args[0]!;
  switch (node.op) {
    case "input":
      return; // handled by evaluate
    case "constant":
      out[0] = node.attrs.value;
      return;
    case "iota": {
      const st = stridesOf(t.shape);
      const axis = node.attrs.axis;
      for (let i = 0; i < out.length; i++) out[i] = Math.floor(i / st[axis]!) % t.shape[axis]!;
      return;
    }
    case "neg":
    case "abs":
    case "sign":
    case "exp":
    case "log":
    case "log1p":
    case "sqrt":
    case "rsqrt":
    case "relu":
    case "sigmoid":
    case "tanh":
    case "not": {
      const f = UNARY[node.op]!;
      const wrap = t.dtype === "i32" ? wrapI32 : (v: number) => v;
      for (let i = 0; i < out.length; i++) out[i] = wrap(f(x.data[i]!, undefined as never));
      return;
    }
    case "leakyRelu": {
      const s = node.attrs.slope;
      for (let i = 0; i < out.length; i++) {
        const v = x.data[i]!;
        out[i] = v > 0 ? v : s * v;
      }
      return;
    }
    case "cast": {
      const to = node.attrs.to;
      for (let i = 0; i < out.length; i++) {
        const v = x.data[i]!;
        // f32 -> i32 truncates toward zero and saturates (WGSL's i32(f32); NaN gives 0).
        out[i] = to === "bool" ? (v !== 0 ? 1 : 0) : to === "i32" ? saturateI32(v) : v;
      }
      return;
    }
    case "add":
    case "sub":
    case "mul":
    case "div":
    case "pow":
    case "maximum":
    case "minimum":
    case "lt":
    case "le":
    case "gt":
    case "ge":
    case "eq":
    case "ne":
    case "and":
    case "or": {
      const f = BINARY[node.op]!;
      const b = args[1]!.data;
      const wrap = t.dtype === "i32" ? wrapI32 : (v: number) => v;
      for (let i = 0; i < out.length; i++) out[i] = wrap(f(x.data[i]!, b[i]!));
      return;
    }
    case "where": {
      const [c, a, b] = args as [Value, Value, Value];
      for (let i = 0; i < out.length; i++) out[i] = c.data[i] ? a.data[i]! : b.data[i]!;
      return;
    }
    case "sum":
    case "mean":
    case "max":
      return reduce(node.op, x, node.attrs.axes, out);
    case "argmax":
      return argmaxKernel(x, node.attrs.axis, out);
    case "reshape":
    case "stopGradient":
      out.set(x.data);
      return;
    case "permute":
      return permuteKernel(x, node.attrs.perm, t.shape, out);
    case "broadcastTo":
      return broadcastKernel(x, t.shape, out);
    case "slice":
      return sliceKernel(x, node.attrs.starts, t.shape, out);
    case "pad":
      return padKernel(x, node.attrs.pads, node.attrs.value, t.shape, out);
    case "concat":
      return concatKernel(args, node.attrs.axis, t.shape, out);
    case "conv2d":
      return conv2dKernel(x, args[1]!, args[2], node.attrs, t.shape, out);
    case "conv2dInputGrad":
      return conv2dInputGradKernel(x, args[1]!, node.attrs, t.shape, out);
    case "conv2dWeightGrad":
      return conv2dWeightGradKernel(x, args[1]!, node.attrs, t.shape, out);
    case "maxPool2d":
      return maxPoolKernel(x, undefined, node.attrs, t.shape, out);
    case "maxPool2dGrad":
      return maxPoolKernel(x, args[1]!, node.attrs, args[1]!.shape, out);
    case "resize":
      return resizeKernel(x, node.attrs.alignCorners, t.shape, out, false);
    case "resizeGrad":
      return resizeKernel(x, node.attrs.alignCorners, t.shape, out, true);
    case "softmax":
    case "logSoftmax":
      return softmaxKernel(x, node.attrs.axis, node.op === "logSoftmax", out);
    case "batchNormEval":
      return batchNormKernel(args, node.attrs.eps, false, out);
    case "batchNormTrain":
      return batchNormKernel(args, node.attrs.eps, true, out);
    case "matmul":
      return matmulKernel(x, args[1]!, out);
    case "softmaxCrossEntropy":
      return crossEntropyKernel(x, args[1]!, node.attrs.ignoreIndex, out, false);
    case "softmaxCrossEntropyGrad":
      return crossEntropyKernel(x, args[1]!, node.attrs.ignoreIndex, out, true);
    default: {
      const never: never = node;
      throw new Error(`interpreter: unknown op ${(never as Node).op}`);
    }
  }
}

/** Calls `f(flatIndex, multiIndex)` for every element of `shape` in row-major order. */
function forEachIndex(shape: Shape, f: (flat: number, idx: number[]) => void): void {
  const n = numel(shape);
  const idx = new Array<number>(shape.length).fill(0);
  for (let flat = 0; flat < n; flat++) {
    f(flat, idx);
    for (let a = shape.length - 1; a >= 0; a--) {
      if (++idx[a]! < shape[a]!) break;
      idx[a] = 0;
    }
  }
}

function reduce(op: "sum" | "mean" | "max", x: Value, axes: readonly number[], out: Data): void {
  // Output index = input index with the reduced axes dropped (keepdims only changes the shape).
  const keptShape = x.shape.filter((_, i) => !axes.includes(i));
  const keptStrides = stridesOf(keptShape);
  const acc = new Float64Array(out.length).fill(op === "max" ? -Infinity : 0);
  const count = numel(axes.map((a) => x.shape[a]!));
  forEachIndex(x.shape, (flat, idx) => {
    let o = 0;
    let k = 0;
    for (let a = 0; a < idx.length; a++) if (!axes.includes(a)) o += idx[a]! * keptStrides[k++]!;
    const v = x.data[flat]!;
    if (op === "max") acc[o] = Number.isNaN(v) || Number.isNaN(acc[o]!) ? NaN : Math.max(acc[o]!, v);
    else acc[o]! += v;
  });
  for (let i = 0; i < out.length; i++) out[i] = op === "mean" ? acc[i]! / count : acc[i]!;
}

function argmaxKernel(x: Value, axis: number, out: Data): void {
  const n = x.shape[axis]!;
  const inner = numel(x.shape.slice(axis + 1));
  const outer = numel(x.shape.slice(0, axis));
  for (let o = 0; o < outer; o++) {
    for (let i = 0; i < inner; i++) {
      let best = -Infinity;
      let arg = 0;
      for (let k = 0; k < n; k++) {
        const v = x.data[(o * n + k) * inner + i]!;
        if (v > best || (Number.isNaN(v) && !Number.isNaN(best))) {
          best = v;
          arg = k;
        }
      }
      out[o * inner + i] = arg;
    }
  }
}

function permuteKernel(x: Value, perm: readonly number[], shape: Shape, out: Data): void {
  const xs = stridesOf(x.shape);
  forEachIndex(shape, (flat, idx) => {
    let src = 0;
    for (let k = 0; k < perm.length; k++) src += idx[k]! * xs[perm[k]!]!;
    out[flat] = x.data[src]!;
  });
}

function broadcastKernel(x: Value, shape: Shape, out: Data): void {
  const xs = stridesOf(x.shape).map((s, i) => (x.shape[i] === 1 ? 0 : s));
  forEachIndex(shape, (flat, idx) => {
    let src = 0;
    for (let a = 0; a < idx.length; a++) src += idx[a]! * xs[a]!;
    out[flat] = x.data[src]!;
  });
}

function sliceKernel(x: Value, starts: readonly number[], shape: Shape, out: Data): void {
  const xs = stridesOf(x.shape);
  forEachIndex(shape, (flat, idx) => {
    let src = 0;
    for (let a = 0; a < idx.length; a++) src += (idx[a]! + starts[a]!) * xs[a]!;
    out[flat] = x.data[src]!;
  });
}

function padKernel(x: Value, pads: readonly (readonly [number, number])[], value: number, shape: Shape, out: Data): void {
  const xs = stridesOf(x.shape);
  forEachIndex(shape, (flat, idx) => {
    let src = 0;
    for (let a = 0; a < idx.length; a++) {
      const i = idx[a]! - pads[a]![0];
      if (i < 0 || i >= x.shape[a]!) {
        out[flat] = value;
        return;
      }
      src += i * xs[a]!;
    }
    out[flat] = x.data[src]!;
  });
}

function concatKernel(args: Value[], axis: number, shape: Shape, out: Data): void {
  const os = stridesOf(shape);
  let offset = 0;
  for (const v of args) {
    forEachIndex(v.shape, (flat, idx) => {
      let dst = 0;
      for (let a = 0; a < idx.length; a++) dst += (idx[a]! + (a === axis ? offset : 0)) * os[a]!;
      out[dst] = v.data[flat]!;
    });
    offset += v.shape[axis]!;
  }
}

type Conv = { stride: readonly [number, number]; padding: readonly [number, number]; dilation: readonly [number, number] };

/** Visits every (output position, tap) pair of a convolution whose input position is in range. */
function forEachTap(
  xShape: Shape,
  wShape: Shape,
  yShape: Shape,
  a: Conv,
  f: (n: number, o: number, c: number, yIdx: number, xIdx: number, wIdx: number) => void,
): void {
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
                f(n, o, c, yIdx, ((n * C + c) * H + h) * W + w, ((o * C + c) * KH + u) * KW + v);
              }
            }
        }
}

function conv2dKernel(x: Value, w: Value, b: Value | undefined, a: Conv, shape: Shape, out: Data): void {
  const acc = new Float64Array(out.length);
  forEachTap(x.shape, w.shape, shape, a, (_n, _o, _c, yi, xi, wi) => {
    acc[yi]! += x.data[xi]! * w.data[wi]!;
  });
  const [, O, OH, OW] = shape as [number, number, number, number];
  for (let i = 0; i < out.length; i++) out[i] = acc[i]! + (b ? b.data[Math.floor(i / (OH * OW)) % O]! : 0);
}

function conv2dInputGradKernel(dy: Value, w: Value, a: Conv, shape: Shape, out: Data): void {
  const acc = new Float64Array(out.length);
  forEachTap(shape, w.shape, dy.shape, a, (_n, _o, _c, yi, xi, wi) => {
    acc[xi]! += dy.data[yi]! * w.data[wi]!;
  });
  out.set(acc);
}

function conv2dWeightGradKernel(x: Value, dy: Value, a: Conv, shape: Shape, out: Data): void {
  const acc = new Float64Array(out.length);
  forEachTap(x.shape, shape, dy.shape, a, (_n, _o, _c, yi, xi, wi) => {
    acc[wi]! += dy.data[yi]! * x.data[xi]!;
  });
  out.set(acc);
}

type Pool = { kernel: readonly [number, number]; stride: readonly [number, number]; padding: readonly [number, number] };

/**
 * Max pooling; with `dy`, its gather-form gradient. As PyTorch's CPU and CUDA kernels, the
 * scan takes an element when `val > best || isNaN(val)`: the window's first maximum, or its
 * last NaN, receives that window's dy, and the maximum is NaN over a NaN.
 */
function maxPoolKernel(x: Value, dy: Value | undefined, a: Pool, yShape: Shape, out: Data): void {
  const [N, C, H, W] = x.shape as [number, number, number, number];
  const [, , OH, OW] = yShape as [number, number, number, number];
  const acc = dy ? new Float64Array(out.length) : undefined;
  for (let nc = 0; nc < N * C; nc++)
    for (let i = 0; i < OH; i++)
      for (let j = 0; j < OW; j++) {
        let best = -Infinity;
        let arg = -1;
        for (let u = 0; u < a.kernel[0]; u++) {
          const h = i * a.stride[0] - a.padding[0] + u;
          if (h < 0 || h >= H) continue;
          for (let v = 0; v < a.kernel[1]; v++) {
            const w = j * a.stride[1] - a.padding[1] + v;
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

/**
 * Source index and weight of bilinear interpolation along one axis (see ops.ts: resize).
 * PyTorch computes the scale and the source coordinate in float32 (opmath of float), and so
 * does the GPU; `fround` reproduces that arithmetic exactly, so taps agree to the bit.
 */
export function linearTaps(inSize: number, outSize: number, alignCorners: boolean) {
  const i0 = new Int32Array(outSize);
  const i1 = new Int32Array(outSize);
  const l = new Float64Array(outSize);
  const f = Math.fround;
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

/** Bilinear resize, or (adjoint) its transpose, scattering dy back over the same taps. */
function resizeKernel(x: Value, alignCorners: boolean, outShape: Shape, out: Data, adjoint: boolean): void {
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

function softmaxKernel(x: Value, axis: number, logarithm: boolean, out: Data): void {
  const n = x.shape[axis]!;
  const inner = numel(x.shape.slice(axis + 1));
  const outer = numel(x.shape.slice(0, axis));
  for (let o = 0; o < outer; o++)
    for (let i = 0; i < inner; i++) {
      const at = (k: number) => (o * n + k) * inner + i;
      let m = -Infinity;
      for (let k = 0; k < n; k++) m = Math.max(m, x.data[at(k)]!);
      let s = 0;
      for (let k = 0; k < n; k++) s += Math.exp(x.data[at(k)]! - m);
      for (let k = 0; k < n; k++) {
        const z = x.data[at(k)]! - m;
        out[at(k)] = logarithm ? z - Math.log(s) : Math.exp(z) / s;
      }
    }
}

function batchNormKernel(args: Value[], eps: number, batchStats: boolean, out: Data): void {
  const [x, weight, bias] = args as [Value, Value, Value];
  const [N, C, H, W] = x.shape as [number, number, number, number];
  const hw = H * W;
  for (let c = 0; c < C; c++) {
    let mu: number;
    let variance: number;
    if (batchStats) {
      let s = 0;
      for (let n = 0; n < N; n++) for (let p = 0; p < hw; p++) s += x.data[(n * C + c) * hw + p]!;
      mu = s / (N * hw);
      let q = 0;
      for (let n = 0; n < N; n++) for (let p = 0; p < hw; p++) q += (x.data[(n * C + c) * hw + p]! - mu) ** 2;
      variance = q / (N * hw);
    } else {
      mu = args[3]!.data[c]!;
      variance = args[4]!.data[c]!;
    }
    const scale = weight.data[c]! / Math.sqrt(variance + eps);
    for (let n = 0; n < N; n++)
      for (let p = 0; p < hw; p++) {
        const i = (n * C + c) * hw + p;
        out[i] = (x.data[i]! - mu) * scale + bias.data[c]!;
      }
  }
}

function matmulKernel(a: Value, b: Value, out: Data): void {
  const [M, K] = a.shape as [number, number];
  const N = b.shape[1]!;
  for (let i = 0; i < M; i++)
    for (let j = 0; j < N; j++) {
      let s = 0;
      for (let k = 0; k < K; k++) s += a.data[i * K + k]! * b.data[k * N + j]!;
      out[i * N + j] = s;
    }
}

/** Softmax cross-entropy (mean over valid pixels, 0 if none) or its gradient. */
function crossEntropyKernel(x: Value, labels: Value, ignore: number, out: Data, gradient: boolean): void {
  const N = x.shape[0]!;
  const C = x.shape[1]!;
  const inner = numel(x.shape.slice(2));
  const valid = (l: number) => l !== ignore && l >= 0 && l < C;
  let count = 0;
  for (let i = 0; i < labels.data.length; i++) if (valid(labels.data[i]!)) count++;
  let total = 0;
  for (let n = 0; n < N; n++)
    for (let p = 0; p < inner; p++) {
      const l = labels.data[n * inner + p]!;
      const at = (k: number) => (n * C + k) * inner + p;
      let m = -Infinity;
      for (let k = 0; k < C; k++) m = Math.max(m, x.data[at(k)]!);
      let s = 0;
      for (let k = 0; k < C; k++) s += Math.exp(x.data[at(k)]! - m);
      if (gradient) {
        for (let k = 0; k < C; k++) {
          out[at(k)] = valid(l) ? (Math.exp(x.data[at(k)]! - m) / s - (k === l ? 1 : 0)) / count : 0;
        }
      } else if (valid(l)) {
        total += Math.log(s) + m - x.data[at(l)]!;
      }
    }
  if (!gradient) out[0] = count > 0 ? total / count : 0;
}
