// The persistent slots of a program: what lives across steps in the persistent arenas.
//
// The hyperparameter vector, the data inputs, the parameters and state are declared by the
// program (declareSlots); each phase adds its outputs (lifetimes pass). Their order is the
// order of the module's tensor table and of their placement, so it is kept stable: declared
// slots first, then outputs phase by phase.

import { HYPERPARAMETERS_INPUT, type Program, type Tensor, numel } from "../../dsl/index";
import type { TensorSlot } from "../../format/module";

/** A slot before placement. */
export type SlotSpec = Omit<TensorSlot, "arena" | "offset">;

/**
 * Where a slot's bytes are: its own, or those of an earlier slot holding the same value (a
 * phase output that is an input returned as is, or another output of the same value).
 */
export type SlotPlacement = { readonly kind: "own" } | { readonly kind: "alias"; readonly of: string };

export interface Slot {
  readonly spec: SlotSpec;
  readonly placement: SlotPlacement;
}

/** f32, i32 and bool (stored as u32) all take 4 bytes an element. */
export const bytesOfTensor = (t: { readonly shape: readonly number[] }): number => numel(t.shape) * 4;

const own = (spec: SlotSpec): Slot => ({ spec, placement: { kind: "own" } });

export const inputName = (t: Tensor): string | undefined => (t.node.op === "input" ? t.node.attrs.name : undefined);

/** The slots a program declares, in a stable order: hyperparameters, data inputs, params and state. */
export function declareSlots(program: Program): readonly Slot[] {
  const hyper = program.hyperparameters.length;
  const vector: Slot[] = hyper > 0 ? [own({ name: HYPERPARAMETERS_INPUT, role: "hyper", shape: [hyper], dtype: "f32", bytes: 4 * hyper })] : [];
  const inputs = program.inputs.map((t) => own({ name: inputName(t)!, role: "input", shape: t.shape, dtype: t.dtype, bytes: bytesOfTensor(t) }));
  const params = program.params.map((e) =>
    own({
      name: e.name,
      role: e.spec.kind,
      shape: e.spec.shape,
      dtype: e.spec.dtype,
      bytes: bytesOfTensor(e.spec),
      model: e.model,
      key: e.key,
      group: e.spec.group,
      trainable: e.spec.trainable,
      init: e.spec.init,
    }),
  );
  return [...vector, ...inputs, ...params];
}
