// Pass 1, canonicalise: a DSL phase -> the same phase over the canonical graph (codegen/canonical.ts).
//
// Outputs and updates are canonicalised together, so hash-consing merges what they share (the
// BN statistics of the forward and the backward pass, the target discriminator pass both the
// generator's and the discriminator's losses read).

import type { Phase, Tensor } from "../../dsl/index";
import { canonicalize } from "../canonical";

/** A value the phase hands out: an output under its name, or an update of the slot it names. */
export interface NamedValue {
  readonly name: string;
  readonly value: Tensor;
}

export interface CanonicalPhase {
  readonly name: string;
  /** Outputs in declaration order (their slots are made in this order). */
  readonly outputs: readonly NamedValue[];
  /** New values of params and state, by the entry they replace, in declaration order. */
  readonly updates: readonly NamedValue[];
  /** The distinct values to compute: outputs and updates that are not inputs themselves. */
  readonly roots: readonly Tensor[];
}

export function canonicalisePhase(phase: Phase): CanonicalPhase {
  const outputs = Object.entries(phase.outputs);
  const updates = Object.entries(phase.updates);
  const canon = canonicalize([...outputs.map(([, t]) => t), ...updates.map(([, t]) => t)]);
  const named = (entries: readonly [string, Tensor][], from: number): NamedValue[] => entries.map(([name], i) => ({ name, value: canon[from + i]! }));
  return {
    name: phase.name,
    outputs: named(outputs, 0),
    updates: named(updates, outputs.length),
    // An input returned as is has nothing to compute: it is read from its slot.
    roots: [...new Set(canon.filter((t) => t.node.op !== "input"))],
  };
}
