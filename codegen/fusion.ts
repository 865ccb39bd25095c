// Fusion: which values get a buffer, and which kernel computes each of them.
//
// Every op is one of four kinds (OP_KIND). Sources and inline ops (elementwise maths and
// views) never get a kernel of their own unless a rule below materialises them; they are
// recomputed, as WGSL expressions, inside the kernels that read them. Anchors are ops with a
// kernel template (reductions, convolutions, pooling...).
//
// A value is materialised (stored in a buffer) when:
//  M1. it is a root: a phase output or a state update;
//  M2. it is an anchor: templates write their results (unless E1 fuses it away);
//  M3. an operand-buffer anchor reads it: convolutions, matmul and pooling index their
//      operands many times per output (K*K*C taps), so an inlined expression would be
//      recomputed per tap, and their templates want plain row-major operands;
//  M4. it is used by two or more readers and is not cheap (recomputing an elementwise
//      chain per reader costs more than one store and one load per reader). Cheap values
//      are sources, views of buffers, and bilinear resizes of buffers: resized logits are
//      read by the loss, its gradient and the discriminator, and must never be stored
//      (4 loads per element, at 64x the size of the stored low-resolution logits).
//
// E1 (epilogue fusion). A materialised inline value E whose expression reaches an anchor A
// through elementwise ops only (no views, so A is read at E's own index), where A has no
// other reader and A's template supports epilogues, is computed by A's kernel: A's result
// stays in registers and E's expression is applied before the store. When several anchors
// qualify (a residual add of two convolutions, fan-in of gradients), the one scheduled last
// is fused and the others are read from their buffers: each value still has one writer.
// This gives conv + bias + BN affine + residual + ReLU in one kernel, and the input-gradient
// with its ReLU mask and gradient accumulation.

import { type Node, type Tensor, topoSort } from "../dsl/index";

export type OpKind = "source" | "elementwise" | "view" | "anchor";

export const OP_KIND: { readonly [K in Node["op"]]: OpKind } = {
  input: "source",
  constant: "source",
  iota: "source",
  neg: "elementwise",
  abs: "elementwise",
  sign: "elementwise",
  exp: "elementwise",
  log: "elementwise",
  log1p: "elementwise",
  sqrt: "elementwise",
  rsqrt: "elementwise",
  relu: "elementwise",
  leakyRelu: "elementwise",
  sigmoid: "elementwise",
  tanh: "elementwise",
  not: "elementwise",
  cast: "elementwise",
  add: "elementwise",
  sub: "elementwise",
  mul: "elementwise",
  div: "elementwise",
  pow: "elementwise",
  maximum: "elementwise",
  minimum: "elementwise",
  lt: "elementwise",
  le: "elementwise",
  gt: "elementwise",
  ge: "elementwise",
  eq: "elementwise",
  ne: "elementwise",
  and: "elementwise",
  or: "elementwise",
  where: "elementwise",
  // Eval-mode BN is a per-channel affine map: elementwise, with per-channel operand loads.
  batchNormEval: "elementwise",
  stopGradient: "elementwise",
  reshape: "view",
  permute: "view",
  broadcastTo: "view",
  slice: "view",
  pad: "view",
  concat: "view",
  resize: "view",
  sum: "anchor",
  mean: "anchor",
  max: "anchor",
  argmax: "anchor",
  conv2d: "anchor",
  conv2dInputGrad: "anchor",
  conv2dWeightGrad: "anchor",
  maxPool2d: "anchor",
  maxPool2dGrad: "anchor",
  resizeGrad: "anchor",
  softmax: "anchor",
  logSoftmax: "anchor",
  batchNormTrain: "anchor",
  matmul: "anchor",
  softmaxCrossEntropy: "anchor",
  softmaxCrossEntropyGrad: "anchor",
};

/** Anchors whose operands must be buffers (rule M3). */
const BUFFER_OPERANDS: ReadonlySet<Node["op"]> = new Set([
  "conv2d",
  "conv2dInputGrad",
  "conv2dWeightGrad",
  "matmul",
  "maxPool2d",
  "maxPool2dGrad",
  "resizeGrad",
]);

/** Anchors whose template can apply an elementwise epilogue before storing (rule E1). */
const EPILOGUE_ANCHORS: ReadonlySet<Node["op"]> = new Set([
  "sum",
  "max",
  "conv2d",
  "conv2dInputGrad",
  "conv2dWeightGrad",
  "matmul",
  "maxPool2d",
  "maxPool2dGrad",
  "resizeGrad",
  "softmax",
  "logSoftmax",
  "softmaxCrossEntropy",
]);

/** One kernel (or a short fixed sequence of dispatches) to schedule. */
export interface KernelPlan {
  /** The value the kernel stores. */
  readonly root: Tensor;
  /** The template's op; undefined for a pointwise kernel over root's elements. */
  readonly anchor: Tensor | undefined;
}

export interface FusionResult {
  /** In a valid execution order. */
  readonly kernels: readonly KernelPlan[];
  /** Values that live in buffers: inputs, params, state and kernel roots. */
  readonly materialized: ReadonlySet<number>;
  /** Anchors computed inside another value's kernel (E1). */
  readonly fusedAnchors: ReadonlySet<number>;
  readonly order: readonly Tensor[];
}

function isCheap(t: Tensor, materialized: ReadonlySet<number>): boolean {
  const kind = OP_KIND[t.node.op];
  if (kind === "source") return true;
  if (kind !== "view") return false;
  return t.node.inputs.every((i) => materialized.has(i.id) || isCheap(i, materialized));
}

/** Plans the kernels computing `roots` (a phase's outputs and updates). */
export function planFusion(roots: readonly Tensor[]): FusionResult {
  const order = topoSort(roots);
  const readers = new Map<number, number>();
  for (const t of order) for (const i of t.node.inputs) readers.set(i.id, (readers.get(i.id) ?? 0) + 1);
  const rootIds = new Set(roots.map((r) => r.id));
  const materialized = new Set<number>();
  const position = new Map(order.map((t, i) => [t.id, i]));

  for (const t of order) {
    const kind = OP_KIND[t.node.op];
    if (t.node.op === "input") materialized.add(t.id);
    else if (rootIds.has(t.id) || kind === "anchor") materialized.add(t.id); // M1, M2
    if (BUFFER_OPERANDS.has(t.node.op)) for (const i of t.node.inputs) if (i.node.op !== "constant") materialized.add(i.id); // M3
  }
  // M4, decided from the last use backwards so that a cheap view of a materialised value counts as cheap.
  for (const t of order) {
    if (materialized.has(t.id)) continue;
    if ((readers.get(t.id) ?? 0) >= 2 && !isCheap(t, materialized)) materialized.add(t.id);
  }

  // E1: epilogue fusion.
  const fusedAnchors = new Set<number>();
  for (const t of order) {
    const kind = OP_KIND[t.node.op];
    if (!materialized.has(t.id) || kind === "anchor" || kind === "source") continue;
    const candidates: Tensor[] = [];
    const seen = new Set<number>();
    const walk = (x: Tensor): void => {
      if (seen.has(x.id)) return;
      seen.add(x.id);
      if (x !== t && materialized.has(x.id)) {
        const ok =
          OP_KIND[x.node.op] === "anchor" &&
          EPILOGUE_ANCHORS.has(x.node.op) &&
          !rootIds.has(x.id) &&
          !fusedAnchors.has(x.id) &&
          readers.get(x.id) === 1 &&
          x.shape.join(",") === t.shape.join(",");
        if (ok) candidates.push(x);
        return;
      }
      if (OP_KIND[x.node.op] === "elementwise" && x.node.op !== "batchNormEval") x.node.inputs.forEach(walk);
      else if (x.node.op === "batchNormEval") walk(x.node.inputs[0]!);
    };
    walk(t);
    const last = candidates.sort((a, b) => position.get(b.id)! - position.get(a.id)!)[0];
    if (last) {
      fusedAnchors.add(last.id);
      materialized.delete(last.id);
    }
  }

  const kernels: KernelPlan[] = [];
  const anchorOf = new Map<number, Tensor>();
  for (const t of order) {
    if (!materialized.has(t.id) || t.node.op === "input") continue;
    if (OP_KIND[t.node.op] === "anchor") {
      kernels.push({ root: t, anchor: t });
      continue;
    }
    // Find the fused anchor in t's expression (if any).
    let anchor: Tensor | undefined;
    const seen = new Set<number>();
    const walk = (x: Tensor): void => {
      if (seen.has(x.id) || anchor) return;
      seen.add(x.id);
      if (fusedAnchors.has(x.id)) {
        anchor = x;
        return;
      }
      if (x !== t && materialized.has(x.id)) return;
      x.node.inputs.forEach(walk);
    };
    walk(t);
    if (anchor) anchorOf.set(anchor.id, t);
    kernels.push({ root: t, anchor });
  }
  return { kernels, materialized, fusedAnchors, order };
}
