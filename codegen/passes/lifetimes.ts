// Pass 5, lifetimes: a lowered phase -> where each buffer it binds lives, and how long the
// scratch ones are live (step s = the phase's s-th dispatch; state copies run after the last).
//
// A buffer lives in a persistent slot when it holds an input, a parameter, state or a phase
// output (those outlive the phase); in the persistent constants when it is a constant table;
// otherwise in the phase's scratch, which the plan pass packs by lifetime.

import * as E from "fp-ts/lib/Either.js";
import { pipe } from "fp-ts/lib/function.js";
import type { Tensor } from "../../dsl/index";
import { type CompileError, nodeRef } from "../compile-error";
import type { Lifetime } from "../memory";
import type { BufferRef } from "../wgsl/expr";
import type { LoweredDispatch, LoweredPhase } from "./lower";
import { type Slot, bytesOfTensor, inputName } from "./slots";

/** Where a bound buffer lives. */
export type Home =
  | { readonly kind: "slot"; readonly slot: string }
  | { readonly kind: "constant"; readonly name: string }
  /** `id` is unique within the phase (scratch is planned per phase). */
  | { readonly kind: "scratch"; readonly id: string };

export interface ResidentDispatch extends LoweredDispatch {
  /** The home of each binding, in binding order. */
  readonly homes: readonly Home[];
}

/** A new value of a parameter or state, copied into its slot when the phase ends. */
export interface StateCopy {
  readonly from: Home;
  readonly to: string;
}

export interface ResidentPhase extends LoweredPhase {
  readonly dispatches: readonly ResidentDispatch[];
  readonly copies: readonly StateCopy[];
  /** Scratch buffers, in order of first use (the planner's tie-break keeps that order). */
  readonly lifetimes: readonly Lifetime[];
  /** Constant tables the dispatches bind, by name. */
  readonly constants: ReadonlyMap<string, readonly number[]>;
  /** The slots of this phase's outputs, in output order. */
  readonly outputSlots: readonly Slot[];
}

/** Slot name by tensor id: the values of this phase that live in slots. */
type Residence = ReadonlyMap<number, string>;

/**
 * The slots of the phase's outputs, and which values live in slots. An output that is a value
 * already in a slot (an input returned as is, the same value under two output names) shares
 * that slot's bytes, so each value has one home.
 */
function outputSlotsOf(program: string, phase: LoweredPhase, slots: readonly Slot[]): E.Either<CompileError, { residence: Residence; outputSlots: readonly Slot[] }> {
  const names = new Set(slots.map((s) => s.spec.name));
  const residence = new Map<number, string>();
  const fail = (message: string, t?: Tensor) =>
    E.left<CompileError, never>({ kind: "slot", program, phase: phase.name, node: t ? nodeRef(t, phase.order) : undefined, message });
  for (const t of phase.order) {
    const name = inputName(t);
    if (name === undefined) continue;
    // defineProgram checks every input is declared; a program built without it may not be.
    if (!names.has(name)) return fail(`reads ${name}, which has no slot`, t);
    residence.set(t.id, name);
  }
  const outputSlots: Slot[] = [];
  for (const { name, value } of phase.outputs) {
    // Slots are found by name at run time (and in checkpoints): a name means one tensor.
    if (names.has(name)) return fail(`output name ${name} is used twice (or names a parameter)`, value);
    names.add(name);
    const existing = residence.get(value.id);
    const spec = { name, role: "output", shape: value.shape, dtype: value.dtype, bytes: bytesOfTensor(value) } as const;
    outputSlots.push({ spec, placement: existing === undefined ? { kind: "own" } : { kind: "alias", of: existing } });
    if (existing === undefined) residence.set(value.id, name);
  }
  return E.right({ residence, outputSlots });
}

function homeOf(ref: BufferRef, residence: Residence): Home {
  switch (ref.kind) {
    case "tensor": {
      const slot = residence.get(ref.tensor.id);
      return slot !== undefined ? { kind: "slot", slot } : { kind: "scratch", id: `t${ref.tensor.id}` };
    }
    case "temp":
      return { kind: "scratch", id: `temp:${ref.name}` };
    case "constant":
      return { kind: "constant", name: ref.name };
    default: {
      const never: never = ref;
      throw new Error(`unknown buffer ref ${JSON.stringify(never)}`);
    }
  }
}

/** A scratch buffer is live from the first dispatch that binds it to the last. */
function scratchLifetimes(dispatches: readonly ResidentDispatch[]): Map<string, { first: number; last: number; bytes: number }> {
  const lives = new Map<string, { first: number; last: number; bytes: number }>();
  dispatches.forEach(({ stage, homes }, s) =>
    homes.forEach((home, b) => {
      if (home.kind !== "scratch") return;
      const ref = stage.bindings[b]!.ref;
      const life = lives.get(home.id);
      if (life) life.last = s;
      else lives.set(home.id, { first: s, last: s, bytes: ref.kind === "tensor" ? bytesOfTensor(ref.tensor) : ref.kind === "temp" ? ref.bytes : 0 });
    }),
  );
  return lives;
}

/**
 * Copies of new state into its slots after the phase. A copy reads its source after the last
 * dispatch, so a scratch source lives until then. Copies run in order, so one may not read a
 * slot another copy of the phase overwrites: the phase's updates take effect together.
 */
function stateCopies(
  program: string,
  phase: LoweredPhase,
  residence: Residence,
  lives: Map<string, { first: number; last: number; bytes: number }>,
): E.Either<CompileError, StateCopy[]> {
  const targets = new Set<string>();
  const copies: StateCopy[] = [];
  for (const { name: target, value } of phase.updates) {
    const source = residence.get(value.id);
    if (source === target) continue; // unchanged
    const fail = (message: string) => E.left<CompileError, never>({ kind: "slot", program, phase: phase.name, node: nodeRef(value, phase.order), message });
    if (source !== undefined && targets.has(source)) return fail(`update of ${target} reads ${source}, which this phase also updates`);
    targets.add(target);
    const life = lives.get(`t${value.id}`);
    if (life) life.last = phase.dispatches.length;
    else if (source === undefined) return fail(`update ${target} has no computed value`);
    copies.push({ from: source !== undefined ? { kind: "slot", slot: source } : { kind: "scratch", id: `t${value.id}` }, to: target });
  }
  return E.right(copies);
}

/** `slots`: every slot declared so far (the program's, and earlier phases' outputs). */
export function phaseLifetimes(program: string, slots: readonly Slot[]) {
  return (phase: LoweredPhase): E.Either<CompileError, ResidentPhase> =>
    pipe(
      outputSlotsOf(program, phase, slots),
      E.chain(({ residence, outputSlots }) => {
        const dispatches = phase.dispatches.map((d) => ({ ...d, homes: d.stage.bindings.map((b) => homeOf(b.ref, residence)) }));
        const lives = scratchLifetimes(dispatches);
        const constants = new Map(dispatches.flatMap((d) => d.stage.bindings.flatMap((b) => (b.ref.kind === "constant" ? [[b.ref.name, b.ref.words] as const] : []))));
        return pipe(
          stateCopies(program, phase, residence, lives),
          E.map((copies) => ({
            ...phase,
            dispatches,
            copies,
            lifetimes: [...lives].map(([id, l]) => ({ id, ...l })),
            constants,
            outputSlots,
          })),
        );
      }),
    );
}
