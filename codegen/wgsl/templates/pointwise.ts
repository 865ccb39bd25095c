// Pointwise: one invocation per element of the root, everything inlined.

import { numel } from "../../../dsl/index";
import { type KernelPlan } from "../../fusion";
import { type KernelBuilder, Scope, unflatten } from "../expr";
import { type Stage, WORKGROUP, assemble, describe, sig, storeRoot } from "../kernel";
import { type TemplateContext, bodyScope, builder, ceilDiv } from "./context";

/** Elements per invocation of large pointwise kernels (measured: 1 -> 8 doubles lavapipe's rate). */
const POINTWISE_PER_INVOCATION = 8;

/**
 * Stores the plan's root and its siblings (fusion rule S1) at idx; common subexpressions are
 * loaded once, and a sibling reading an earlier root (only ever at this index, S1 checks) gets
 * it from the register it was stored from.
 */
function storeRoots(k: KernelBuilder, s: Scope, plan: KernelPlan, idx: readonly string[]): void {
  const own = idx.join(",");
  const roots = [plan.root, ...(plan.siblings ?? [])];
  for (const t of roots) {
    const value = storeRoot(k, s, t, undefined, undefined, idx);
    k.substitutions.set(t.id, (at) => {
      if (at.join(",") !== own) throw new Error(`codegen: sibling ${describe(t)} read at another index (fusion rule S1)`);
      return value;
    });
  }
  for (const t of roots) k.substitutions.delete(t.id);
}

export function pointwise(plan: KernelPlan, ctx: TemplateContext): Stage[] {
  return [channelRows(plan, ctx) ?? flat(plan, ctx)];
}

function header(plan: KernelPlan): string {
  const stores = plan.siblings?.length ? ` and ${plan.siblings.length} sibling(s)` : "";
  return `pointwise ${sig(plan.root)}${stores}`;
}

/** Invocation gi computes element gi (E elements per invocation when there are many). */
function flat(plan: KernelPlan, ctx: TemplateContext): Stage {
  const k = builder(ctx);
  // The body runs once per element of the invocation's loop (see KernelText); what does not
  // depend on the element (an optimizer's scalar coefficients) is hoisted to the prologue.
  const prologue = bodyScope();
  const s = new Scope(prologue, prologue.indent, true, ["e", "gi"]);
  const root = plan.root;
  const n = numel(root.shape);
  const idx = unflatten(root.shape, "gi").map((e, a) => (root.shape[a] === 1 ? e : s.bind(`idx${a}`, `i${a}`, e)));
  k.ownIndex = { shape: root.shape.join(","), idx: idx.join(","), flat: "gi" };
  storeRoots(k, s, plan, idx);
  // Several elements per invocation once there are enough of them (see KernelText).
  const perInvocation = n >= POINTWISE_PER_INVOCATION * WORKGROUP * 8 ? POINTWISE_PER_INVOCATION : 1;
  return assemble(k, { name: ctx.name, header: [header(plan)], body: s, prologue, threads: n, flops: n * (1 + (plan.siblings?.length ?? 0)), perInvocation });
}

/**
 * Channel rows, for an NCHW root whose expression reads per-channel values (BatchNorm's mean,
 * scale and shift; a bias): a workgroup takes one (n, c) row, or a chunk of it, and its lanes
 * loop over the row's pixels, so the per-channel values, and the row's index arithmetic, are
 * computed once before the loop (Scope: loop hoisting) instead of once per element. Only when
 * something was hoisted; otherwise the flat kernel is as good and its text is shared more.
 */
function channelRows(plan: KernelPlan, ctx: TemplateContext): Stage | undefined {
  const root = plan.root;
  if (root.shape.length !== 4) return undefined;
  const [N, C, H, W] = root.shape as [number, number, number, number];
  const L = H * W;
  if (C === 1 || L < WORKGROUP) return undefined;
  const E = Math.min(POINTWISE_PER_INVOCATION, ceilDiv(L, WORKGROUP));
  const chunks = ceilDiv(L, WORKGROUP * E);
  const k = builder(ctx);
  const s = bodyScope();
  s.line(`let row = blk / ${chunks}i;`);
  s.line(`let chunk = blk % ${chunks}i;`);
  const i0 = N === 1 ? "0i" : s.bind("idx0", "i0", `row / ${C}i`);
  const i1 = s.bind("idx1", "i1", `row % ${C}i`);
  const before = s.lines.length;
  const body = s.child({ hoist: ["e", "hw", "i2", "i3", "gi"] });
  body.line(`let hw = (chunk * ${E}i + e) * ${WORKGROUP}i + i32(lid.x);`);
  body.line(`if (hw >= ${L}i) { break; }`);
  body.line(H === 1 ? `let i2 = 0i;` : `let i2 = hw / ${W}i;`);
  body.line(W === 1 ? `let i3 = 0i;` : `let i3 = hw % ${W}i;`);
  body.line(`let gi = row * ${L}i + hw;`);
  k.ownIndex = { shape: root.shape.join(","), idx: [i0, i1, "i2", "i3"].join(","), flat: "gi" };
  storeRoots(k, body, plan, [i0, i1, "i2", "i3"]);
  if (s.lines.length === before) return undefined;
  s.line(`for (var e = 0i; e < ${E}i; e++) {`);
  s.lines.push(...body.lines);
  s.line(`}`);
  const n = numel(root.shape);
  return assemble(k, {
    name: ctx.name,
    header: [header(plan), `one (n, c) row of ${L} pixels per ${chunks === 1 ? "workgroup" : `${chunks} workgroups`}, ${E} per lane; per-channel values loaded once per row`],
    body: s,
    threads: n,
    flops: n * (1 + (plan.siblings?.length ?? 0)),
    blocks: N * C * chunks,
  });
}
