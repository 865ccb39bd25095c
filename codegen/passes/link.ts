// Pass 7, link: placed buffers and lowered stages -> the module's dispatches over a kernel pool.
//
// Each stage's WGSL has its literals lifted (codegen/pool.ts): uses of one template at other
// sizes then share one pool kernel and differ in override values. Each binding gets the byte
// range its buffer's home was given by the plan pass.

import type { BindingAccess, Dispatch, PhaseSpec, Placement, ShaderSpec } from "../../format/module";
import { dispatchName } from "../../format/module-table";
import { kernelId, liftLiterals } from "../pool";
import { declaredAccess } from "../wgsl/expr";
import type { Stage } from "../wgsl/kernel";
import type { Home, ResidentPhase } from "./lifetimes";
import type { MemoryLayout } from "./plan";

/** One dispatch as the compiler made it, for reports and tests (parallel to the module's dispatches). */
export interface KernelRecord {
  readonly phase: string;
  readonly stage: Stage;
  /** The pool kernel of its portable variant. */
  readonly shader: number;
  /** The template's op, or "pointwise". */
  readonly anchor: string;
}

export interface Linked {
  readonly shaders: readonly ShaderSpec[];
  readonly phases: readonly PhaseSpec[];
  /** Every dispatch of every phase, in order. */
  readonly kernels: readonly KernelRecord[];
}

/** The byte range of a home in phase `phase` of the layout. */
export function placementOf(layout: MemoryLayout, phase: number, home: Home): Placement {
  switch (home.kind) {
    case "slot":
      return layout.slots.get(home.slot)!;
    case "constant": {
      const { arena, offset, bytes } = layout.constants.find((c) => c.name === home.name)!;
      return { arena, offset, bytes };
    }
    case "scratch": {
      const b = layout.scratch[phase]!.plan.buffers.get(home.id);
      if (!b) throw new Error(`codegen: internal: scratch buffer ${home.id} was not planned`);
      const { arenaBytes } = layout;
      return { arena: layout.persistentArenas + Math.floor(b.offset / arenaBytes), offset: b.offset % arenaBytes, bytes: b.bytes };
    }
    default: {
      const never: never = home;
      throw new Error(`unknown home ${JSON.stringify(never)}`);
    }
  }
}

/** The pool being built: kernels by content id, in order of first use. */
interface Pool {
  readonly index: Map<string, number>;
  readonly shaders: ShaderSpec[];
}

/** The pool kernel of one use (added on its first use), and the use's override values. */
function useOf(pool: Pool, wgsl: string, access: readonly BindingAccess[]): { shader: number; constants: readonly number[] } {
  const lifted = liftLiterals(wgsl);
  const name = kernelId(lifted.template, lifted.text, access);
  let shader = pool.index.get(name);
  if (shader === undefined) {
    shader = pool.shaders.length;
    pool.index.set(name, shader);
    pool.shaders.push({ name, wgsl: lifted.text, overrides: lifted.overrides, access });
  }
  return { shader, constants: lifted.values };
}

/** The dispatches and state copies of one phase, and the record of each dispatch. */
function linkPhase(pool: Pool, layout: MemoryLayout, phase: ResidentPhase, index: number): { spec: PhaseSpec; kernels: KernelRecord[] } {
  const place = (home: Home) => placementOf(layout, index, home);
  const kernels: KernelRecord[] = [];
  const dispatches = phase.dispatches.map(({ stage, provenance, plan, homes }, di): Dispatch => {
    const access = stage.bindings.map(declaredAccess);
    // Specialised variants first; the portable default last, for every other adapter.
    // A variant with tile candidates keeps them (format/module.ts, TileSpec): one text for every tile.
    const alternatives = stage.alternatives.map((a) => ({
      adapter: a.adapter,
      features: a.features,
      ...useOf(pool, a.wgsl, access),
      workgroups: a.workgroups,
      ...(a.tile ? { tile: a.tile } : {}),
    }));
    const main = useOf(pool, stage.wgsl, access);
    kernels.push({ phase: phase.name, stage, shader: main.shader, anchor: plan.anchor?.node.op ?? "pointwise" });
    return {
      // Named as the emitted table names it (format/module-table.ts), by position in the phase.
      name: dispatchName(phase.name, di, provenance),
      provenance,
      bindings: homes.map(place),
      variants: [...alternatives, { ...main, workgroups: stage.workgroups }],
    };
  });
  const copies = phase.copies.map((c) => ({ from: place(c.from), to: place({ kind: "slot", slot: c.to }) }));
  return { spec: { name: phase.name, dispatches, copies, outputs: phase.outputs.map((o) => o.name) }, kernels };
}

export function linkPhases(phases: readonly ResidentPhase[], layout: MemoryLayout): Linked {
  const pool: Pool = { index: new Map(), shaders: [] };
  const linked = phases.map((p, i) => linkPhase(pool, layout, p, i));
  return { shaders: pool.shaders, phases: linked.map((l) => l.spec), kernels: linked.flatMap((l) => l.kernels) };
}
