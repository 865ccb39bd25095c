// Pass 4, lower: a fused phase -> its dispatches, each a WGSL stage from a template
// (codegen/wgsl/templates/: an anchor's template, or the pointwise one with everything inlined).
//
// Lowering also checks what a device must offer each dispatch (storage bindings per kernel,
// bytes per binding): those limits are options of the compile, and a kernel over one is the
// program's to change (smaller tiles of the batch, fewer fused values), so it is a value.

import * as E from "fp-ts/lib/Either.js";
import { pipe } from "fp-ts/lib/function.js";
import { numel } from "../../dsl/index";
import type { Provenance } from "../../format/module";
import { dispatchName } from "../../format/module-table";
import { type CompileError, nodeRef } from "../compile-error";
import type { KernelPlan } from "../fusion";
import { type Stage, withNumbering } from "../wgsl/kernel";
import { emitKernel } from "../wgsl/templates";
import type { FusedPhase } from "./fuse";
import { provenanceOf } from "./provenance";

export interface LoweredDispatch {
  readonly stage: Stage;
  /** The kernel's provenance, with the dispatch's `part` when its kernel has several dispatches. */
  readonly provenance: Provenance;
  /** The kernel plan the dispatch belongs to. */
  readonly plan: KernelPlan;
}

export interface LoweredPhase extends FusedPhase {
  /** In execution order; a stage another one already computes (memoKey) appears once. */
  readonly dispatches: readonly LoweredDispatch[];
}

export interface BindingLimits {
  /** The most storage buffers one kernel may bind. */
  readonly maxBindings: number;
  /** The most bytes one binding may span. */
  readonly maxBindingBytes: number;
}

/**
 * The stages of one kernel plan. A template throws when it cannot lower its node (an op
 * without a template, a NaN constant WGSL cannot write); the node is what the user can find
 * and change, so the refusal becomes a value naming it (the exception stays as its cause).
 */
function lowerKernel(program: string, phase: FusedPhase, plan: KernelPlan, name: string): E.Either<CompileError, readonly Stage[]> {
  try {
    return E.right(emitKernel(plan, { fusion: phase.fusion, name }));
  } catch (cause) {
    if (!(cause instanceof Error)) throw cause;
    return E.left({ kind: "lowering", program, phase: phase.name, node: nodeRef(plan.anchor ?? plan.root, phase.order), message: cause.message.replace(/^codegen: /, ""), cause });
  }
}

/** The dispatches of one kernel plan, named from its provenance and its index in the phase. */
function dispatchesOf(program: string, phase: FusedPhase, plan: KernelPlan, index: number): E.Either<CompileError, LoweredDispatch[]> {
  const provenance = provenanceOf(plan);
  const base = dispatchName(phase.name, index, provenance);
  return pipe(
    lowerKernel(program, phase, plan, base),
    E.map((stages) =>
      stages.map((stage) => {
        // A kernel of several dispatches names each by a suffix (`_stage1`, `_pack`).
        const part = stage.name.startsWith(`${base}_`) ? stage.name.slice(base.length + 1) : "";
        return { stage, plan, provenance: part ? { ...provenance, part } : provenance };
      }),
    ),
  );
}

/** Stages with one memo key compute one buffer from the same inputs: the first one stays. */
function dropRepeats(dispatches: readonly LoweredDispatch[]): LoweredDispatch[] {
  const seen = new Set<string>();
  return dispatches.filter(({ stage }) => {
    if (stage.memoKey === undefined) return true;
    if (seen.has(stage.memoKey)) return false;
    seen.add(stage.memoKey);
    return true;
  });
}

/** The dispatch, or the first limit it exceeds. */
function checkLimits(program: string, phase: FusedPhase, limits: BindingLimits) {
  return (d: LoweredDispatch): E.Either<CompileError, LoweredDispatch> => {
    const fail = (message: string): E.Either<CompileError, LoweredDispatch> =>
      E.left({ kind: "limit", program, phase: phase.name, node: nodeRef(d.plan.anchor ?? d.plan.root, phase.order), kernel: d.stage.name, message });
    const { bindings } = d.stage;
    if (bindings.length > limits.maxBindings) return fail(`needs ${bindings.length} storage bindings, more than ${limits.maxBindings}`);
    for (const b of bindings) {
      // Constant tables are small (gather tables of a resize) and live in a persistent arena.
      if (b.ref.kind === "constant") continue;
      const bytes = b.ref.kind === "tensor" ? numel(b.ref.tensor.shape) * 4 : b.ref.bytes;
      if (bytes > limits.maxBindingBytes) return fail(`binds ${bytes} bytes, more than the ${limits.maxBindingBytes}-byte binding limit`);
    }
    return E.right(d);
  };
}

export function lowerPhase(program: string, limits: BindingLimits) {
  return (phase: FusedPhase): E.Either<CompileError, LoweredPhase> =>
    // Kernel headers number nodes by their place in the schedule, so text does not depend on
    // how many nodes the process built before (codegen/wgsl/kernel.ts, describe).
    withNumbering(new Map(phase.order.map((t, i) => [t.id, i])), () =>
      pipe(
        phase.fusion.kernels,
        E.traverseArrayWithIndex((i, plan) => dispatchesOf(program, phase, plan, i)),
        E.map((perKernel) => dropRepeats(perKernel.flat())),
        E.chain(E.traverseArray(checkLimits(program, phase, limits))),
        E.map((dispatches) => ({ ...phase, dispatches })),
      ),
    );
}
