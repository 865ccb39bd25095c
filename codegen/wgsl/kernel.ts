// Assembling one WGSL kernel: bindings, helpers, a provenance header, and the thread index.

import { type Tensor, numel } from "../../dsl/index";
import { SUBGROUP_LANES, TILE_OVERRIDE, type TileSpec } from "../../format/module";
import { type Binding, type BufferRef, HELPERS, KernelBuilder, Scope, flatIndex, toStorage, valueAt } from "./expr";

/** Workgroup size of every generated kernel: 64 invocations = 8 SIMD-8 rows on lavapipe. */
export const WORKGROUP = 64;

/** One dispatch of a generated kernel, before memory planning gives its bindings offsets. */
export interface Stage {
  readonly name: string;
  /** The shader, free of node ids and names: equal kernels have equal text. */
  readonly wgsl: string;
  /** Which DSL nodes the dispatch computes, and what each binding holds. */
  readonly provenance: readonly string[];
  readonly bindings: readonly Binding[];
  readonly workgroups: readonly [number, number, number];
  readonly flops: number;
  readonly bytes: number;
  /**
   * Other shaders for the same dispatch, tried first, each for one adapter class: same
   * bindings in the same order, different code and grid (kernel variants, see format/module.ts).
   */
  readonly alternatives: readonly Alternative[];
  /**
   * Stages with the same key compute the same buffer from the same inputs (repacked weights
   * of one parameter): the schedule keeps the first and drops the others.
   */
  readonly memoKey?: string;
}

export interface Alternative {
  readonly adapter: "cpu" | "gpu";
  readonly features: readonly string[];
  readonly wgsl: string;
  readonly workgroups: readonly [number, number, number];
  /** Tile sizes the shader can run with (it declares TILE_OVERRIDE); workgroups are those of tile.rows. */
  readonly tile?: TileSpec;
}

/**
 * Workgroups for `threads` invocations, folded into a 2-D grid because one dimension holds at
 * most 65535 workgroups. The kernel rebuilds the linear index from num_workgroups.
 */
export function gridFor(threads: number): [number, number, number] {
  const groups = Math.max(1, Math.ceil(threads / WORKGROUP));
  const x = Math.min(groups, 32768);
  return [x, Math.ceil(groups / x), 1];
}

export interface KernelText {
  readonly name: string;
  /** Lines describing what the kernel covers (DSL nodes, shapes, tiles, FLOPs, bytes). */
  readonly header: readonly string[];
  /** What the kernel computes in terms of DSL nodes (kept out of the shader text). */
  readonly provenance?: readonly string[];
  readonly body: Scope;
  /**
   * Lines run once per invocation before its loop over elements (perInvocation): the values the
   * body hoisted (Scope: loop hoisting), such as an optimizer's scalar coefficients.
   */
  readonly prologue?: Scope;
  readonly threads: number;
  readonly flops: number;
  /**
   * Indices per invocation (default 1): the body runs for gi = (block*E + e)*WORKGROUP + lid,
   * e < E, so neighbouring invocations still touch neighbouring elements. Lavapipe pays per
   * invocation, not per element: 8 elements each double an elementwise kernel's bandwidth.
   */
  readonly perInvocation?: number;
  /**
   * Block mode: the body indexes by its workgroup, `blk` (the linear workgroup id), below
   * `blocks`, instead of by `gi`; it runs its own loops over the workgroup's lanes.
   */
  readonly blocks?: number;
}

let numbering: ReadonlyMap<number, number> | undefined;

/** Runs `body` with node numbers taken from `map` (program-relative, so output is stable). */
export function withNumbering<T>(map: ReadonlyMap<number, number>, body: () => T): T {
  const saved = numbering;
  numbering = map;
  try {
    return body();
  } finally {
    numbering = saved;
  }
}

/** Short description of a node for provenance: `conv2d#12 [1,64,33,33] (layer1.0)`. */
export function describe(t: Tensor): string {
  const name = t.node.op === "input" ? ` ${t.node.attrs.name}` : "";
  const scope = t.scope ? ` (${t.scope})` : "";
  return `${t.node.op}#${numbering?.get(t.id) ?? t.id}${name} [${t.shape.join(",")}]${scope}`;
}

/** A tensor's type, for shader headers: `f32[1,64,33,33]`. */
export const sig = (t: Tensor): string => `${t.dtype}[${t.shape.join(",")}]`;

export function bytesOf(bindings: readonly Binding[]): number {
  let total = 0;
  for (const b of bindings) {
    if (b.ref.kind === "tensor") total += numel(b.ref.tensor.shape) * 4;
    else if (b.ref.kind === "temp") total += b.ref.bytes;
    else total += b.ref.words.length * 4;
  }
  return total;
}

function bindingNote(b: Binding, i: number): string {
  const what = b.ref.kind === "tensor" ? describe(b.ref.tensor) : `${b.ref.kind} ${b.ref.name}`;
  return `b${i} (${b.access}): ${what}`;
}

/** The WGSL of a kernel with its shape-level header; provenance is kept beside it. */
export function assemble(k: KernelBuilder, text: KernelText): Stage {
  const bytes = bytesOf(k.bindings);
  const covered = [...k.covered].sort((a, b) => a.id - b.id).map(describe);
  const provenance = [
    ...(text.provenance ?? []),
    ...(covered.length ? [`inlined: ${covered.join(", ")}`] : []),
    ...k.bindings.map(bindingNote),
  ];
  const E = text.perInvocation ?? 1;
  const header = [
    ...text.header.map((h) => `// ${h}`),
    `// threads ${text.threads}${E > 1 ? ` (${E} per invocation)` : ""}, workgroup ${WORKGROUP}; FLOPs ${text.flops}; bytes ${bytes}`,
  ];
  const helpers = [...k.helpers].sort().map((h) => k.helperText(h));
  const wgsl = [
    ...header,
    ...k.declarations(),
    ...helpers,
    `@compute @workgroup_size(${WORKGROUP})`,
    `fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {`,
    ...(text.blocks !== undefined
      ? [`  let blk = i32(wid.y * nwg.x + wid.x);`, `  if (blk >= ${text.blocks}i) { return; }`, ...text.body.lines]
      : E === 1
      ? [`  let gi = i32((wid.y * nwg.x + wid.x) * ${WORKGROUP}u + lid.x);`, `  if (gi >= ${text.threads}i) { return; }`, ...(text.prologue?.lines ?? []), ...text.body.lines]
      : [
          `  let blk = i32(wid.y * nwg.x + wid.x);`,
          ...(text.prologue?.lines ?? []),
          `  for (var e = 0i; e < ${E}i; e++) {`,
          `    let gi = (blk * ${E}i + e) * ${WORKGROUP}i + i32(lid.x);`,
          `    if (gi >= ${text.threads}i) { break; }`,
          ...text.body.lines.map((l) => `  ${l}`),
          `  }`,
        ]),
    `}`,
    ``,
  ].join("\n");
  return { name: text.name, wgsl, provenance, bindings: [...k.bindings], workgroups: gridFor(text.blocks !== undefined ? text.blocks * WORKGROUP : Math.ceil(text.threads / E)), flops: text.flops, bytes, alternatives: [] };
}

/** Binding of the value a kernel writes. */
export function bindOutput(k: KernelBuilder, ref: BufferRef, elem: Binding["elem"]): string {
  return k.bind(ref, "read_write", elem);
}

/**
 * Evaluates the kernel's root at idx, with the anchor (if the root is not the anchor itself)
 * replaced by `anchorValue`, and stores it (rule E1 of fusion.ts).
 */
export function storeRoot(
  k: KernelBuilder,
  scope: Scope,
  root: Tensor,
  anchor: Tensor | undefined,
  anchorValue: string | undefined,
  idx: readonly string[],
): string {
  if (anchor && anchorValue !== undefined) k.substitutions.set(anchor.id, () => anchorValue);
  const value = valueAt(k, scope, root, idx, true);
  if (anchor) k.substitutions.delete(anchor.id);
  const out = bindOutput(k, { kind: "tensor", tensor: root }, root.dtype === "bool" ? "u32" : root.dtype);
  scope.line(`${out}[${k.offset(root.shape, idx)}] = ${toStorage(value, root.dtype)};`);
  return value;
}

/**
 * Subgroup size the CPU variants are written for: lavapipe runs 8-wide SIMD (AVX2). The runtime
 * refuses these variants on devices with narrower subgroups (runtime/check-module.ts).
 */
export const CPU_SUBGROUP = SUBGROUP_LANES;

/**
 * A CPU-adapter variant: one subgroup per workgroup, indexed by workgroup id (so values derived
 * from it are uniform and loads of them are scalar loads), with subgroup broadcasts instead
 * of shared memory. Its bindings must equal the default variant's, in order.
 */
export function assembleSubgroupVariant(
  k: KernelBuilder,
  expected: readonly Binding[],
  text: { readonly header: readonly string[]; readonly body: Scope; readonly workgroups: readonly [number, number, number]; readonly tile?: TileSpec },
): Alternative {
  const same =
    k.bindings.length === expected.length &&
    k.bindings.every((b, i) => b.elem === expected[i]!.elem || b.elem === "vec4<f32>") &&
    k.bindings.every((b, i) => sameRef(b.ref, expected[i]!.ref));
  if (!same) throw new Error("codegen: a kernel variant binds different buffers from its default variant");
  const helpers = [...k.helpers].sort().map((h) => k.helperText(h));
  const wgsl = [
    "enable subgroups;",
    ...text.header.map((h) => `// ${h}`),
    `// CPU variant: workgroup = one ${CPU_SUBGROUP}-lane subgroup; grid ${text.workgroups.join("x")}`,
    ...(text.tile ? [`// tile ${text.tile.rows} rows (candidates ${text.tile.candidates.join(", ")})`] : []),
    ...k.declarations(),
    // The tile's rows, set per use by the runtime (format/module.ts, TileSpec).
    ...(text.tile ? [`override ${TILE_OVERRIDE}: i32;`] : []),
    ...helpers,
    `@compute @workgroup_size(${CPU_SUBGROUP})`,
    `fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {`,
    `  let lane = i32(lid.x);`,
    ...text.body.lines,
    `}`,
    ``,
  ].join("\n");
  return { adapter: "cpu", features: ["subgroups"], wgsl, workgroups: text.workgroups, ...(text.tile ? { tile: text.tile } : {}) };
}

function sameRef(a: BufferRef, b: BufferRef): boolean {
  if (a.kind !== b.kind) return false;
  if (a.kind === "tensor") return a.tensor.id === (b as { tensor: Tensor }).tensor.id;
  return a.name === (b as { name: string }).name;
}
