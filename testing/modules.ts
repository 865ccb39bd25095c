// Small hand-written generated modules for the runtime's tests: each exercises one thing the
// runner must get right (offsets, phase copies, variants, constants, errors), with four-element
// tensors so expected values can be checked by eye.

import type { ArenaSpec, GeneratedModule, KernelVariant, Placement, ShaderSpec, TensorSlot } from "../format/module.js";

export const N = 4;
const BYTES = N * 4;
/** Dawn's minStorageBufferOffsetAlignment; every binding starts at a multiple of it. */
export const ALIGN = 256;

const PERSISTENT: ArenaSpec = { name: "persistent", bytes: 4 * ALIGN, kind: "persistent" };
const SCRATCH: ArenaSpec = { name: "scratch", bytes: 4 * ALIGN, kind: "scratch" };

export const SMALL_LIMITS: GeneratedModule["limits"] = {
  maxStorageBufferBindingSize: 1 << 16,
  maxBufferSize: 1 << 16,
  maxStorageBuffersPerShaderStage: 4,
};

/** The byte range of a four-element tensor at `slot` × 256 bytes into `arena`. */
export function at(arena: number, slot: number, bytes = BYTES): Placement {
  return { arena, offset: slot * ALIGN, bytes };
}

export function tensor(name: string, role: TensorSlot["role"], p: Placement, dtype: TensorSlot["dtype"] = "f32"): TensorSlot {
  return { name, role, dtype, shape: [p.bytes / 4], ...p };
}

export type Access = "read" | "read_write";

/**
 * An elementwise kernel: `inputs` are read (with `access`), the last binding `out` is written,
 * and `expr` computes out[i] from the inputs indexed by i (e.g. "a[i] + b[i]").
 */
export function elementwise(inputs: readonly string[], expr: string, access: Access = "read_write"): string {
  const declarations = [
    ...inputs.map((name, i) => `@group(0) @binding(${i}) var<storage, ${access}> ${name}: array<f32>;`),
    `@group(0) @binding(${inputs.length}) var<storage, read_write> out: array<f32>;`,
  ];
  return `${declarations.join("\n")}

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) id: vec3u) {
  let i = id.x;
  if (i >= arrayLength(&out)) { return; }
  out[i] = ${expr};
}
`;
}

/** The shader spec of an elementwise kernel, with the access of its bindings as data (ShaderSpec.access). */
export function elementwiseShader(name: string, inputs: readonly string[], expr: string, access: Access = "read_write"): ShaderSpec {
  return { name, wgsl: elementwise(inputs, expr, access), access: [...inputs.map(() => access), "read_write"] };
}

const ONE_GROUP: KernelVariant["workgroups"] = [1, 1, 1];

function module(name: string, parts: Partial<GeneratedModule> & Pick<GeneratedModule, "tensors" | "shaders" | "phases">): GeneratedModule {
  return { name, config: {}, hyperparameters: [], arenas: [PERSISTENT, SCRATCH], constants: [], limits: SMALL_LIMITS, ...parts };
}

/**
 * sum = a + b with a, b and sum at non-zero offsets of one arena (`inputArena` 1: the scratch
 * arena, which the output shares), then a phase copy of sum into the parameter p.
 */
export function addModule(options: { access?: Access; inputArena?: 0 | 1 } = {}): GeneratedModule {
  const inputArena = options.inputArena ?? 1;
  const a = at(inputArena, 1);
  const b = at(inputArena, 2);
  const sum = at(1, 3);
  const p = at(0, 3);
  return module("add", {
    tensors: [tensor("a", "input", a), tensor("b", "input", b), tensor("sum", "output", sum), tensor("p", "param", p)],
    shaders: [elementwiseShader("add", ["a", "b"], "a[i] + b[i]", options.access)],
    phases: [
      {
        name: "forward",
        dispatches: [{ name: "add", bindings: [a, b, sum], variants: [{ shader: 0, workgroups: ONE_GROUP }] }],
        copies: [{ from: sum, to: p }],
        outputs: ["sum"],
      },
    ],
  });
}

/** Phase "scale" copies 2x into state s; phase "shift" reads s: y = 2x + 1. */
export function twoPhaseModule(): GeneratedModule {
  const x = at(0, 0);
  const s = at(0, 1);
  const doubled = at(1, 0);
  const y = at(1, 1);
  return module("two-phase", {
    tensors: [tensor("x", "input", x), tensor("s", "state", s), tensor("y", "output", y)],
    shaders: [
      elementwiseShader("double", ["x"], "2.0 * x[i]", "read"),
      elementwiseShader("shift", ["s"], "s[i] + 1.0", "read"),
    ],
    phases: [
      {
        name: "scale",
        dispatches: [{ name: "double", bindings: [x, doubled], variants: [{ shader: 0, workgroups: ONE_GROUP }] }],
        copies: [{ from: doubled, to: s }],
        outputs: [],
      },
      {
        name: "shift",
        dispatches: [{ name: "shift", bindings: [s, y], variants: [{ shader: 1, workgroups: ONE_GROUP }] }],
        copies: [],
        outputs: ["y"],
      },
    ],
  });
}

/** y = x on variant "times1" and y = 2x on "times2"; `variants` says which adapter gets which. */
export function variantModule(variants: readonly { adapter?: "cpu" | "gpu"; shader: 0 | 1 }[]): GeneratedModule {
  const x = at(0, 0);
  const y = at(1, 0);
  return module("variants", {
    tensors: [tensor("x", "input", x), tensor("y", "output", y)],
    shaders: [
      { name: "times1", wgsl: elementwise(["x"], "x[i]", "read") },
      { name: "times2", wgsl: elementwise(["x"], "2.0 * x[i]", "read") },
    ],
    phases: [
      {
        name: "forward",
        dispatches: [{ name: "scale", bindings: [x, y], variants: variants.map((v) => ({ ...v, workgroups: ONE_GROUP })) }],
        copies: [],
        outputs: ["y"],
      },
    ],
  });
}

export const TABLE = [1.5, -2, 0.25, 8];

/** y = table * x, the table being a constant uploaded at creation. */
export function constantModule(): GeneratedModule {
  const table = at(0, 2);
  const x = at(0, 0);
  const y = at(1, 0);
  const words = Array.from(new Uint32Array(new Float32Array(TABLE).buffer));
  return module("constant", {
    tensors: [tensor("x", "input", x), tensor("y", "output", y)],
    constants: [{ name: "table", words, ...table }],
    shaders: [elementwiseShader("times_table", ["table", "x"], "table[i] * x[i]", "read")],
    phases: [
      {
        name: "forward",
        dispatches: [{ name: "times_table", bindings: [table, x, y], variants: [{ shader: 0, workgroups: ONE_GROUP }] }],
        copies: [],
        outputs: ["y"],
      },
    ],
  });
}

/**
 * acc += x per step: next = acc + x, then a copy of next into acc. `nextArena` 0 puts next in
 * acc's own arena, so the copy stays inside one buffer (which WebGPU forbids doing directly).
 */
export function accumulateModule(nextArena: 0 | 1 = 1): GeneratedModule {
  const acc = at(0, 0);
  const x = at(0, 1);
  const next = at(nextArena, 2);
  return module("accumulate", {
    tensors: [tensor("acc", "param", acc), tensor("x", "input", x)],
    shaders: [elementwiseShader("accumulate", ["acc", "x"], "acc[i] + x[i]", nextArena === 0 ? "read_write" : "read")],
    phases: [
      {
        name: "update",
        dispatches: [{ name: "accumulate", bindings: [acc, x, next], variants: [{ shader: 0, workgroups: ONE_GROUP }] }],
        copies: [{ from: next, to: acc }],
        outputs: [],
      },
    ],
  });
}

/** The WGSL of `add` with a stray '*' in its line 9, the one that computes out[i]. */
export const BROKEN_LINE = 9;
export const BROKEN_SOURCE = "out[i] = a[i] + * b[i];";
export function brokenShaderModule(): GeneratedModule {
  const m = addModule();
  const shader = m.shaders[0];
  if (shader === undefined) throw new Error("addModule has a shader");
  const wgsl = shader.wgsl.replace("out[i] = a[i] + b[i];", BROKEN_SOURCE);
  return { ...m, name: "broken", shaders: [{ name: "add_broken", wgsl }] };
}

/** Tensors of every dtype and no kernels: what write() and read() do with each. */
export function dtypeModule(): GeneratedModule {
  return module("dtypes", {
    tensors: [tensor("f", "input", at(0, 0)), tensor("labels", "input", at(0, 1), "i32"), tensor("mask", "input", at(0, 2), "bool")],
    shaders: [],
    phases: [],
  });
}

/**
 * One pooled kernel used twice at other override values: y = x * lit0 (f32) for the first lit1
 * (i32) elements, then z = x * lit0 with other values; `constants` sets both uses' values.
 */
export function overrideModule(constants: readonly [readonly number[], readonly number[]] = [[2, 4], [3, 2]]): GeneratedModule {
  const x = at(0, 0);
  const y = at(1, 0);
  const z = at(1, 1);
  const wgsl = `override lit0: f32;
override lit1: i32;
@group(0) @binding(0) var<storage, read_write> x: array<f32>; // read only
@group(0) @binding(1) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) id: vec3u) {
  let i = i32(id.x);
  if (i >= i32(arrayLength(&out))) { return; }
  out[i] = select(0.0, x[i] * lit0, i < lit1);
}
`;
  const use = (values: readonly number[], name: string) => ({ name, bindings: [x, name === "y" ? y : z], variants: [{ shader: 0, constants: values, workgroups: ONE_GROUP }] });
  return module("overrides", {
    tensors: [tensor("x", "input", x), tensor("y", "output", y), tensor("z", "output", z)],
    shaders: [{ name: "scale_pooled", wgsl, overrides: ["f32", "i32"], access: ["read_write", "read_write"] }],
    phases: [{ name: "forward", dispatches: [use(constants[0], "y"), use(constants[1], "z")], copies: [], outputs: ["y", "z"] }],
  });
}
