// Canonicalisation: the graph codegen schedules, equivalent to the program's graph.
//
// Rewrites, each justified by an identity, so that later passes see fewer op kinds and equal
// values become one node:
//  - ops whose registry lowering is `decomposed` are replaced by their decomposition (each
//    stated in its record): stopGradient(x) -> x, mean -> sum * (1/n), batchNormTrain ->
//    mean, variance and an affine map, softmaxCrossEntropyGrad -> softmax and a masked
//    one-hot difference;
//  - reductions without keepdims -> reshape(reduction with keepdims): one index space per
//    reduction, so the forward BN statistics and the BN backward's recomputation coincide.
//  - reshape(reshape(x)) -> reshape(x), and reshape to the same shape -> x.
// Then hash-consing merges structurally equal nodes (same op, attributes and inputs).

import * as dsl from "../dsl/index";
import type { F32, Lowering, Node, OpName, Tensor } from "../dsl/index";

/**
 * The decomposition of an op whose lowering is `decomposed` (its registry record, e.g.
 * mean -> sum * (1/n)); undefined for every other op.
 */
function decompose(t: Tensor, inputs: readonly Tensor[]): Tensor | undefined {
  const lowering = dsl.OPS[t.node.op].lowering as Lowering<OpName>;
  return lowering.kind === "decomposed" ? lowering.into(t.node, inputs, t) : undefined;
}

const f = (t: Tensor) => t as F32;

function reduceKeepdims(t: Tensor, inputs: readonly Tensor[]): Tensor | undefined {
  const n = t.node;
  if ((n.op === "sum" || n.op === "max") && !n.attrs.keepdims) {
    const kept = n.op === "sum" ? dsl.sum(f(inputs[0]!), n.attrs.axes, { keepdims: true }) : dsl.max(f(inputs[0]!), n.attrs.axes, { keepdims: true });
    return dsl.reshape(kept, t.shape);
  }
  if (n.op === "argmax" && !n.attrs.keepdims) {
    return dsl.reshape(dsl.argmax(f(inputs[0]!), n.attrs.axis, { keepdims: true }), t.shape);
  }
  return undefined;
}

/** A structural key: equal keys mean equal values. */
function keyOf(node: Node, inputs: readonly Tensor[], t: Tensor): string {
  return `${node.op}|${t.dtype}|${t.shape.join(",")}|${JSON.stringify(node.attrs)}|${inputs.map((i) => i.id).join(",")}`;
}

/** Post-order of the nodes reachable from `roots` that `done` does not know yet. */
function pending(roots: readonly Tensor[], done: ReadonlyMap<number, Tensor>): Tensor[] {
  const order: Tensor[] = [];
  const seen = new Set<number>();
  const stack: { t: Tensor; next: number }[] = [];
  for (const root of roots) {
    if (done.has(root.id) || seen.has(root.id)) continue;
    seen.add(root.id);
    stack.push({ t: root, next: 0 });
    while (stack.length > 0) {
      const top = stack[stack.length - 1]!;
      const child = top.t.node.inputs[top.next++];
      if (child === undefined) {
        stack.pop();
        order.push(top.t);
      } else if (!done.has(child.id) && !seen.has(child.id)) {
        seen.add(child.id);
        stack.push({ t: child, next: 0 });
      }
    }
  }
  return order;
}

/**
 * Canonicalises the graphs of `roots` (all phases' outputs and updates share one pass, so a
 * value used by two roots is one node). Returns the new roots, in order.
 */
export function canonicalize(roots: readonly Tensor[]): Tensor[] {
  // memo: any node seen (original or built here) -> its canonical node. Canonical nodes map
  // to themselves, so a rewrite's output that reuses them is not walked again.
  const memo = new Map<number, Tensor>();
  const table = new Map<string, Tensor>();

  const intern = (t: Tensor, inputs: readonly Tensor[]): Tensor => {
    const key = keyOf(t.node, inputs, t);
    const hit = table.get(key);
    if (hit) return hit;
    const same = inputs.every((x, i) => x === t.node.inputs[i]);
    const made = same ? t : dsl.withScope(t.scope, () => dsl.makeTensor({ ...t.node, inputs } as Node, t.shape, t.dtype));
    table.set(key, made);
    memo.set(made.id, made);
    return made;
  };

  const run = (roots: readonly Tensor[]): void => {
    for (const s of pending(roots, memo)) {
      if (memo.has(s.id)) continue;
      memo.set(s.id, rewriteOne(s, s.node.inputs.map((i) => memo.get(i.id)!)));
    }
  };

  const rewriteOne = (t: Tensor, inputs: readonly Tensor[]): Tensor => {
    const n = t.node;
    if (n.op === "reshape") {
      const src = inputs[0]!;
      const base = src.node.op === "reshape" ? src.node.inputs[0]! : src;
      if (base.shape.join(",") === t.shape.join(",")) return base;
      if (base !== src) return intern(t, [base]);
    }
    const expanded = dsl.withScope(t.scope, () => decompose(t, inputs) ?? reduceKeepdims(t, inputs));
    if (expanded === undefined) return intern(t, inputs);
    // A rewrite builds new nodes over canonical inputs: canonicalise that subgraph too.
    run([expanded]);
    return memo.get(expanded.id)!;
  };

  run(roots);
  return roots.map((r) => memo.get(r.id)!);
}
