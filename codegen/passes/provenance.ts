// What a kernel computes, for dispatch names, kernel names and reports (format/module.ts, Provenance).

import { GRAD_SCOPE, type Tensor } from "../../dsl/index";
import type { Provenance } from "../../format/module";
import type { KernelPlan } from "../fusion";

/** How deep firstParam looks: far enough to pass a kernel's inlined elementwise prologue. */
const PARAM_SEARCH_DEPTH = 6;

/**
 * The first parameter (or state) a kernel reads, searched breadth-first from its anchor (or
 * stored value): kernels are named after it, since a parameter name says which layer a kernel
 * belongs to more precisely than a scope.
 */
export function firstParam(plan: KernelPlan): string | undefined {
  let level: readonly Tensor[] = [plan.anchor ?? plan.root];
  const seen = new Set<number>();
  for (let depth = 0; depth < PARAM_SEARCH_DEPTH && level.length > 0; depth++) {
    const next: Tensor[] = [];
    for (const t of level) {
      if (seen.has(t.id)) continue;
      seen.add(t.id);
      if (t.node.op === "input" && t.node.attrs.role !== "input" && t.node.attrs.name) return t.node.attrs.name;
      next.push(...t.node.inputs);
    }
    level = next;
  }
  return undefined;
}

/**
 * The scope and op of a kernel's anchor (or of the value it stores), a gradient when that
 * scope is one grad() built (dsl/ir.ts, GRAD_SCOPE: then the scope is the forward node's), and
 * the first parameter it reads.
 */
export function provenanceOf(plan: KernelPlan): Provenance {
  const node = plan.anchor ?? plan.root;
  const backward = node.scope.startsWith(GRAD_SCOPE);
  const param = firstParam(plan);
  return {
    scope: backward ? node.scope.slice(GRAD_SCOPE.length) : node.scope,
    pass: backward ? "backward" : "forward",
    op: plan.anchor?.node.op ?? "pointwise",
    ...(param !== undefined ? { param } : {}),
  };
}
