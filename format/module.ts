// The contract between codegen and the runtime: what a generated module holds.
//
// A generated module is plain data (plus WGSL text): arenas (GPU buffers) with every tensor at
// a fixed, aligned offset; the shaders; and for each phase the ordered list of dispatches and
// the copies that apply the phase's state updates. The runtime creates every buffer, pipeline
// and bind group once, then encodes a whole step into one command encoder. Nothing here is
// Node-specific, so the same module runs in a browser's WebGPU.

/** Element type of a tensor; the DSL calls it DType (dsl/ir.ts re-exports it under that name). */
export type TensorDType = "f32" | "i32" | "bool";

/**
 * Role of a named tensor the caller can read or write. "hyper": the f32 vector of run-time
 * hyperparameters (dsl/hyper.ts; names and defaults in GeneratedModule.hyperparameters), set
 * once per run: not data to feed each step, not model state to checkpoint as a tensor.
 */
export type SlotRole = "input" | "hyper" | "param" | "state" | "output";

/** One element of the hyperparameter vector: its name and the program's default value. */
export interface HyperparameterSpec {
  readonly name: string;
  readonly value: number;
}

/**
 * How a parameter or state tensor's first value is drawn (format/init.ts draws it). The DSL
 * declares tensors with the same type under the name Init (dsl/params.ts).
 */
export type InitSpec =
  | { readonly kind: "normal"; readonly mean: number; readonly std: number }
  | { readonly kind: "uniform"; readonly low: number; readonly high: number }
  | { readonly kind: "constant"; readonly value: number }
  /**
   * PyTorch's default for Conv2d weights and biases: U(-1/sqrt(fan_in), 1/sqrt(fan_in)),
   * fan_in = in_channels * kh * kw (kaiming_uniform with a = sqrt(5) reduces to this bound).
   */
  | { readonly kind: "convDefault"; readonly fanIn: number };

export interface ArenaSpec {
  readonly name: string;
  readonly bytes: number;
  /** persistent: parameters, state, inputs and outputs, kept across steps; scratch: reused. */
  readonly kind: "persistent" | "scratch";
}

/** Where a tensor lives: a byte range of one arena. Bools are stored as u32. */
export interface Placement {
  readonly arena: number;
  readonly offset: number;
  readonly bytes: number;
}

export interface TensorSlot extends Placement {
  readonly name: string;
  readonly role: SlotRole;
  readonly shape: readonly number[];
  readonly dtype: TensorDType;
  /** For params and state: the model (e.g. "G") and the PyTorch state-dict key. */
  readonly model?: string;
  readonly key?: string;
  readonly group?: string;
  readonly trainable?: boolean;
  readonly init?: InitSpec;
}

/** Read-only data a kernel needs (interpolation tables), uploaded once at creation. */
export interface ConstantSpec extends Placement {
  readonly name: string;
  /** Little-endian 32-bit words (f32 values as their bit patterns). */
  readonly words: readonly number[];
}

/** The type of a pipeline-overridable constant (`override litN: T;`) of a pooled kernel. */
export type OverrideType = "i32" | "u32" | "f32";

/** The WGSL name of a pooled kernel's k-th override: `lit<k>`, a lifted literal. */
export const overrideName = (k: number): string => `lit${k}`;

/** What a kernel does with a storage binding. */
export type BindingAccess = "read" | "read_write";

/**
 * A kernel of the shared pool (generated/kernels/): one text for every use at every size.
 * Its sizes and constants are override constants lit0..litN, valued by each use (KernelVariant).
 */
export interface ShaderSpec {
  /** Pool id: `<template>_<hash of the text>`, the same in every program that uses it. */
  readonly name: string;
  readonly wgsl: string;
  /** Types of the overrides lit0..litN, in order. Omitted: none. */
  readonly overrides?: readonly OverrideType[];
  /**
   * Access of each storage binding, in binding order, as the codegen declared it. The WGSL
   * declares every binding read_write (WebGPU checks usage per buffer, and a kernel's
   * operands and result are ranges of one arena) and says `// read only` beside the others;
   * this list is that same declaration as data, so the runtime reads no shader text.
   * Omitted: every binding read_write.
   */
  readonly access?: readonly BindingAccess[];
}

/**
 * Lanes of the subgroup that kernel variants needing the "subgroups" feature are written for: one
 * workgroup of this many invocations is one subgroup, and lanes share values with
 * subgroupBroadcast(v, lane) for lane < SUBGROUP_LANES. lavapipe runs 8-wide (AVX2) subgroups.
 */
export const SUBGROUP_LANES = 8;

/** The adapters a kernel variant is meant for: CPU adapters (lavapipe, SwiftShader) or GPUs. */
export type AdapterClass = "cpu" | "gpu";

/**
 * The pipeline override holding a kernel's tile size where its use offers several (KernelVariant
 * tile): the rows of a CPU variant's subgroup tile. Not a lifted literal (lit<N>): its value is
 * the runtime's choice, not the codegen's.
 */
export const TILE_OVERRIDE = "tile_rows";

/**
 * Tile sizes one use of a kernel can run with, each giving the same bits (every output sums its
 * terms in one fixed order whatever the tile): the runtime may run any candidate (runtime/tune.ts
 * times them on the device). A tile of `r` sets TILE_OVERRIDE to r and the grid along `axis` to
 * ceil(extent / r); the other grid dimensions are the variant's.
 */
export interface TileSpec {
  /** The tile the use runs untuned: the variant's workgroups are this tile's grid. */
  readonly rows: number;
  /** Every tile the use may run, ascending; includes `rows`. */
  readonly candidates: readonly number[];
  readonly axis: 0 | 1 | 2;
  /** Rows of output along `axis` (matmul rows, convolution pixels). */
  readonly extent: number;
}

/** The workgroups of a use run with a tile of `rows` rows. */
export function tileWorkgroups(workgroups: readonly [number, number, number], tile: TileSpec, rows: number): [number, number, number] {
  const grid: [number, number, number] = [...workgroups];
  grid[tile.axis] = Math.ceil(tile.extent / rows);
  return grid;
}

export interface KernelVariant {
  /** Omitted: suits every adapter. */
  readonly adapter?: AdapterClass;
  /** Device features the shader needs (e.g. "subgroups"); the variant is skipped without them. */
  readonly features?: readonly string[];
  readonly shader: number;
  /** Values of the shader's overrides lit0..litN for this use, in order. Omitted: none. */
  readonly constants?: readonly number[];
  readonly workgroups: readonly [number, number, number];
  /** Tile sizes this use can run with, where its shader declares TILE_OVERRIDE (even for one candidate). */
  readonly tile?: TileSpec;
}

/** Whether a dispatch computes part of a forward pass, a gradient, or an optimizer update. */
export type Pass = "forward" | "backward";

/**
 * What a dispatch computes, in the program's terms: the DSL scope of the node it stores
 * (`source.layer4.0.conv2`; gradients carry the scope of the forward node they differentiate),
 * whether it is a gradient, its op, and the first parameter it reads, if any.
 */
export interface Provenance {
  readonly scope: string;
  readonly pass: Pass;
  readonly op: string;
  readonly param?: string;
  /** Which dispatch of a kernel made of several (`stage1`, `stage2`, `pack`); omitted for one. */
  readonly part?: string;
}

export interface Dispatch {
  readonly name: string;
  /** What it computes (generated modules always say; hand-written ones may not). */
  readonly provenance?: Provenance;
  /** Storage bindings 0..n-1 of the shader, in order. */
  readonly bindings: readonly Placement[];
  /** The first variant whose adapter class matches (or that has none) is used. */
  readonly variants: readonly KernelVariant[];
}

export interface Copy {
  readonly from: Placement;
  readonly to: Placement;
}

export interface PhaseSpec {
  readonly name: string;
  readonly dispatches: readonly Dispatch[];
  /** Applied after the phase's dispatches: new values of params/state into their slots. */
  readonly copies: readonly Copy[];
  /** Names (TensorSlot.name) of the phase's outputs. */
  readonly outputs: readonly string[];
}

export interface GeneratedModule {
  readonly name: string;
  readonly config: Readonly<Record<string, unknown>>;
  /** Elements of the "hyper" slot `hyperparameters`, in order; empty when the program has none. */
  readonly hyperparameters: readonly HyperparameterSpec[];
  readonly arenas: readonly ArenaSpec[];
  readonly tensors: readonly TensorSlot[];
  readonly constants: readonly ConstantSpec[];
  readonly shaders: readonly ShaderSpec[];
  readonly phases: readonly PhaseSpec[];
  /** Device limits the module needs (the runtime requests them). */
  readonly limits: {
    readonly maxStorageBufferBindingSize: number;
    readonly maxBufferSize: number;
    readonly maxStorageBuffersPerShaderStage: number;
  };
}
