// Rule R1 of fusion.ts (reduction groups): one-pass reductions over the same axes of a
// same-shaped input that one kernel computes one after the other.

import { type Tensor, numel } from "../dsl/index";
import type { KernelPlan } from "./fusion";
import { OP_KIND, bufferInputs } from "./fusion-graph";
import { reductionSplits } from "./wgsl/templates/reduce";

/** Most buffers (read and written) a reduction group binds: WebGPU's default limit, 8. */
const MAX_GROUP_BINDINGS = 8;

/** Whether a plan is a one-pass sum or max (reductionSplits: one invocation or subgroup per output). */
function onePassReduction(plan: KernelPlan): plan is KernelPlan & { readonly anchor: Tensor } {
  const a = plan.anchor;
  if (a === undefined || (a.node.op !== "sum" && a.node.op !== "max") || plan.siblings) return false;
  const x = a.node.inputs[0]!;
  const k = numel(x.shape) / numel(a.shape);
  return reductionSplits(numel(a.shape), k) === 1;
}

/** Same op family's loop: same input shape, same axes, same output shape. */
function sameLoop(a: Tensor, b: Tensor): boolean {
  const [x, y] = [a.node.inputs[0]!, b.node.inputs[0]!];
  const axes = (t: Tensor) => (t.node.attrs as { axes: readonly number[] }).axes.join(",");
  return x.shape.join(",") === y.shape.join(",") && axes(a) === axes(b) && a.shape.join(",") === b.shape.join(",");
}

/**
 * Whether reduction `r`'s summand reads each of `members` only at r's own output index: every
 * path from r's input down to a member goes through elementwise ops of the input's shape (the
 * loop index unchanged), then one broadcast from r's output shape over the reduced axes (which
 * maps the loop index to the output index), then elementwise ops of the output shape only.
 */
function readsGroupAtOutput(r: Tensor, members: ReadonlySet<number>, materialized: ReadonlySet<number>): boolean {
  const x = r.node.inputs[0]!;
  const axes = (r.node.attrs as { axes: readonly number[] }).axes;
  const outShape = r.shape.join(",");
  let ok = true;
  const seen = new Set<string>();
  const walk = (t: Tensor, atOutput: boolean): void => {
    const key = `${t.id}:${atOutput}`;
    if (seen.has(key) || !ok) return;
    seen.add(key);
    if (members.has(t.id)) {
      if (!atOutput) ok = false;
      return;
    }
    if (t !== x && materialized.has(t.id)) return;
    const kind = OP_KIND[t.node.op];
    if (kind === "source") return;
    const shape = t.shape.join(",");
    if (!atOutput && t.node.op === "broadcastTo") {
      const src = t.node.inputs[0]!;
      const broadcast = src.shape.map((d, a) => (d === 1 && t.shape[a] !== 1 ? a : -1)).filter((a) => a >= 0);
      const overReduced = src.shape.join(",") === outShape && broadcast.every((a) => axes.includes(a)) && axes.every((a) => src.shape[a] === 1);
      walk(src, overReduced);
      if (!overReduced && reaches(src)) ok = false;
      return;
    }
    if (kind === "elementwise" && shape === (atOutput ? outShape : x.shape.join(","))) {
      t.node.inputs.forEach((i) => walk(i, atOutput));
      return;
    }
    // Any other view or anchor: the index changes in a way not followed here.
    if (reaches(t)) ok = false;
  };
  const reached = new Map<number, boolean>();
  const reaches = (t: Tensor): boolean => {
    const known = reached.get(t.id);
    if (known !== undefined) return known;
    reached.set(t.id, false);
    const r = members.has(t.id) || (!(t !== x && materialized.has(t.id)) && t.node.inputs.some(reaches));
    reached.set(t.id, r);
    return r;
  };
  walk(x, false);
  return ok;
}

/** Whether a reduction plan's epilogue (its root's expression above the anchor) reads one of `members`. */
function epilogueReads(plan: KernelPlan & { readonly anchor: Tensor }, members: ReadonlySet<number>, materialized: ReadonlySet<number>): boolean {
  const seen = new Set<number>();
  const walk = (t: Tensor): boolean => {
    if (seen.has(t.id) || t === plan.anchor) return false;
    seen.add(t.id);
    if (members.has(t.id)) return true;
    if (t !== plan.root && materialized.has(t.id)) return false;
    return t.node.inputs.some(walk);
  };
  return walk(plan.root);
}

/**
 * R1 (reduction groups). A one-pass reduction (sum or max) joins the latest earlier one over the
 * same axes of a same-shaped input when every buffer it reads is written by then, and it reads
 * that kernel's results only at its own output index (readsGroupAtOutput): one kernel then runs
 * the loops one after the other for each output, a later summand taking an earlier result from
 * the register it was stored from. BatchNorm's mean and variance (the variance's summand reads
 * the mean) and its backward's sum(dy) and sum(dy * xhat) are the typical pairs: one kernel per
 * pair instead of two dispatches. Each loop sums the same terms in the same order as its own
 * kernel did, so results are unchanged. Safe because the moved reduction only runs earlier,
 * after all of its inputs, and its readers still come later.
 */
export function mergeReductions(kernels: readonly KernelPlan[], materialized: ReadonlySet<number>): KernelPlan[] {
  const out: { plan: KernelPlan; reductions: { root: Tensor; anchor: Tensor }[]; reads: Set<Tensor> }[] = [];
  const writtenAt = new Map<number, number>();
  const written = (p: KernelPlan) => [p.root, ...(p.siblings ?? [])];
  for (const plan of kernels) {
    if (onePassReduction(plan)) {
      const reads = bufferInputs(plan.root, materialized);
      const target = out.findLastIndex((k, g) => {
        if (!onePassReduction(k.plan) || !sameLoop(k.plan.anchor, plan.anchor)) return false;
        const members = new Set([k.plan.root, ...k.reductions.map((r) => r.root)].map((t) => t.id));
        const ready = [...reads].every((r) => r.node.op === "input" || (writtenAt.get(r.id) ?? Infinity) <= g);
        const bindings = new Set([...k.reads, ...reads].filter((r) => !members.has(r.id))).size + members.size + 1;
        return ready && bindings <= MAX_GROUP_BINDINGS && readsGroupAtOutput(plan.anchor, members, materialized) && !epilogueReads(plan, members, materialized);
      });
      if (target >= 0) {
        const k = out[target]!;
        k.reductions.push({ root: plan.root, anchor: plan.anchor });
        for (const r of reads) k.reads.add(r);
        writtenAt.set(plan.root.id, target);
        continue;
      }
    }
    for (const t of written(plan)) writtenAt.set(t.id, out.length);
    out.push({ plan, reductions: [], reads: plan.anchor && !onePassReduction(plan) ? new Set() : bufferInputs(plan.root, materialized) });
  }
  return out.map((k) => (k.reductions.length ? { ...k.plan, reductions: k.reductions } : k.plan));
}
