// Kernel templates: one function per anchor op, producing one or more dispatches.
//
// Shapes are baked in as constants, so index arithmetic folds. Every template handles sizes
// that do not divide its tiles: indices are clamped for loads and stores are guarded.
// Register tiles are unrolled in the generated code (named accumulators, not arrays), which
// keeps them in registers on GPUs and in vector registers on lavapipe, where loads - not
// arithmetic - are the cost: each tile multiplies TO weights by TP inputs per TO + TP loads.
//
// One file per template family; this file holds the dispatch from an anchor op to its template.

import { type OpName, type TemplateOp } from "../../../dsl/index";
import { type KernelPlan } from "../../fusion";
import { type Stage, describe } from "../kernel";
import { type TemplateContext } from "./context";
import { conv2d } from "./conv2d";
import { conv2dInputGrad } from "./conv2d-input-grad";
import { conv2dWeightGrad } from "./conv2d-weight-grad";
import { depthwiseConv2d, depthwiseConv2dInputGrad, depthwiseConv2dWeightGrad } from "./depthwise";
import { matmul } from "./matmul";
import { maxPool2d, maxPool2dGrad } from "./pooling";
import { pointwise } from "./pointwise";
import { argmax, reduce } from "./reduce";
import { resizeGrad } from "./resize-grad";
import { crossEntropyLoss, softmax } from "./softmax";

export { type TemplateContext } from "./context";

/** A template: the dispatches (one or more stages) that compute a kernel plan. */
export type Template = (plan: KernelPlan, ctx: TemplateContext) => Stage[];

/**
 * The ops whose registry record lowers them to a template (dsl/ops/registry.ts: TemplateOp).
 * The other anchors (mean, batchNormTrain, softmaxCrossEntropyGrad) are decomposed into ops
 * that have one by canonicalisation (codegen/canonical.ts) before fusion.
 */
export type { TemplateOp };

/** The template of each anchor op: a mapped type, so an op without its entry does not compile. */
const TEMPLATES: { readonly [K in TemplateOp]: Template } = {
  sum: reduce,
  max: reduce,
  argmax,
  softmax,
  logSoftmax: softmax,
  softmaxCrossEntropy: crossEntropyLoss,
  conv2d,
  conv2dInputGrad,
  conv2dWeightGrad,
  depthwiseConv2d,
  depthwiseConv2dInputGrad,
  depthwiseConv2dWeightGrad,
  matmul,
  maxPool2d,
  maxPool2dGrad,
  resizeGrad,
};

function hasTemplate(op: OpName): op is TemplateOp {
  return Object.hasOwn(TEMPLATES, op);
}

/** The dispatches of a kernel plan, with the nodes they compute recorded as provenance. */
export function emitKernel(plan: KernelPlan, ctx: TemplateContext): Stage[] {
  const computes = [
    `computes ${describe(plan.root)}`,
    ...(plan.siblings ?? []).map((t) => `computes ${describe(t)}`),
    ...(plan.reductions ?? []).map((m) => `computes ${describe(m.root)}`),
    ...(plan.anchor && plan.anchor !== plan.root ? [`fused anchor ${describe(plan.anchor)}`] : []),
  ];
  return chooseTemplate(plan, ctx).map((st) => ({ ...st, provenance: [...computes, ...st.provenance] }));
}

/** A plan without an anchor is pointwise; an anchor takes its op's template. */
function chooseTemplate(plan: KernelPlan, ctx: TemplateContext): Stage[] {
  if (!plan.anchor) return pointwise(plan, ctx);
  const op = plan.anchor.node.op;
  // Reaching an anchor without a template is a broken compiler invariant, not a user error.
  if (!hasTemplate(op)) throw new Error(`codegen: no template for anchor op ${op} (node #${plan.anchor.id}); canonicalisation should have removed it`);
  return TEMPLATES[op](plan, ctx);
}
