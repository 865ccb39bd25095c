// Fusion: which values get a buffer, and which kernel computes each of them.
//
// Every op is one of four kinds (OP_KIND, from its lowering in the op registry). Sources and inline ops (elementwise maths and
// views) never get a kernel of their own unless a rule below materialises them; they are
// recomputed, as WGSL expressions, inside the kernels that read them. Anchors are ops with a
// kernel template (reductions, convolutions, pooling...).
//
// A value is materialised (stored in a buffer) when (M5 below bounds what one expression reads):
//  M1. it is a root: a phase output or a state update;
//  M2. it is an anchor: templates write their results (unless E1 fuses it away);
//  M3. an operand-buffer anchor reads it: convolutions, matmul and pooling index their
//      operands many times per output (K*K*C taps), so an inlined expression would be
//      recomputed per tap, and their templates want plain row-major operands;
//  M4. it is used by two or more readers and is not cheap (recomputing an elementwise
//      chain per reader costs more than one store and one load per reader). Cheap values
//      are small expressions over few buffers (isCheap), e.g. views of buffers and bilinear
//      resizes of buffers: resized logits are read by the loss, its gradient and the
//      discriminator, and must never be stored (4 loads per element, at 64x the size of
//      the stored low-resolution logits).
//
// E1 (epilogue fusion). A materialised inline value E whose expression reaches an anchor A
// through elementwise ops only (no views, so A is read at E's own index), where A has no
// other reader and A's template supports epilogues, is computed by A's kernel: A's result
// stays in registers and E's expression is applied before the store. When several anchors
// qualify (a residual add of two convolutions, fan-in of gradients), the one scheduled last
// is fused and the others are read from their buffers: each value still has one writer.
// This gives conv + bias + BN affine + residual + ReLU in one kernel, and the input-gradient
// with its ReLU mask and gradient accumulation.
//
// R1 (reduction groups, reduction-groups.ts). A one-pass reduction joins an earlier one over the
// same axes of a same-shaped input, when every buffer it reads is written by then and it reads
// that kernel's results only at its own output index: one kernel computes both (see the rule).
//
// S1 (sibling fusion, mergeSiblings). Pointwise kernels that store roots of one shape share a
// dispatch when the later one's inputs are ready at the earlier one's place, or are values of
// that kernel read at their own index (passed in registers): a whole Adam update, BatchNorm's
// running statistics.

import { type Lowering, OP_NAMES, OPS, type OpName, type Tensor, topoSort } from "../dsl/index";
import { OP_KIND, bufferInputs } from "./fusion-graph";
import { mergeReductions } from "./reduction-groups";

export { OP_KIND, type OpKind } from "./fusion-graph";

const templateOf = (op: OpName) => {
  const lowering = OPS[op].lowering;
  return lowering.kind === "template" ? lowering : undefined;
};

/** Anchors whose operands must be buffers (rule M3). */
const BUFFER_OPERANDS: ReadonlySet<OpName> = new Set(OP_NAMES.filter((op) => templateOf(op)?.operands === "buffers"));

/** Anchors whose template can apply an elementwise epilogue before storing (rule E1). */
const EPILOGUE_ANCHORS: ReadonlySet<OpName> = new Set(OP_NAMES.filter((op) => templateOf(op)?.epilogue === true));

/** One kernel (or a short fixed sequence of dispatches) to schedule. */
export interface KernelPlan {
  /** The value the kernel stores. */
  readonly root: Tensor;
  /** The template's op; undefined for a pointwise kernel over root's elements. */
  readonly anchor: Tensor | undefined;
  /** Pointwise kernels only: more values of root's shape stored by the same kernel (rule S1). */
  readonly siblings?: readonly Tensor[];
  /**
   * Reductions only: more reductions over the same axes of a same-shaped input that the same
   * kernel computes after the anchor's, in order (rule R1), each with the value it stores.
   */
  readonly reductions?: readonly { readonly root: Tensor; readonly anchor: Tensor }[];
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

/**
 * Recomputing a value in each reader is cheaper than storing it when its inline expression is
 * small: at most RECOMPUTE_OPS operations over at most RECOMPUTE_LOADS buffers (a store plus a
 * load per reader costs about as much as 3 loads on lavapipe and on GPUs alike). Bilinear
 * resizes count as one op with their 4 taps from one buffer. This keeps BN's centred and
 * normalised activations (x - mean, (x - mean) * r) out of memory: they are recomputed.
 */
const RECOMPUTE_OPS = 6;
const RECOMPUTE_LOADS = 3;

function inlineCost(t: Tensor, materialized: ReadonlySet<number>): { ops: number; loads: Set<number> } {
  const loads = new Set<number>();
  const seen = new Set<number>();
  let ops = 0;
  const walk = (x: Tensor, top: boolean) => {
    if (seen.has(x.id)) return;
    seen.add(x.id);
    if (!top && materialized.has(x.id)) {
      loads.add(x.id);
      return;
    }
    const kind = OP_KIND[x.node.op];
    if (kind === "source") {
      if (x.node.op === "input") loads.add(x.id);
      return;
    }
    if (kind === "anchor") {
      ops = Infinity; // not inlinable: only reached when not yet materialised
      return;
    }
    // Views (reshape, broadcast, slices) are index arithmetic, not arithmetic on values: free.
    if (kind !== "view") ops++;
    x.node.inputs.forEach((i) => walk(i, false));
  };
  walk(t, true);
  return { ops, loads };
}

function isCheap(t: Tensor, materialized: ReadonlySet<number>): boolean {
  if (OP_KIND[t.node.op] === "source") return true;
  // A scalar shared by many kernels (a learning rate) is computed once: recomputing it in
  // every element of every parameter update would cost far more than one tiny dispatch.
  if (t.shape.length === 0) return false;
  const { ops, loads } = inlineCost(t, materialized);
  return ops <= RECOMPUTE_OPS && loads.size <= RECOMPUTE_LOADS;
}

/**
 * Most buffers one stored value's inlined expression may read, so that its kernel (those reads
 * and its store) fits WebGPU's default of 8 storage bindings per kernel, which browsers keep
 * unless a page asks for more.
 */
const MAX_EXPRESSION_READS = 7;

/**
 * M5. Recomputing cheap values (M4) can make one expression read many buffers: a residual ReLU
 * over two batch-normalised convolutions reads both convolutions and both BNs' statistics and
 * affine parameters (10 buffers). While t's expression reads more than MAX_EXPRESSION_READS
 * buffers, the inlined value in it that reads the most of them is stored instead (it then
 * counts as one read), and is bounded in turn.
 */
function boundReads(t: Tensor, materialized: Set<number>): void {
  for (;;) {
    const reads = new Set<number>();
    const inner: Tensor[] = [];
    const seen = new Set<number>();
    const walk = (x: Tensor): void => {
      if (seen.has(x.id)) return;
      seen.add(x.id);
      if (x !== t && materialized.has(x.id)) {
        reads.add(x.id);
        return;
      }
      if (x.node.op === "input") {
        reads.add(x.id);
        return;
      }
      if (x !== t && OP_KIND[x.node.op] === "elementwise") inner.push(x);
      x.node.inputs.forEach(walk);
    };
    walk(t);
    if (reads.size <= MAX_EXPRESSION_READS) return;
    // A part reading fewer buffers than the whole, so that storing it splits the reads.
    const readsOf = (x: Tensor) => inlineCost(x, materialized).loads.size;
    const widest = inner
      .filter((x) => x.shape.length > 0 && readsOf(x) < reads.size)
      .sort((a, b) => readsOf(b) - readsOf(a) || a.id - b.id)[0];
    if (widest === undefined || readsOf(widest) < 2) return;
    materialized.add(widest.id);
    boundReads(widest, materialized);
  }
}

/**
 * A topological order that finishes the work on one data input before starting the next.
 *
 * Data inputs are ranked by first use in a depth-first order (the source image before the
 * target image); a node's rank is the highest rank among the data inputs it depends on. Among
 * ready nodes the lowest rank goes first (then depth-first position). So the source forward
 * pass, its losses and its whole backward pass run before the target forward pass starts, as
 * in the official script (§3.4), and the source activations are dead before the target's are
 * made: the peak memory is one pass's activations, not two.
 */
export function scheduleOrder(roots: readonly Tensor[]): Tensor[] {
  const dfs = topoSort(roots);
  const position = new Map(dfs.map((t, i) => [t.id, i]));
  const dataRank = new Map<number, number>();
  for (const t of dfs) if (t.node.op === "input" && t.node.attrs.role === "input" && t.shape.length > 0) dataRank.set(t.id, dataRank.size + 1);
  const rank = new Map<number, number>();
  for (const t of dfs) rank.set(t.id, Math.max(dataRank.get(t.id) ?? 0, ...t.node.inputs.map((i) => rank.get(i.id)!)));
  const users = new Map<number, Tensor[]>();
  const waiting = new Map<number, number>();
  for (const t of dfs) {
    const distinct = [...new Set(t.node.inputs)];
    waiting.set(t.id, distinct.length);
    for (const i of distinct) users.set(i.id, [...(users.get(i.id) ?? []), t]);
  }
  // Binary heap on (rank, depth-first position).
  const heap: Tensor[] = [];
  const key = (t: Tensor) => rank.get(t.id)! * 1e9 + position.get(t.id)!;
  const push = (t: Tensor) => {
    heap.push(t);
    for (let i = heap.length - 1; i > 0; ) {
      const p = (i - 1) >> 1;
      if (key(heap[p]!) <= key(heap[i]!)) break;
      [heap[p], heap[i]] = [heap[i]!, heap[p]!];
      i = p;
    }
  };
  const pop = (): Tensor => {
    const top = heap[0]!;
    const last = heap.pop()!;
    if (heap.length > 0) {
      heap[0] = last;
      for (let i = 0; ; ) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < heap.length && key(heap[l]!) < key(heap[m]!)) m = l;
        if (r < heap.length && key(heap[r]!) < key(heap[m]!)) m = r;
        if (m === i) break;
        [heap[m], heap[i]] = [heap[i]!, heap[m]!];
        i = m;
      }
    }
    return top;
  };
  for (const t of dfs) if (waiting.get(t.id) === 0) push(t);
  const order: Tensor[] = [];
  while (heap.length > 0) {
    const t = pop();
    order.push(t);
    for (const u of users.get(t.id) ?? []) {
      const w = waiting.get(u.id)! - 1;
      waiting.set(u.id, w);
      if (w === 0) push(u);
    }
  }
  return order;
}

/**
 * Plans the kernels computing `roots` (a phase's outputs and updates), over `order`: their
 * schedule (the compiler's schedule pass passes the one it made).
 */
export function planFusion(roots: readonly Tensor[], order: readonly Tensor[] = scheduleOrder(roots)): FusionResult {
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
  // M5: a stored value's expression reads at most MAX_EXPRESSION_READS buffers.
  for (const t of order) if (materialized.has(t.id) && OP_KIND[t.node.op] !== "anchor") boundReads(t, materialized);

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
      // Only through values E alone reads: a value inlined elsewhere too would lose its operand.
      if (x !== t && readers.get(x.id) !== 1) return;
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
  return { kernels: mergeReductions(mergeSiblings(kernels, materialized, rootIds), materialized), materialized, fusedAnchors, order };
}

/** Most values one sibling kernel stores, so its bindings stay well inside the device limit. */
const MAX_SIBLINGS = 4;
/**
 * Most buffers (read and written) a sibling kernel binds: WebGPU's default limit of 8, which
 * browsers keep unless a page asks for more (12 made the CPU demo need a non-default Chromium).
 */
const MAX_SIBLING_BINDINGS = 8;

/**
 * Whether t's inline expression reads w only at t's own index: every node on a path from t
 * down to w is an elementwise op of w's shape (so no view and no broadcast moves the index).
 */
function readsAtOwnIndex(t: Tensor, w: Tensor, materialized: ReadonlySet<number>): boolean {
  const reaches = new Map<number, boolean>();
  let ok = true;
  const walk = (x: Tensor): boolean => {
    if (x === w) return true;
    if (x !== t && materialized.has(x.id)) return false;
    const known = reaches.get(x.id);
    if (known !== undefined) return known;
    reaches.set(x.id, false);
    const r = x.node.inputs.map(walk).some(Boolean);
    if (r && (OP_KIND[x.node.op] !== "elementwise" || x.shape.join(",") !== w.shape.join(","))) ok = false;
    reaches.set(x.id, r);
    return r;
  };
  walk(t);
  return ok;
}

/**
 * S1 (sibling fusion). A pointwise kernel storing a root (a phase output or a state update)
 * joins an earlier pointwise kernel storing another root of the same shape when every buffer
 * it reads is already written by then, and it reads that kernel's values only at its own
 * index (the kernel then hands them over in registers): one dispatch stores both, at the
 * same index, sharing the loads they have in common. Safe because the moved kernel only runs
 * earlier, after all of its inputs, and its readers still come later. Optimizer updates
 * (Adam's two moments and the parameter step that reads them) and BatchNorm's running
 * statistics are the typical siblings. Only roots and scalars move, so no scratch value lives
 * longer than before except those roots, which live to the end of the phase anyway, and
 * scalars: the coefficients an optimizer derives from its run-time hyperparameters (bias
 * corrections, 10x head rates) then share one dispatch instead of one each.
 */
function mergeSiblings(kernels: readonly KernelPlan[], materialized: ReadonlySet<number>, rootIds: ReadonlySet<number>): KernelPlan[] {
  const out: { root: Tensor; anchor: Tensor | undefined; siblings: Tensor[]; reads: Set<Tensor> }[] = [];
  /** Tensor id -> index in `out` of the kernel that writes it. */
  const writtenAt = new Map<number, number>();
  /** Roots, and shared scalars (4 bytes: moving one earlier costs no memory). */
  const movable = (t: Tensor) => rootIds.has(t.id) || t.shape.length === 0;
  for (const plan of kernels) {
    const reads = plan.anchor ? new Set<Tensor>() : bufferInputs(plan.root, materialized);
    if (!plan.anchor && movable(plan.root)) {
      // Inputs written before kernel g, or by g itself (read in registers, checked below).
      const ready = (g: number) => [...reads].every((r) => r.node.op === "input" || (writtenAt.get(r.id) ?? Infinity) <= g);
      const shape = plan.root.shape.join(",");
      // The latest such kernel: the moved root then lives the least longer.
      const target = out.findLastIndex(
        (k, g) =>
          !k.anchor &&
          movable(k.root) &&
          k.root.shape.join(",") === shape &&
          k.root.dtype === plan.root.dtype &&
          k.siblings.length + 1 < MAX_SIBLINGS &&
          // Values of the kernel itself pass in registers: not bindings to read.
          [...new Set([...k.reads, ...reads])].filter((r) => r !== k.root && !k.siblings.includes(r)).length + k.siblings.length + 2 <= MAX_SIBLING_BINDINGS &&
          [k.root, ...k.siblings].every((w) => !reads.has(w) || readsAtOwnIndex(plan.root, w, materialized)) &&
          ready(g),
      );
      if (target >= 0) {
        const k = out[target]!;
        k.siblings.push(plan.root);
        for (const r of reads) k.reads.add(r);
        writtenAt.set(plan.root.id, target);
        continue;
      }
    }
    writtenAt.set(plan.root.id, out.length);
    out.push({ root: plan.root, anchor: plan.anchor, siblings: [], reads });
  }
  return out.map((k) => (k.siblings.length ? { root: k.root, anchor: k.anchor, siblings: k.siblings } : { root: k.root, anchor: k.anchor }));
}
