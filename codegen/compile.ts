// From a DSL program to a generated module: canonicalise, fuse, emit kernels, plan memory.

import { GRAD_SCOPE, HYPERPARAMETERS_INPUT, type Program, type Tensor, numel } from "../dsl/index";
import type {
  ArenaSpec,
  BindingAccess,
  ConstantSpec,
  Copy,
  Dispatch,
  GeneratedModule,
  PhaseSpec,
  Placement,
  Provenance,
  ShaderSpec,
  TensorSlot,
} from "../format/module";
import { dispatchName } from "../format/module-table";
import { canonicalize } from "./canonical";
import { type KernelPlan, planFusion } from "./fusion";
import { type Lifetime, type MemoryPlan, alignUp, planMemory } from "./memory";
import { kernelId, liftLiterals } from "./pool";
import { type BufferRef, declaredAccess } from "./wgsl/expr";
import { type Stage, describe, withNumbering } from "./wgsl/kernel";
import { emitKernel } from "./wgsl/templates";

export interface CompileOptions {
  /** Bytes per arena (one GPUBuffer). Default 1 GiB: within every adapter's maxBufferSize we target. */
  readonly arenaBytes?: number;
  /**
   * The largest binding allowed. Default: the arena size. A module records the largest binding
   * it uses in `limits`; the runtime refuses an adapter that offers less (lavapipe offers
   * 128 MiB, enough for the CPU presets; the paper presets' full-resolution activations need a
   * GPU's larger limit).
   */
  readonly maxBindingBytes?: number;
  /** The most storage buffers one kernel may bind (WebGPU's default is 8; adapters offer more). */
  readonly maxBindings?: number;
}

export interface KernelRecord {
  readonly phase: string;
  readonly stage: Stage;
  readonly shader: number;
  readonly anchor: string;
}

export interface PhaseMemory {
  readonly phase: string;
  readonly plan: MemoryPlan;
}

export interface Compiled {
  readonly module: GeneratedModule;
  readonly kernels: readonly KernelRecord[];
  readonly memory: readonly PhaseMemory[];
  readonly persistentBytes: number;
}

export class CompileError extends Error {
  constructor(program: string, message: string) {
    super(`codegen ${program}: ${message}`);
    this.name = "CompileError";
  }
}

const inputName = (t: Tensor): string | undefined => (t.node.op === "input" ? t.node.attrs.name : undefined);

/** The first parameter (or state) a kernel reads, searched breadth-first a few levels deep. */
function firstParam(plan: KernelPlan): string | undefined {
  const queue: Tensor[] = [plan.anchor ?? plan.root];
  const seen = new Set<number>();
  for (let depth = 0; depth < 6 && queue.length > 0; depth++) {
    const next: Tensor[] = [];
    for (const t of queue) {
      if (seen.has(t.id)) continue;
      seen.add(t.id);
      const name = inputName(t);
      if (name && t.node.op === "input" && t.node.attrs.role !== "input") return name;
      next.push(...t.node.inputs);
    }
    queue.splice(0, queue.length, ...next);
  }
  return undefined;
}

/**
 * What a kernel computes (format/module.ts, Provenance): the scope and op of its anchor (or
 * of the value it stores), a gradient when that scope is one grad() built (dsl/ir.ts,
 * GRAD_SCOPE), and the first parameter it reads.
 */
function provenanceOf(plan: KernelPlan): Provenance {
  const node = plan.anchor ?? plan.root;
  const backward = node.scope.startsWith(GRAD_SCOPE);
  const param = firstParam(plan);
  return {
    scope: backward ? node.scope.slice(GRAD_SCOPE.length) : node.scope,
    pass: backward ? "backward" : "forward",
    op: plan.anchor?.node.op ?? "pointwise",
    ...(param !== undefined ? { param } : {}),
  };
}

/** Identity of a buffer across kernels. */
function bufferKey(ref: BufferRef, phase: string): string {
  switch (ref.kind) {
    case "tensor":
      return `t${ref.tensor.id}`;
    case "temp":
      return `${phase}:${ref.name}`;
    case "constant":
      return `const:${ref.name}`;
    default: {
      const never: never = ref;
      throw new Error(`unknown buffer ref ${JSON.stringify(never)}`);
    }
  }
}

const bytesOfTensor = (t: { shape: readonly number[] }): number => numel(t.shape) * 4;

export function compileProgram(program: Program, opts: CompileOptions = {}): Compiled {
  const arenaBytes = opts.arenaBytes ?? 1 << 30;
  const maxBinding = opts.maxBindingBytes ?? arenaBytes;
  const maxBindings = opts.maxBindings ?? 16;
  const fail = (msg: string): never => {
    throw new CompileError(program.name, msg);
  };

  // Persistent slots: the hyperparameter vector, data inputs, params and state, in a stable order;
  // outputs are added below.
  const slots: (Omit<TensorSlot, "arena" | "offset"> & { placeAs?: string })[] = [];
  const hyper = program.hyperparameters.length;
  if (hyper > 0) slots.push({ name: HYPERPARAMETERS_INPUT, role: "hyper", shape: [hyper], dtype: "f32", bytes: 4 * hyper });
  for (const t of program.inputs) {
    slots.push({ name: inputName(t)!, role: "input", shape: t.shape, dtype: t.dtype, bytes: bytesOfTensor(t) });
  }
  for (const e of program.params) {
    slots.push({
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
    });
  }
  const slotNames = new Set(slots.map((s) => s.name));

  // Per phase: kernels, buffer lifetimes, copies.
  interface PhaseWork {
    name: string;
    stages: { stage: Stage; plan: KernelPlan; provenance: Provenance }[];
    lifetimes: Map<string, { first: number; last: number; bytes: number }>;
    /** Buffer key -> persistent slot name, for buffers that live in a slot. */
    inSlot: Map<string, string>;
    copies: { fromKey: string; toSlot: string; bytes: number }[];
    outputs: string[];
  }
  const phases: PhaseWork[] = [];
  const constants = new Map<string, readonly number[]>();
  const kernels: KernelRecord[] = [];

  for (const phase of program.phases) {
    const outNames = Object.keys(phase.outputs);
    const updNames = Object.keys(phase.updates);
    const canon = canonicalize([...outNames.map((n) => phase.outputs[n]!), ...updNames.map((n) => phase.updates[n]!)]);
    const outRoots = canon.slice(0, outNames.length);
    const updRoots = canon.slice(outNames.length);
    const roots = [...new Set(canon.filter((t) => t.node.op !== "input"))];
    const fusion = planFusion(roots);
    const numbering = new Map(fusion.order.map((t, i) => [t.id, i]));
    const work: PhaseWork = { name: phase.name, stages: [], lifetimes: new Map(), inSlot: new Map(), copies: [], outputs: outNames };

    const memo = new Set<string>();
    withNumbering(numbering, () => {
      fusion.kernels.forEach((plan, i) => {
        const provenance = provenanceOf(plan);
        const base = dispatchName(phase.name, i, provenance);
        for (const stage of emitKernel(plan, { fusion, name: base })) {
          if (stage.memoKey !== undefined) {
            if (memo.has(stage.memoKey)) continue;
            memo.add(stage.memoKey);
          }
          // A kernel of several dispatches names each by a suffix (`_stage1`, `_pack`).
          const part = stage.name.startsWith(`${base}_`) ? stage.name.slice(base.length + 1) : "";
          work.stages.push({ stage, plan, provenance: part ? { ...provenance, part } : provenance });
        }
      });
    });

    // Buffers living in persistent slots: inputs/params/state, and phase outputs.
    for (const t of fusion.order) {
      const name = inputName(t);
      if (name !== undefined) {
        if (!slotNames.has(name)) fail(`phase ${phase.name} reads ${name}, which has no slot`);
        work.inSlot.set(`t${t.id}`, name);
      }
    }
    outRoots.forEach((t, i) => {
      const outName = outNames[i]!;
      if (slotNames.has(outName)) fail(`output name ${outName} is used twice (or names a parameter)`);
      slotNames.add(outName);
      const key = `t${t.id}`;
      const existing = work.inSlot.get(key);
      slots.push({
        name: outName,
        role: "output",
        shape: t.shape,
        dtype: t.dtype,
        bytes: bytesOfTensor(t),
        ...(existing ? { placeAs: existing } : {}),
      });
      if (!existing) work.inSlot.set(key, outName);
    });

    // Lifetimes of scratch buffers over this phase's dispatches.
    work.stages.forEach(({ stage }, s) => {
      if (stage.bindings.length > maxBindings) {
        fail(`kernel ${stage.name} needs ${stage.bindings.length} storage bindings, more than ${maxBindings}`);
      }
      for (const b of stage.bindings) {
        const key = bufferKey(b.ref, phase.name);
        if (b.ref.kind === "constant") {
          constants.set(b.ref.name, b.ref.words);
          continue;
        }
        const bytes = b.ref.kind === "tensor" ? bytesOfTensor(b.ref.tensor) : b.ref.bytes;
        if (bytes > maxBinding) fail(`kernel ${stage.name} binds ${bytes} bytes, more than the ${maxBinding}-byte binding limit`);
        if (work.inSlot.has(key)) continue;
        const life = work.lifetimes.get(key);
        if (life) life.last = s;
        else work.lifetimes.set(key, { first: s, last: s, bytes });
      }
    });

    // State updates: copy each new value into its slot after the phase.
    const targets = new Set<string>();
    updRoots.forEach((t, i) => {
      const target = updNames[i]!;
      const key = `t${t.id}`;
      const source = work.inSlot.get(key);
      if (source === target) return; // unchanged
      if (source !== undefined && targets.has(source)) fail(`update of ${target} reads ${source}, which this phase also updates`);
      targets.add(target);
      const life = work.lifetimes.get(key);
      if (life) life.last = work.stages.length; // read by the copy after the last dispatch
      else if (source === undefined) fail(`update ${target} has no computed value`);
      work.copies.push({ fromKey: key, toSlot: target, bytes: bytesOfTensor(t) });
    });
    phases.push(work);

    work.stages.forEach(({ stage, plan }) => {
      kernels.push({ phase: phase.name, stage, shader: -1, anchor: plan.anchor?.node.op ?? "pointwise" });
    });
  }

  // Persistent arenas: slots (then constants) packed in order, never across an arena boundary.
  const placements = new Map<string, Placement>();
  let cursor = 0;
  const placePersistent = (bytes: number): Placement => {
    const size = alignUp(bytes);
    if (size > arenaBytes) fail(`a tensor of ${bytes} bytes exceeds the arena size`);
    const boundary = Math.floor(cursor / arenaBytes) * arenaBytes + arenaBytes;
    if (cursor + size > boundary) cursor = boundary;
    const p = { arena: Math.floor(cursor / arenaBytes), offset: cursor % arenaBytes, bytes };
    cursor += size;
    return p;
  };
  for (const s of slots) if (!s.placeAs) placements.set(`slot:${s.name}`, placePersistent(s.bytes));
  for (const s of slots) if (s.placeAs) placements.set(`slot:${s.name}`, placements.get(`slot:${s.placeAs}`)!);
  const constantSpecs: ConstantSpec[] = [...constants.entries()]
    .sort(([a], [b]) => (a < b ? -1 : 1))
    .map(([name, words]) => {
      const p = placePersistent(words.length * 4);
      placements.set(`const:${name}`, p);
      return { name, words, ...p };
    });
  const persistentBytes = cursor;
  const persistentArenas = Math.max(1, Math.ceil(persistentBytes / arenaBytes));

  // Scratch: planned per phase; phases run one after another, so they share the arenas.
  const memory: PhaseMemory[] = phases.map((w) => ({
    phase: w.name,
    plan: planMemory([...w.lifetimes.entries()].map(([id, l]) => ({ id, ...l }) satisfies Lifetime), arenaBytes),
  }));
  const scratchBytes = Math.max(0, ...memory.map((m) => m.plan.peak));
  const scratchArenas = Math.ceil(scratchBytes / arenaBytes);
  const arenas: ArenaSpec[] = [];
  for (let i = 0; i < persistentArenas; i++) {
    arenas.push({ name: `persistent${i}`, bytes: Math.max(ALIGN_MIN, Math.min(arenaBytes, persistentBytes - i * arenaBytes)), kind: "persistent" });
  }
  for (let i = 0; i < scratchArenas; i++) {
    arenas.push({ name: `scratch${i}`, bytes: Math.min(arenaBytes, scratchBytes - i * arenaBytes), kind: "scratch" });
  }

  // Kernels of the pool, deduplicated by their lifted text (codegen/pool.ts): uses at other
  // sizes share one shader and differ in override values. Dispatches with placed bindings.
  const shaderIndex = new Map<string, number>();
  const shaders: ShaderSpec[] = [];
  let k = 0;
  const phaseSpecs: PhaseSpec[] = phases.map((w, pi) => {
    const plan = memory[pi]!.plan;
    const placeKey = (key: string): Placement => {
      const slot = w.inSlot.get(key);
      if (slot !== undefined) return placements.get(`slot:${slot}`)!;
      if (key.startsWith("const:")) return placements.get(key)!;
      const b = plan.buffers.get(key);
      if (!b) throw new CompileError(program.name, `internal: buffer ${key} was not planned`);
      return { arena: persistentArenas + Math.floor(b.offset / arenaBytes), offset: b.offset % arenaBytes, bytes: b.bytes };
    };
    /** The pool kernel of one use, and the values of its overrides there. */
    const shaderOf = (wgsl: string, access: readonly BindingAccess[]): { shader: number; constants: readonly number[] } => {
      const lifted = liftLiterals(wgsl);
      const name = kernelId(lifted.template, lifted.text, access);
      let shader = shaderIndex.get(name);
      if (shader === undefined) {
        shader = shaders.length;
        shaderIndex.set(name, shader);
        shaders.push({ name, wgsl: lifted.text, overrides: lifted.overrides, access });
      }
      return { shader, constants: lifted.values };
    };
    const dispatches: Dispatch[] = w.stages.map(({ stage, provenance }, di) => {
      const access = stage.bindings.map(declaredAccess);
      // Specialised variants first; the portable default last, for every other adapter.
      const alternatives = stage.alternatives.map((a) => ({
        adapter: a.adapter,
        features: a.features,
        ...shaderOf(a.wgsl, access),
        workgroups: a.workgroups,
      }));
      const main = shaderOf(stage.wgsl, access);
      kernels[k] = { ...kernels[k]!, shader: main.shader };
      k++;
      return {
        // Named as the emitted table names it (format/module-table.ts), by position in the phase.
        name: dispatchName(w.name, di, provenance),
        provenance,
        bindings: stage.bindings.map((b) => placeKey(bufferKey(b.ref, w.name))),
        variants: [...alternatives, { ...main, workgroups: stage.workgroups }],
      };
    });
    const copies: Copy[] = w.copies.map((c) => ({ from: placeKey(c.fromKey), to: placements.get(`slot:${c.toSlot}`)! }));
    return { name: w.name, dispatches, copies, outputs: w.outputs };
  });

  const tensors: TensorSlot[] = slots.map(({ placeAs: _placeAs, ...s }) => ({ ...s, ...placements.get(`slot:${s.name}`)! }));
  const allBindings = phaseSpecs.flatMap((p) => p.dispatches.flatMap((d) => d.bindings));
  const module: GeneratedModule = {
    name: program.name,
    config: program.config,
    hyperparameters: program.hyperparameters,
    arenas,
    tensors,
    constants: constantSpecs,
    shaders,
    phases: phaseSpecs,
    limits: {
      maxStorageBufferBindingSize: Math.max(ALIGN_MIN, ...allBindings.map((b) => b.bytes)),
      maxBufferSize: Math.max(ALIGN_MIN, ...arenas.map((a) => a.bytes)),
      maxStorageBuffersPerShaderStage: Math.max(1, ...phaseSpecs.flatMap((p) => p.dispatches.map((d) => d.bindings.length))),
    },
  };
  return { module, kernels, memory, persistentBytes };
}

const ALIGN_MIN = 256;

export { describe };
