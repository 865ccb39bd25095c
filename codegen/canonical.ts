// Canonicalisation: the graph codegen schedules, equivalent to the program's graph.
//
// Rewrites, each justified by an identity, so that later passes see fewer op kinds and equal
// values become one node:
//  - stopGradient(x) -> x: autodiff has already run; in the forward pass it is the identity.
//  - mean(x, axes) -> sum(x, axes) * (1/n): one reduction template; the scale is an epilogue.
//  - reductions without keepdims -> reshape(reduction with keepdims): one index space per
//    reduction, so the forward BN statistics and the BN backward's recomputation coincide.
//  - reshape(reshape(x)) -> reshape(x), and reshape to the same shape -> x.
//  - batchNormTrain -> mean, variance and an affine map, written exactly as the VJP rule
//    recomputes them, so common-subexpression elimination shares the statistics.
//  - softmaxCrossEntropyGrad -> softmax and a masked one-hot difference scaled by
//    1 / max(#valid, 1): the softmax template with an elementwise epilogue.
// Then hash-consing merges structurally equal nodes (same op, attributes and inputs).

import * as dsl from "../dsl/index";
import type { F32, I32, Node, Tensor } from "../dsl/index";

type Rebuild = (t: Tensor, inputs: readonly Tensor[]) => Tensor;

const f = (t: Tensor) => t as F32;

/** Decompositions and simplifications of one node whose inputs are already canonical. */
const REWRITES: Partial<Record<Node["op"], Rebuild>> = {
  stopGradient: (_t, [x]) => x!,
  mean: (t, [x]) => {
    const attrs = t.node.attrs as { axes: readonly number[]; keepdims: boolean };
    const n = attrs.axes.reduce((p, a) => p * x!.shape[a]!, 1);
    return dsl.mul(dsl.sum(f(x!), attrs.axes, { keepdims: attrs.keepdims }), 1 / n);
  },
  batchNormTrain: (t, [x, w, b]) => {
    const eps = (t.node.attrs as { eps: number }).eps;
    const keep = { keepdims: true } as const;
    const xc = dsl.sub(f(x!), dsl.mean(f(x!), [0, 2, 3], keep));
    const r = dsl.rsqrt(dsl.add(dsl.mean(dsl.mul(xc, xc), [0, 2, 3], keep), eps));
    const c = x!.shape[1]!;
    return dsl.add(dsl.mul(dsl.mul(xc, r), dsl.reshape(f(w!), [1, c, 1, 1])), dsl.reshape(f(b!), [1, c, 1, 1]));
  },
  softmaxCrossEntropyGrad: (t, [x, labels]) => {
    const ignore = (t.node.attrs as { ignoreIndex: number }).ignoreIndex;
    const l = labels as I32;
    const c = x!.shape[1]!;
    const valid = dsl.and(dsl.ne(l, ignore), dsl.and(dsl.ge(l, 0), dsl.lt(l, c)));
    const count = dsl.sum(dsl.cast(valid, "f32"));
    const perPixel = [x!.shape[0]!, 1, ...x!.shape.slice(2)];
    const onehot = dsl.eq(dsl.iota(x!.shape, 1), dsl.reshape(l, perPixel));
    const diff = dsl.sub(dsl.softmax(f(x!), 1), dsl.cast(onehot, "f32"));
    return dsl.where(dsl.reshape(valid, perPixel), dsl.div(diff, dsl.maximum(count, 1)), 0);
  },
};

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
    const rule = REWRITES[n.op];
    const expanded = dsl.withScope(t.scope, () => (rule ? rule(t, inputs) : reduceKeepdims(t, inputs)));
    if (expanded === undefined) return intern(t, inputs);
    // A rewrite builds new nodes over canonical inputs: canonicalise that subgraph too.
    run([expanded]);
    return memo.get(expanded.id)!;
  };

  run(roots);
  return roots.map((r) => memo.get(r.id)!);
}
