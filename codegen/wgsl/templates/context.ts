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

export const ceilDiv = (a: number, b: number) => Math.ceil(a / b);
export const range = (n: number) => Array.from({ length: n }, (_, i) => i);

export function builder(ctx: TemplateContext): KernelBuilder {
  const m = ctx.fusion.materialized;
  return new KernelBuilder((t) => m.has(t.id));
}

export function bodyScope(): Scope {
  return new Scope(undefined, "  ");
}

export function epilogueNote(plan: KernelPlan): string[] {
  return plan.anchor && plan.root !== plan.anchor ? [`with a fused elementwise epilogue producing ${sig(plan.root)}`] : [];
}
