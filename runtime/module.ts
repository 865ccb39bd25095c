// The contract between codegen and the runtime: what a generated module holds.
//
// A generated module is plain data (plus WGSL text): arenas (GPU buffers) with every tensor at
// a fixed, aligned offset; the shaders; and for each phase the ordered list of dispatches and
// the copies that apply the phase's state updates. The runtime creates every buffer, pipeline
// and bind group once, then encodes a whole step into one command encoder. Nothing here is
// Node-specific, so the same module runs in a browser's WebGPU.

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

/** Initial value of a parameter or state tensor (see dsl/params.ts: Init). */
export type InitSpec =
  | { readonly kind: "normal"; readonly mean: number; readonly std: number }
  | { readonly kind: "uniform"; readonly low: number; readonly high: number }
  | { readonly kind: "constant"; readonly value: number }
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

export interface ShaderSpec {
  readonly name: string;
  readonly wgsl: string;
}

/** The adapters a kernel variant is meant for: CPU adapters (lavapipe, SwiftShader) or GPUs. */
export type AdapterClass = "cpu" | "gpu";

export interface KernelVariant {
  /** Omitted: suits every adapter. */
  readonly adapter?: AdapterClass;
  /** Device features the shader needs (e.g. "subgroups"); the variant is skipped without them. */
  readonly features?: readonly string[];
  readonly shader: number;
  readonly workgroups: readonly [number, number, number];
}

export interface Dispatch {
  readonly name: string;
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
