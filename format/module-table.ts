// The compact form a generated program is written in (generated/<program>/module.ts), and its
// expansion into the GeneratedModule the runner takes (format/module.ts).
//
// A program is a dispatch table over the shared kernel pool (generated/kernels/): every
// repeated thing is written once and referred to by index — the pool kernels it uses, each use
// of a kernel (its override values and grid), each byte range it binds, each scope it names —
// so a program of 5,000 dispatches is a few hundred kilobytes a reviewer can still read, and a
// template change touches the pool, not the programs.

import type {
  AdapterClass,
  Dispatch,
  GeneratedModule,
  InitSpec,
  KernelVariant,
  Pass,
  Placement,
  Provenance,
  ShaderSpec,
  SlotRole,
  TensorDType,
  TensorSlot,
  TileSpec,
} from "./module.js";

/** A use's tile candidates (TileSpec): [rows run untuned, candidate rows, grid axis, extent]. */
export type TileRow = readonly [number, readonly number[], 0 | 1 | 2, number];

/** A use of a pool kernel: [kernel index, override values, workgroups, adapter?, features?, tile?]. */
export type UseRow = readonly [number, readonly number[], readonly [number, number, number], AdapterClass?, (readonly string[])?, TileRow?];

export const tileRow = (t: TileSpec): TileRow => [t.rows, t.candidates, t.axis, t.extent];

/** [arena, offset, bytes]. */
export type BufferRow = readonly [number, number, number];

/**
 * [uses (tried in order, first match wins), bound buffers, scope index, pass (0 forward,
 * 1 backward), op, parameter index or -1, part of a several-dispatch kernel (omitted: none)].
 */
export type DispatchRow = readonly [readonly number[], readonly number[], number, 0 | 1, string, number, string?];

/**
 * [name, role, shape, dtype, arena, offset, init index or -1, group or "", trainable 0/1].
 * Params and state are named `<model>/<key>`: the model and state-dict key are the name's parts.
 */
export type TensorRow = readonly [string, SlotRole, readonly number[], TensorDType, number, number, number, string, 0 | 1];

export interface PhaseTable {
  readonly name: string;
  readonly outputs: readonly string[];
  readonly dispatches: readonly DispatchRow[];
  /** [from buffer, to buffer]. */
  readonly copies: readonly (readonly [number, number])[];
}

/** The module's own fields as they are, and its rows in compact form. */
export interface ModuleTable extends Pick<GeneratedModule, "name" | "config" | "hyperparameters" | "limits" | "arenas" | "constants"> {
  readonly inits: readonly InitSpec[];
  readonly tensors: readonly TensorRow[];
  readonly kernels: readonly ShaderSpec[];
  readonly uses: readonly UseRow[];
  readonly buffers: readonly BufferRow[];
  readonly scopes: readonly string[];
  readonly params: readonly string[];
  readonly phases: readonly PhaseTable[];
}

const PASSES: readonly Pass[] = ["forward", "backward"];

/** A name as part of an identifier: without .weight/.bias, other characters as `_`, none at the ends. */
export const identifierPart = (name: string): string =>
  name.replace(/\.(weight|bias)$/, "").replace(/[^A-Za-z0-9]+/g, "_").replace(/^_+|_+$/g, "");

/** The name of a dispatch: phase, position, op and the first parameter it reads (without .weight/.bias). */
export function dispatchName(phase: string, index: number, p: Pick<Provenance, "op" | "param" | "part">): string {
  const clean = identifierPart(p.param ?? "");
  return `${phase}_${String(index).padStart(3, "0")}_${p.op}${clean ? `_${clean}` : ""}${p.part ? `_${p.part}` : ""}`;
}

function at<T>(rows: readonly T[], i: number, what: string, module: string): T {
  const row = rows[i];
  if (row === undefined) throw new Error(`generated module ${module}: ${what} ${i} does not exist (regenerate it with npm run codegen)`);
  return row;
}

const placement = ([arena, offset, bytes]: BufferRow): Placement => ({ arena, offset, bytes });

function expandTensor(t: ModuleTable, [name, role, shape, dtype, arena, offset, init, group, trainable]: TensorRow): TensorSlot {
  const bytes = shape.reduce((n, d) => n * d, 1) * 4;
  const slash = name.indexOf("/");
  const owned = (role === "param" || role === "state") && slash > 0;
  return {
    name,
    role,
    shape,
    dtype,
    bytes,
    ...(owned ? { model: name.slice(0, slash), key: name.slice(slash + 1) } : {}),
    ...(group !== "" ? { group } : {}),
    ...(owned ? { trainable: trainable === 1 } : {}),
    ...(init >= 0 ? { init: at(t.inits, init, "init", t.name) } : {}),
    arena,
    offset,
  };
}

function expandUse(t: ModuleTable, [kernel, constants, workgroups, adapter, features, tile]: UseRow): KernelVariant {
  at(t.kernels, kernel, "kernel", t.name);
  return {
    // Absent trailing fields are written as nothing, or as null when a later one is present.
    ...(adapter != null ? { adapter } : {}),
    ...(features != null ? { features } : {}),
    shader: kernel,
    ...(constants.length > 0 ? { constants } : {}),
    workgroups,
    ...(tile != null ? { tile: { rows: tile[0], candidates: tile[1], axis: tile[2], extent: tile[3] } } : {}),
  };
}

/** The GeneratedModule a table describes. Throws on an index out of range (a corrupt file). */
export function expandTable(t: ModuleTable): GeneratedModule {
  const uses = t.uses.map((u) => expandUse(t, u));
  const buffers = t.buffers.map(placement);
  const buffer = (i: number) => at(buffers, i, "buffer", t.name);
  const phases = t.phases.map((p) => ({
    name: p.name,
    outputs: p.outputs,
    dispatches: p.dispatches.map(([useIds, bound, scope, pass, op, param, part], i): Dispatch => {
      const provenance: Provenance = {
        scope: at(t.scopes, scope, "scope", t.name),
        pass: at(PASSES, pass, "pass", t.name),
        op,
        ...(param >= 0 ? { param: at(t.params, param, "parameter name", t.name) } : {}),
        ...(part ? { part } : {}),
      };
      return {
        name: dispatchName(p.name, i, provenance),
        provenance,
        bindings: bound.map(buffer),
        variants: useIds.map((u) => at(uses, u, "kernel use", t.name)),
      };
    }),
    copies: p.copies.map(([from, to]) => ({ from: buffer(from), to: buffer(to) })),
  }));
  return {
    name: t.name,
    config: t.config,
    hyperparameters: t.hyperparameters,
    arenas: t.arenas,
    tensors: t.tensors.map((row) => expandTensor(t, row)),
    constants: t.constants,
    shaders: t.kernels,
    phases,
    limits: t.limits,
  };
}
