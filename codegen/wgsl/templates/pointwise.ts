// Pointwise: one invocation per element of the root, everything inlined.

import { numel } from "../../../dsl/index";
import { type KernelPlan } from "../../fusion";
import { unflatten } from "../expr";
import { type Stage, WORKGROUP, assemble, describe, sig, storeRoot } from "../kernel";
import { type TemplateContext, bodyScope, builder } from "./context";

/** Elements per invocation of large pointwise kernels (measured: 1 -> 8 doubles lavapipe's rate). */
const POINTWISE_PER_INVOCATION = 8;

export function pointwise(plan: KernelPlan, ctx: TemplateContext): Stage[] {
  const k = builder(ctx);
  const s = bodyScope();
  const root = plan.root;
  const n = numel(root.shape);
  const idx = unflatten(root.shape, "gi").map((e, a) => (root.shape[a] === 1 ? e : s.bind(`idx${a}`, `i${a}`, e)));
  // Sibling roots (fusion rule S1) at the same index; common subexpressions are loaded once,
  // and a sibling reading an earlier root (only ever at this index, S1 checks) gets it from
  // the register it was stored from.
  const own = idx.join(",");
  const roots = [root, ...(plan.siblings ?? [])];
  for (const t of roots) {
    const value = storeRoot(k, s, t, undefined, undefined, idx);
    k.substitutions.set(t.id, (at) => {
      if (at.join(",") !== own) throw new Error(`codegen: sibling ${describe(t)} read at another index (fusion rule S1)`);
      return value;
    });
  }
  for (const t of roots) k.substitutions.delete(t.id);
  // Several elements per invocation once there are enough of them (see KernelText).
  const perInvocation = n >= POINTWISE_PER_INVOCATION * WORKGROUP * 8 ? POINTWISE_PER_INVOCATION : 1;
  const stores = plan.siblings?.length ? ` and ${plan.siblings.length} sibling(s)` : "";
  return [assemble(k, { name: ctx.name, header: [`pointwise ${sig(root)}${stores}`], body: s, threads: n, flops: n * (1 + (plan.siblings?.length ?? 0)), perInvocation })];
}
