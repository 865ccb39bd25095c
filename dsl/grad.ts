// Reverse-mode autodiff, ahead of time: the gradient is another graph of DSL ops.
//
// VJP is the derivative table: one short entry per op mapping (node, output cotangent dy,
// output) to the cotangents of its inputs, written in DSL ops. `undefined` means "no gradient
// flows to this input" (labels, masks, detached values); an op marked NONDIFF passes nothing.
// `grad` walks the graph backwards once, summing the cotangents of values used more than once.

import { type F32, GRAD_SCOPE, type NodeOf, type OpName, type Pair, type Tensor, numel, topoSort, withExactScope } from "./ir";
import * as op from "./ops";

type Cotangents = readonly (Tensor | undefined)[];
type Rule<K extends OpName> = (n: NodeOf<K>, dy: F32, out: Tensor) => Cotangents;

const f4 = (t: Tensor) => t as F32<4>;
const f2 = (t: Tensor) => t as F32<2>;
const f = (t: Tensor) => t as F32;

/** Per-channel vector [C] viewed as [1, C, 1, 1] so it broadcasts over NCHW. */
const perChannel = (v: Tensor) => op.reshape(f(v), [1, v.shape[0]!, 1, 1]);
const sumNHW = (t: Tensor) => op.sum(f(t), [0, 2, 3]);

/** Expands a reduced cotangent back over the reduced axes (reshape to keepdims, broadcast). */
function unreduce(dy: F32, x: Tensor, axes: readonly number[]): F32 {
  const kept = x.shape.map((d, i) => (axes.includes(i) ? 1 : d));
  return op.broadcastTo(op.reshape(dy, kept), x.shape);
}

/** The adjoint of slicing: zero padding back to the input shape. */
function unslice(dy: F32, x: Tensor, starts: readonly number[], ends: readonly number[]): F32 {
  return op.pad(dy, starts.map((s, i): Pair => [s, x.shape[i]! - ends[i]!]));
}

const sliceAxis = (t: F32, axis: number, from: number, to: number): F32 =>
  op.slice(t, t.shape.map((_, i) => (i === axis ? from : 0)), t.shape.map((d, i) => (i === axis ? to : d)));

const NONDIFF = "nondifferentiable" as const;

/** d(input_i) given dy, for every op. */
export const VJP: { readonly [K in OpName]: Rule<K> | typeof NONDIFF } = {
  input: NONDIFF,
  constant: NONDIFF,
  iota: NONDIFF,
  sign: NONDIFF,
  not: NONDIFF,
  cast: NONDIFF, // only f32 -> f32 would carry a gradient, and the builder elides that cast
  lt: NONDIFF,
  le: NONDIFF,
  gt: NONDIFF,
  ge: NONDIFF,
  eq: NONDIFF,
  ne: NONDIFF,
  and: NONDIFF,
  or: NONDIFF,
  argmax: NONDIFF,
  stopGradient: NONDIFF,
  maxPool2dGrad: NONDIFF, // piecewise constant in x; second-order pooling is not needed
  softmaxCrossEntropyGrad: NONDIFF,

  // d(-x) = -dy;  d|x| = sign(x) dy;  d e^x = e^x dy;  d ln x = dy / x;  d ln(1+x) = dy / (1+x)
  neg: (_n, dy) => [op.neg(dy)],
  abs: (n, dy) => [op.mul(dy, op.sign(f(n.inputs[0]!)))],
  exp: (_n, dy, y) => [op.mul(dy, f(y))],
  log: (n, dy) => [op.div(dy, f(n.inputs[0]!))],
  log1p: (n, dy) => [op.div(dy, op.add(f(n.inputs[0]!), 1))],
  // d sqrt x = dy / (2 sqrt x);  d x^-1/2 = -1/2 x^-3/2 dy = -1/2 y^3 dy
  sqrt: (_n, dy, y) => [op.div(op.mul(dy, 0.5), f(y))],
  rsqrt: (_n, dy, y) => [op.mul(dy, op.mul(-0.5, op.mul(f(y), op.mul(f(y), f(y)))))],
  // ReLU passes dy except where y <= 0 (PyTorch's threshold_backward): where x is NaN too,
  // as PyTorch. y <= 0 exactly when x <= 0, and y is what backward keeps.
  relu: (_n, dy, y) => [op.where(op.le(f(y), 0), 0, dy)],
  // For slope > 0, y > 0 exactly when x > 0, so the mask can come from the saved output.
  // Written as dy * slope-or-1 so dy is read once: the input-gradient producing dy can then
  // take the whole rule as its epilogue.
  leakyRelu: (n, dy, y) => [
    op.mul(dy, op.add(op.mul(op.cast(op.gt(n.attrs.slope > 0 ? f(y) : f(n.inputs[0]!), 0), "f32"), 1 - n.attrs.slope), n.attrs.slope)),
  ],
  // d sigmoid = y (1 - y) dy;  d tanh = (1 - y^2) dy
  sigmoid: (_n, dy, y) => [op.mul(dy, op.mul(f(y), op.sub(1, f(y))))],
  tanh: (_n, dy, y) => [op.mul(dy, op.sub(1, op.mul(f(y), f(y))))],

  add: (_n, dy) => [dy, dy],
  sub: (_n, dy) => [dy, op.neg(dy)],
  // d(ab) = b dy, a dy;  d(a/b) = dy/b, -dy a/b^2 = -dy y/b
  mul: (n, dy) => [op.mul(dy, f(n.inputs[1]!)), op.mul(dy, f(n.inputs[0]!))],
  div: (n, dy, y) => [op.div(dy, f(n.inputs[1]!)), op.neg(op.div(op.mul(dy, f(y)), f(n.inputs[1]!)))],
  // d a^b = b a^(b-1) dy, a^b ln(a) dy
  pow: (n, dy, y) => {
    const [a, b] = [f(n.inputs[0]!), f(n.inputs[1]!)];
    return [op.mul(dy, op.mul(b, op.pow(a, op.sub(b, 1)))), op.mul(dy, op.mul(f(y), op.log(a)))];
  },
  // The larger operand takes the gradient; ties go to the first operand. An operand loses dy
  // only to a comparison that holds, so when either is NaN both take dy, as in PyTorch.
  maximum: (n, dy) => {
    const [a, b] = [f(n.inputs[0]!), f(n.inputs[1]!)];
    return [op.where(op.lt(a, b), 0, dy), op.where(op.ge(a, b), 0, dy)];
  },
  minimum: (n, dy) => {
    const [a, b] = [f(n.inputs[0]!), f(n.inputs[1]!)];
    return [op.where(op.gt(a, b), 0, dy), op.where(op.le(a, b), 0, dy)];
  },
  where: (n, dy) => {
    const c = n.inputs[0]! as Tensor<number, "bool">;
    return [undefined, op.where(c, dy, 0), op.where(c, 0, dy)];
  },

  // Reductions: the cotangent is spread back over the reduced axes.
  sum: (n, dy) => [unreduce(dy, n.inputs[0]!, n.attrs.axes)],
  mean: (n, dy) => {
    const x = n.inputs[0]!;
    const count = numel(n.attrs.axes.map((a) => x.shape[a]!));
    return [op.div(unreduce(dy, x, n.attrs.axes), count)];
  },
  // amax: tied maxima share the gradient equally, (dy / #ties) * mask as PyTorch writes it,
  // so a group whose maximum is NaN (no element equals it: 0 ties) gets NaN everywhere.
  max: (n, dy, y) => {
    const x = f(n.inputs[0]!);
    const mask = op.cast(op.eq(x, unreduce(f(y), x, n.attrs.axes)), "f32");
    const ties = op.sum(mask, n.attrs.axes, { keepdims: true });
    return [op.mul(op.div(unreduce(dy, x, n.attrs.axes), ties), mask)];
  },

  // Views move the cotangent back the other way.
  reshape: (n, dy) => [op.reshape(dy, n.inputs[0]!.shape)],
  permute: (n, dy) => {
    const inverse = n.attrs.perm.map((_, i) => n.attrs.perm.indexOf(i));
    return [op.permute(dy, inverse)];
  },
  // Broadcasting repeated axes of length 1: their cotangent is the sum over the repeats.
  broadcastTo: (n, dy) => {
    const x = n.inputs[0]!;
    const axes = x.shape.flatMap((d, i) => (d === 1 && n.attrs.shape[i] !== 1 ? [i] : []));
    return [op.sum(dy, axes, { keepdims: true })];
  },
  slice: (n, dy) => [unslice(dy, n.inputs[0]!, n.attrs.starts, n.attrs.ends)],
  pad: (n, dy) => {
    const x = n.inputs[0]!;
    return [op.slice(dy, n.attrs.pads.map((p) => p[0]), n.attrs.pads.map((p, i) => p[0] + x.shape[i]!))];
  },
  concat: (n, dy) => {
    let at = 0;
    return n.inputs.map((x) => {
      const part = sliceAxis(dy, n.attrs.axis, at, at + x.shape[n.attrs.axis]!);
      at += x.shape[n.attrs.axis]!;
      return part;
    });
  },

  // Convolution: the transposition algebra. With y = conv(x, w):
  //   dx = conv2dInputGrad(dy, w),  dw = conv2dWeightGrad(x, dy),  db = sum_{n,h,w} dy.
  // Both gradient ops are bilinear, so their own VJPs are the other two ops of the triple.
  conv2d: (n, dy) => {
    const [x, w] = [f4(n.inputs[0]!), f4(n.inputs[1]!)];
    const size: Pair = [x.shape[2]!, x.shape[3]!];
    const kernel: Pair = [w.shape[2]!, w.shape[3]!];
    return [
      op.conv2dInputGrad(f4(dy), w, size, n.attrs),
      op.conv2dWeightGrad(x, f4(dy), kernel, n.attrs),
      n.inputs.length > 2 ? sumNHW(dy) : undefined,
    ];
  },
  // z = conv2dInputGrad(g, w):  dg = conv2d(dz, w),  dw = conv2dWeightGrad(dz, g)
  conv2dInputGrad: (n, dz) => {
    const [g, w] = [f4(n.inputs[0]!), f4(n.inputs[1]!)];
    return [op.conv2d(f4(dz), w, undefined, n.attrs), op.conv2dWeightGrad(f4(dz), g, [w.shape[2]!, w.shape[3]!], n.attrs)];
  },
  // z = conv2dWeightGrad(x, g):  dx = conv2dInputGrad(g, dz),  dg = conv2d(x, dz)
  conv2dWeightGrad: (n, dz) => {
    const [x, g] = [f4(n.inputs[0]!), f4(n.inputs[1]!)];
    return [op.conv2dInputGrad(g, f4(dz), [x.shape[2]!, x.shape[3]!], n.attrs), op.conv2d(x, f4(dz), undefined, n.attrs)];
  },
  maxPool2d: (n, dy) => [op.maxPool2dGrad(f4(n.inputs[0]!), f4(dy), n.attrs)],
  // resize is linear: its VJP is its adjoint, and the adjoint's VJP is resize again.
  resize: (n, dy) => {
    const x = n.inputs[0]!;
    return [op.resizeGrad(f4(dy), [x.shape[2]!, x.shape[3]!], n.attrs)];
  },
  resizeGrad: (n, dz) => {
    const g = n.inputs[0]!;
    return [op.resize(f4(dz), [g.shape[2]!, g.shape[3]!], n.attrs)];
  },

  // softmax: dx = y (dy - sum(dy y));  log softmax: dx = dy - e^y sum(dy)
  softmax: (n, dy, y) => {
    const a = n.attrs.axis;
    return [op.mul(f(y), op.sub(dy, op.sum(op.mul(dy, f(y)), [a], { keepdims: true })))];
  },
  logSoftmax: (n, dy, y) => {
    const a = n.attrs.axis;
    return [op.sub(dy, op.mul(op.exp(f(y)), op.sum(dy, [a], { keepdims: true })))];
  },

  // Eval-mode BN is an affine map per channel: y = (x - m) r w + b with r = (v + eps)^-1/2.
  //   dx = dy w r,  dw = sum dy (x - m) r,  db = sum dy,  dm = -sum dy w r,
  //   dv = sum dy w (x - m) (-1/2) r^3.
  batchNormEval: (n, dy) => {
    const [x, w, , m, v] = n.inputs.map(f) as [F32, F32, F32, F32, F32];
    const r = op.rsqrt(op.add(v, n.attrs.eps));
    const xc = op.sub(x, perChannel(m));
    const dxhat = op.mul(dy, perChannel(op.mul(w, r)));
    return [
      dxhat,
      sumNHW(op.mul(dy, op.mul(xc, perChannel(r)))),
      sumNHW(dy),
      op.neg(sumNHW(dxhat)),
      sumNHW(op.mul(op.mul(dy, xc), perChannel(op.mul(w, op.mul(-0.5, op.mul(r, op.mul(r, r))))))),
    ];
  },
  // Train-mode BN over M = N H W values per channel, xhat = (x - mu) r:
  //   dx = w r (dy - mean dy - xhat mean(dy xhat)),  dw = sum dy xhat,  db = sum dy.
  batchNormTrain: (n, dy) => {
    const [x, w] = [f(n.inputs[0]!), f(n.inputs[1]!)];
    const keep = { keepdims: true } as const;
    const xc = op.sub(x, op.mean(x, [0, 2, 3], keep));
    const r = op.rsqrt(op.add(op.mean(op.mul(xc, xc), [0, 2, 3], keep), n.attrs.eps));
    const xhat = op.mul(xc, r);
    const centred = op.sub(op.sub(dy, op.mean(dy, [0, 2, 3], keep)), op.mul(xhat, op.mean(op.mul(dy, xhat), [0, 2, 3], keep)));
    return [op.mul(op.mul(perChannel(w), r), centred), sumNHW(op.mul(dy, xhat)), sumNHW(dy)];
  },
  // d(AB) = dy B^T, A^T dy
  matmul: (n, dy) => {
    const [a, b] = [f2(n.inputs[0]!), f2(n.inputs[1]!)];
    return [op.matmul(f2(dy), op.permute(b, [1, 0])), op.matmul(op.permute(a, [1, 0]), f2(dy))];
  },
  // The fused loss gradient (ops.ts: softmaxCrossEntropyGrad), scaled by the scalar dy.
  softmaxCrossEntropy: (n, dy) => {
    const [x, labels] = [f(n.inputs[0]!), n.inputs[1]! as Tensor<number, "i32">];
    return [op.mul(op.softmaxCrossEntropyGrad(x, labels, n.attrs), dy), undefined];
  },
};

export function isDifferentiable(name: OpName): boolean {
  return VJP[name] !== NONDIFF;
}

/**
 * Vector-Jacobian products of `outputs` (seeded with `cotangents`) with respect to `wrt`.
 * Only nodes on a path from some `wrt` to some output are differentiated; values behind a
 * stopGradient or of integer dtype carry no gradient. A `wrt` the outputs do not depend on
 * gets a zero tensor (a constant: it costs nothing).
 */
export function vjp(outputs: readonly F32[], cotangents: readonly F32[], wrt: readonly Tensor[]): F32[] {
  const order = topoSort(outputs);
  const wrtIds = new Set(wrt.map((t) => t.id));
  // Forward pass: which values depend (differentiably) on some wrt?
  const live = new Set<number>();
  for (const t of order) {
    if (t.dtype !== "f32") continue;
    if (wrtIds.has(t.id)) live.add(t.id);
    else if (VJP[t.node.op] !== NONDIFF && t.node.inputs.some((i) => live.has(i.id))) live.add(t.id);
  }
  const pending = new Map<number, F32[]>();
  const accumulate = (t: Tensor, g: F32) => {
    if (!live.has(t.id)) return;
    const list = pending.get(t.id);
    if (list) list.push(g);
    else pending.set(t.id, [g]);
  };
  outputs.forEach((o, i) => accumulate(o, cotangents[i]!));
  const total = (id: number): F32 | undefined => {
    const list = pending.get(id);
    return list?.reduce((a, b) => op.add(a, b));
  };
  for (let k = order.length - 1; k >= 0; k--) {
    const t = order[k]!;
    const rule = VJP[t.node.op];
    if (rule === NONDIFF) continue;
    const dy = total(t.id);
    if (dy === undefined) continue;
    pending.set(t.id, [dy]);
    const grads = withExactScope(`${GRAD_SCOPE}${t.scope}`, () => (rule as Rule<OpName>)(t.node as NodeOf<OpName>, dy, t));
    t.node.inputs.forEach((input, i) => {
      const g = grads[i];
      if (g !== undefined) accumulate(input, g as F32);
    });
  }
  return wrt.map((w) => total(w.id) ?? op.broadcastTo(op.scalar(0), w.shape));
}

/** d loss / d wrt for a scalar loss. */
export function grad(loss: F32<0>, wrt: readonly Tensor[]): F32[] {
  if (loss.rank !== 0 || loss.dtype !== "f32") {
    throw new Error(`grad: the loss must be an f32 scalar, got ${loss.dtype} [${loss.shape.join(",")}]`);
  }
  return vjp([loss], [op.scalar(1)], wrt);
}

/** Whether `output` depends differentiably on `x` (PyTorch: whether x.grad would be set). */
export function dependsOn(output: Tensor, x: Tensor): boolean {
  const live = new Set<number>([x.id]);
  for (const t of topoSort([output])) {
    if (t.id !== x.id && VJP[t.node.op] !== NONDIFF && t.node.inputs.some((i) => live.has(i.id))) live.add(t.id);
  }
  return live.has(output.id);
}
