// Reverse-mode autodiff, ahead of time: the gradient is another graph of DSL ops.
//
// VJP is the derivative table: each op's record (ops/*.ts) maps (node, output cotangent dy,
// output) to the cotangents of its inputs, written in DSL ops. `undefined` means "no gradient
// flows to this input" (labels, masks, detached values); an op marked NONDIFF passes nothing.
// `grad` walks the graph backwards once, summing the cotangents of values used more than once.

import { type F32, GRAD_SCOPE, type NodeOf, type OpName, type Tensor, topoSort, withExactScope } from "./ir";
import * as op from "./ops";
import { NONDIFF, type Vjp } from "./ops/def";
import { OP_NAMES, OPS } from "./ops/registry";

type Rule<K extends OpName> = Vjp<K>;

/** d(input_i) given dy, for every op: the `vjp` of each op's registry record (ops/*.ts). */
export const VJP: { readonly [K in OpName]: Rule<K> | typeof NONDIFF } = Object.fromEntries(
  OP_NAMES.map((name) => [name, OPS[name].vjp]),
) as { readonly [K in OpName]: Rule<K> | typeof NONDIFF };

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
