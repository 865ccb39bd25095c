// What every template shares: its context, a fresh kernel builder and body scope, and the
// header note of a fused epilogue.

import { type FusionResult, type KernelPlan } from "../../fusion";
import { KernelBuilder, Scope } from "../expr";
import { sig } from "../kernel";

export interface TemplateContext {
  readonly fusion: FusionResult;
  /** A stable, readable kernel name. */
  readonly name: string;
}

/** ceil(a / b): blocks of b that cover a. */
export const ceilDiv = (a: number, b: number) => Math.ceil(a / b);
/** 0, 1, ..., n-1: the unrolled indices of a register tile. */
export const range = (n: number) => Array.from({ length: n }, (_, i) => i);

/** A kernel builder that loads materialised tensors and inlines the rest (the fusion's decision). */
export function builder(ctx: TemplateContext): KernelBuilder {
  const m = ctx.fusion.materialized;
  return new KernelBuilder((t) => m.has(t.id));
}

/** The scope of a kernel body, indented once inside the entry point. */
export function bodyScope(): Scope {
  return new Scope(undefined, "  ");
}

/** A header line saying the kernel stores a fused epilogue's result, not its anchor's. */
export function epilogueNote(plan: KernelPlan): string[] {
  return plan.anchor && plan.root !== plan.anchor ? [`with a fused elementwise epilogue producing ${sig(plan.root)}`] : [];
}
