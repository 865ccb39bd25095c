// Runs a generated module (format/module.ts) on a WebGPU device.
//
// Everything is created once by instantiate(): one GPUBuffer per arena, one pipeline per kernel
// use (shared with other modules on the same device, pipelines.ts), one bind group per dispatch. A step is then only encoding: per phase, one compute pass
// holding the phase's dispatches, followed by the phase's copies (copies cannot sit inside a
// pass). WebGPU makes each dispatch its own usage scope, so a dispatch sees the storage writes of
// the dispatches before it in the same pass; no pass per dispatch is needed for correctness.
// step(n) puts n steps into one command buffer and never waits; only read() and sync() wait,
// with the sleeping wait of wait.ts.
//
// Pure WebGPU API: the same code runs on Dawn under Node and in a browser.

import * as E from "fp-ts/lib/Either.js";
import type {
  AdapterClass,
  Copy,
  Dispatch,
  GeneratedModule,
  KernelVariant,
  Placement,
  TensorSlot,
} from "../format/module.js";
import { runtimeError, RuntimeFault, type RuntimeError } from "./device.js";
import { hyperSlot, hyperVector } from "./hyperparameters.js";
import { pipelineFor, useKey } from "./pipelines.js";
import { WORD, checkAccess, checkModule, chooseVariant, deviceFeatures, elementCount } from "./check-module.js";
import { encodeTensorData, type TensorData, type TensorInput, typedArrayFor, unknownTensor } from "./tensor-data.js";
import { chooseTile, type TileChoices } from "./tune.js";
import { sleepingWait } from "./wait.js";

export { pipelineStats, renderCompilationMessage } from "./pipelines.js";
export { checkModule, chooseVariant, deviceFeatures, usableFeatures } from "./check-module.js";
export { encodeTensorData, unknownTensor } from "./tensor-data.js";

export type { TensorData, TensorInput } from "./tensor-data.js";

export interface KernelTime {
  readonly phase: string;
  readonly name: string;
  readonly ms: number;
}

export interface Instance {
  readonly module: GeneratedModule;
  readonly adapterClass: AdapterClass;
  /** Names of the module's tensors (TensorSlot.name), in module order. */
  readonly names: readonly string[];
  /** Queues an upload into a tensor; ordered with submitted steps. Throws RuntimeFault on misuse. */
  write(name: string, data: TensorInput): void;
  /** Encodes one step (every phase) into `encoder`, or into a new one; returns the encoder. */
  encodeStep(encoder?: GPUCommandEncoder): GPUCommandEncoder;
  /** Encodes n steps into one command buffer and submits it; does not wait. */
  step(n?: number): void;
  /** The tensor's current value, after all work submitted so far. */
  read(name: string): Promise<TensorData>;
  /** Several tensors with one copy submission and one wait; results in the order of `names`. */
  readMany(names: readonly string[]): Promise<TensorData[]>;
  /** Resolves when all submitted work is done. */
  sync(): Promise<void>;
  /**
   * Runs one step (it updates parameters and state like step(1)) with a compute pass and
   * timestamps per dispatch, and returns each dispatch's GPU time; undefined when the device
   * lacks 'timestamp-query'. Phase copies are not timed.
   */
  profile(): Promise<KernelTime[] | undefined>;
  /** Frees the module's buffers (not the device). Idempotent. */
  destroy(): void;
}

// ---------------------------------------------------------------------------------------------
// Creating GPU objects

interface PreparedDispatch {
  readonly name: string;
  readonly pipeline: GPUComputePipeline;
  readonly bindGroup: GPUBindGroup;
  readonly workgroups: readonly [number, number, number];
}

interface PreparedPhase {
  readonly name: string;
  readonly dispatches: readonly PreparedDispatch[];
  readonly copies: readonly Copy[];
}

/** Buffers owned by one instance; destroyed together on failure or destroy(). */
class Owned {
  readonly buffers: GPUBuffer[] = [];
  destroy(): void {
    for (const b of this.buffers.splice(0)) b.destroy();
  }
}

/** A function, not a constant: under Node the GPUBufferUsage global exists once node-gpu.ts ran. */
function arenaUsage(): number {
  return GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;
}

function createArenas(device: GPUDevice, module: GeneratedModule, owned: Owned): GPUBuffer[] {
  return module.arenas.map((arena) => {
    // Copies and writeBuffer move whole 4-byte words; a zero-sized buffer is valid but useless.
    const buffer = device.createBuffer({ label: arena.name, size: Math.max(WORD, roundUp(arena.bytes, WORD)), usage: arenaUsage() });
    owned.buffers.push(buffer);
    return buffer;
  });
}

function roundUp(n: number, to: number): number {
  return Math.ceil(n / to) * to;
}

function uploadConstants(device: GPUDevice, module: GeneratedModule, arenas: readonly GPUBuffer[]): void {
  for (const c of module.constants) {
    const words = Uint32Array.from(c.words, (w) => w >>> 0);
    device.queue.writeBuffer(arenaOf(arenas, c), c.offset, words);
  }
}

function arenaOf(arenas: readonly GPUBuffer[], p: Placement): GPUBuffer {
  const buffer = arenas[p.arena];
  if (buffer === undefined) throw new Error(`invariant: arena ${p.arena} checked by checkModule`);
  return buffer;
}

/** Runs `create` inside validation and out-of-memory scopes; Left with the first error caught. */
async function scoped<T>(device: GPUDevice, what: string, create: () => T): Promise<E.Either<RuntimeError, T>> {
  device.pushErrorScope("out-of-memory");
  device.pushErrorScope("validation");
  let created: { value: T } | { thrown: unknown };
  try {
    created = { value: create() };
  } catch (thrown) {
    created = { thrown };
  }
  // Popped whatever happened, so that a failure leaves the device's scope stack as it was.
  const validation = await device.popErrorScope();
  const memory = await device.popErrorScope();
  if ("thrown" in created) {
    const detail = created.thrown instanceof Error ? created.thrown.message : String(created.thrown);
    return E.left(runtimeError("gpu", `${what}: ${detail}`));
  }
  const error = validation ?? memory;
  return error === null ? E.right(created.value) : E.left(runtimeError("gpu", `${what}: ${error.message}`));
}

/** The pipeline of every kernel use that a chosen variant makes, keyed by useKey; created in parallel, shared per device. */
async function createPipelines(
  device: GPUDevice,
  module: GeneratedModule,
  chosen: readonly (readonly KernelVariant[])[],
): Promise<E.Either<RuntimeError, Map<string, GPUComputePipeline>>> {
  const uses = new Map<string, KernelVariant>();
  for (const v of chosen.flat()) {
    const shader = module.shaders[v.shader];
    if (shader === undefined) throw new Error(`invariant: shader ${v.shader} checked by checkModule`);
    uses.set(useKey(shader, v), v);
  }
  const results = await Promise.all(
    [...uses].map(async ([key, v]): Promise<E.Either<RuntimeError, [string, GPUComputePipeline]>> => {
      const pipeline = await pipelineFor(device, module.shaders[v.shader]!, v);
      return E.isLeft(pipeline) ? pipeline : E.right([key, pipeline.right]);
    }),
  );
  const failed = results.find(E.isLeft);
  if (failed !== undefined) return failed;
  return E.right(new Map(results.map((r) => (r as E.Right<[string, GPUComputePipeline]>).right)));
}

function createBindGroup(device: GPUDevice, arenas: readonly GPUBuffer[], d: Dispatch, pipeline: GPUComputePipeline): GPUBindGroup {
  return device.createBindGroup({
    label: d.name,
    layout: pipeline.getBindGroupLayout(0),
    entries: d.bindings.map((p, binding) => ({ binding, resource: { buffer: arenaOf(arenas, p), offset: p.offset, size: p.bytes } })),
  });
}

/** Each dispatch's variant for the adapter, with its tile as `tiles` chose it (else its default). */
function chooseAll(module: GeneratedModule, adapterClass: AdapterClass, features: ReadonlySet<string>, tiles: TileChoices): E.Either<RuntimeError, KernelVariant[][]> {
  const chosen: KernelVariant[][] = [];
  for (const phase of module.phases) {
    const variants: KernelVariant[] = [];
    for (const d of phase.dispatches) {
      const v = chooseVariant(d, adapterClass, features);
      if (E.isLeft(v)) return v;
      const access = checkAccess(module, d, v.right);
      if (E.isLeft(access)) return access;
      const shader = module.shaders[v.right.shader];
      variants.push(shader === undefined ? v.right : chooseTile(shader, v.right, tiles));
    }
    chosen.push(variants);
  }
  return E.right(chosen);
}

function preparePhases(
  device: GPUDevice,
  module: GeneratedModule,
  arenas: readonly GPUBuffer[],
  chosen: readonly (readonly KernelVariant[])[],
  pipelines: ReadonlyMap<string, GPUComputePipeline>,
): PreparedPhase[] {
  return module.phases.map((phase, p) => ({
    name: phase.name,
    copies: phase.copies,
    dispatches: phase.dispatches.map((d, i) => {
      const variant = chosen[p]?.[i];
      const shader = variant && module.shaders[variant.shader];
      const pipeline = variant && shader && pipelines.get(useKey(shader, variant));
      if (variant === undefined || pipeline === undefined) throw new Error(`invariant: dispatch '${d.name}' was prepared`);
      return { name: d.name, pipeline, workgroups: variant.workgroups, bindGroup: createBindGroup(device, arenas, d, pipeline) };
    }),
  }));
}

// ---------------------------------------------------------------------------------------------
// Encoding

/** WebGPU refuses a copy within one buffer, so a copy inside an arena goes through this buffer. */
function bounceBytes(module: GeneratedModule): number {
  const sameArena = module.phases.flatMap((p) => p.copies).filter((c) => c.from.arena === c.to.arena);
  return Math.max(0, ...sameArena.map((c) => c.from.bytes));
}

function encodeCopies(encoder: GPUCommandEncoder, arenas: readonly GPUBuffer[], bounce: GPUBuffer | undefined, copies: readonly Copy[]): void {
  for (const c of copies) {
    if (c.from.bytes === 0) continue;
    const from = arenaOf(arenas, c.from);
    const to = arenaOf(arenas, c.to);
    if (from !== to) {
      encoder.copyBufferToBuffer(from, c.from.offset, to, c.to.offset, c.from.bytes);
    } else if (bounce !== undefined) {
      encoder.copyBufferToBuffer(from, c.from.offset, bounce, 0, c.from.bytes);
      encoder.copyBufferToBuffer(bounce, 0, to, c.to.offset, c.from.bytes);
    }
  }
}

function encodeDispatch(pass: GPUComputePassEncoder, d: PreparedDispatch): void {
  pass.setPipeline(d.pipeline);
  pass.setBindGroup(0, d.bindGroup);
  pass.dispatchWorkgroups(d.workgroups[0], d.workgroups[1], d.workgroups[2]);
}

// ---------------------------------------------------------------------------------------------
// The instance

class ModuleInstance implements Instance {
  readonly names: readonly string[];
  private readonly slots: ReadonlyMap<string, TensorSlot>;
  private destroyed = false;

  constructor(
    private readonly device: GPUDevice,
    readonly module: GeneratedModule,
    readonly adapterClass: AdapterClass,
    private readonly arenas: readonly GPUBuffer[],
    private readonly bounce: GPUBuffer | undefined,
    private readonly phases: readonly PreparedPhase[],
    private readonly owned: Owned,
  ) {
    this.names = module.tensors.map((t) => t.name);
    this.slots = new Map(module.tensors.map((t) => [t.name, t]));
  }

  private slot(name: string): TensorSlot {
    const slot = this.slots.get(name);
    if (slot === undefined) throw new RuntimeFault(unknownTensor(name, this.names));
    return slot;
  }

  private live(): void {
    if (this.destroyed) throw new RuntimeFault(runtimeError("tensor", `module '${this.module.name}' was destroyed`));
  }

  write(name: string, data: TensorInput): void {
    this.live();
    const slot = this.slot(name);
    const expected = elementCount(slot.shape);
    if (data.length !== expected) {
      throw new RuntimeFault(runtimeError("tensor", `tensor '${name}' has shape [${slot.shape.join(", ")}] (${expected} elements); got ${data.length} values`));
    }
    const words = encodeTensorData(slot.dtype, data);
    if (E.isLeft(words)) throw new RuntimeFault(runtimeError("tensor", `tensor '${name}' (${slot.dtype}): ${words.left}`));
    const w = words.right;
    this.device.queue.writeBuffer(arenaOf(this.arenas, slot), slot.offset, w.buffer, w.byteOffset, w.byteLength);
  }

  encodeStep(encoder: GPUCommandEncoder = this.device.createCommandEncoder({ label: this.module.name })): GPUCommandEncoder {
    this.live();
    for (const phase of this.phases) {
      if (phase.dispatches.length > 0) {
        const pass = encoder.beginComputePass({ label: phase.name });
        for (const d of phase.dispatches) encodeDispatch(pass, d);
        pass.end();
      }
      encodeCopies(encoder, this.arenas, this.bounce, phase.copies);
    }
    return encoder;
  }

  step(n = 1): void {
    if (!Number.isInteger(n) || n < 0) throw new RuntimeFault(runtimeError("tensor", `step(n) needs a whole number of steps, got ${n}`));
    const encoder = this.device.createCommandEncoder({ label: `${this.module.name} x${n}` });
    for (let i = 0; i < n; i++) this.encodeStep(encoder);
    this.device.queue.submit([encoder.finish()]);
  }

  async read(name: string): Promise<TensorData> {
    const [data] = await this.readMany([name]);
    if (data === undefined) throw new Error("invariant: readMany returns one array per name");
    return data;
  }

  async readMany(names: readonly string[]): Promise<TensorData[]> {
    this.live();
    const slots = names.map((n) => this.slot(n));
    const total = slots.reduce((sum, s) => sum + s.bytes, 0);
    if (total === 0) return slots.map((s) => typedArrayFor(s.dtype, new ArrayBuffer(0)));
    const staging = this.device.createBuffer({ label: "readback", size: total, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    try {
      const encoder = this.device.createCommandEncoder({ label: "readback" });
      let offset = 0;
      for (const s of slots) {
        if (s.bytes > 0) encoder.copyBufferToBuffer(arenaOf(this.arenas, s), s.offset, staging, offset, s.bytes);
        offset += s.bytes;
      }
      this.device.queue.submit([encoder.finish()]);
      await sleepingWait(staging.mapAsync(GPUMapMode.READ));
      const bytes = staging.getMappedRange().slice(0);
      staging.unmap();
      let at = 0;
      return slots.map((s) => {
        const data = typedArrayFor(s.dtype, bytes.slice(at, at + s.bytes));
        at += s.bytes;
        return data;
      });
    } finally {
      staging.destroy();
    }
  }

  async sync(): Promise<void> {
    await sleepingWait(this.device.queue.onSubmittedWorkDone());
  }

  async profile(): Promise<KernelTime[] | undefined> {
    this.live();
    if (!this.device.features.has("timestamp-query")) return undefined;
    const dispatches = this.phases.flatMap((p) => p.dispatches.map((d) => ({ phase: p.name, d })));
    if (dispatches.length === 0) {
      this.step(1);
      return [];
    }
    const timer = new PassTimer(this.device, dispatches.length);
    try {
      const encoder = this.device.createCommandEncoder({ label: `${this.module.name} profile` });
      let k = 0;
      for (const phase of this.phases) {
        for (const d of phase.dispatches) {
          const pass = encoder.beginComputePass({ label: d.name, timestampWrites: timer.writes(k++) });
          encodeDispatch(pass, d);
          pass.end();
        }
        encodeCopies(encoder, this.arenas, this.bounce, phase.copies);
      }
      timer.resolve(encoder);
      this.device.queue.submit([encoder.finish()]);
      const ms = await timer.read();
      return dispatches.map(({ phase, d }, i) => ({ phase, name: d.name, ms: ms[i] ?? 0 }));
    } finally {
      timer.destroy();
    }
  }

  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.owned.destroy();
  }
}

/** Timestamps at the start and end of each timed pass; query sets hold at most 4096 queries. */
class PassTimer {
  private static readonly PASSES_PER_SET = 2048;
  private readonly sets: GPUQuerySet[] = [];
  private readonly resolved: GPUBuffer;
  private readonly staging: GPUBuffer;

  constructor(private readonly device: GPUDevice, private readonly passes: number) {
    for (let first = 0; first < passes; first += PassTimer.PASSES_PER_SET) {
      const count = 2 * Math.min(PassTimer.PASSES_PER_SET, passes - first);
      this.sets.push(device.createQuerySet({ label: "profile", type: "timestamp", count }));
    }
    const bytes = passes * 2 * 8;
    this.resolved = device.createBuffer({ label: "profile", size: bytes, usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC });
    this.staging = device.createBuffer({ label: "profile", size: bytes, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
  }

  writes(pass: number): GPUComputePassTimestampWrites {
    const querySet = this.sets[Math.floor(pass / PassTimer.PASSES_PER_SET)];
    if (querySet === undefined) throw new Error(`invariant: pass ${pass} < ${this.passes}`);
    const base = 2 * (pass % PassTimer.PASSES_PER_SET);
    return { querySet, beginningOfPassWriteIndex: base, endOfPassWriteIndex: base + 1 };
  }

  resolve(encoder: GPUCommandEncoder): void {
    this.sets.forEach((set, i) => {
      // Each full set is 2048 passes x 2 timestamps x 8 bytes = 32 KiB, a multiple of 256 as required.
      encoder.resolveQuerySet(set, 0, set.count, this.resolved, i * PassTimer.PASSES_PER_SET * 16);
    });
    encoder.copyBufferToBuffer(this.resolved, 0, this.staging, 0, this.staging.size);
  }

  /** Milliseconds per pass; 0 where the clock went backwards (some drivers, across passes). */
  async read(): Promise<number[]> {
    await sleepingWait(this.staging.mapAsync(GPUMapMode.READ));
    const ns = new BigUint64Array(this.staging.getMappedRange().slice(0));
    this.staging.unmap();
    return Array.from({ length: this.passes }, (_, i) => {
      const elapsed = (ns[2 * i + 1] ?? 0n) - (ns[2 * i] ?? 0n);
      return elapsed > 0n ? Number(elapsed) / 1e6 : 0;
    });
  }

  destroy(): void {
    for (const s of this.sets) s.destroy();
    this.resolved.destroy();
    this.staging.destroy();
  }
}

// ---------------------------------------------------------------------------------------------
// instantiate

export interface InstantiateOptions {
  /** Tuned tile choices (runtime/tune.ts); uses without one run their default tile. */
  readonly tiles?: TileChoices;
}

/**
 * Creates everything the module needs on `device` and returns the instance; Left when the module
 * does not fit the device, a shader does not compile, or WebGPU rejects a resource. Kernel variants
 * are chosen for `adapterClass` (acquireDevice's classification of the adapter).
 * Not to be run concurrently with other work on the same device: it uses error scopes.
 */
export async function instantiate(
  device: GPUDevice,
  module: GeneratedModule,
  adapterClass: AdapterClass,
  options: InstantiateOptions = {},
): Promise<E.Either<RuntimeError, Instance>> {
  const checked = checkModule(module, device.limits);
  if (E.isLeft(checked)) return checked;
  const hyper = hyperSlot(module);
  if (E.isLeft(hyper)) return E.left(runtimeError("module", hyper.left));
  const chosen = chooseAll(module, adapterClass, deviceFeatures(device), options.tiles ?? new Map());
  if (E.isLeft(chosen)) return chosen;

  const owned = new Owned();
  const fail = (e: RuntimeError): E.Either<RuntimeError, Instance> => {
    owned.destroy();
    return E.left(e);
  };

  const buffers = await scoped(device, `module '${module.name}': creating its arenas`, () => {
    const arenas = createArenas(device, module, owned);
    uploadConstants(device, module, arenas);
    // The declared hyperparameters, so that every instance computes what the program was built with.
    const defaults = hyperVector(module);
    if (hyper.right !== undefined && E.isRight(defaults)) device.queue.writeBuffer(arenaOf(arenas, hyper.right), hyper.right.offset, defaults.right);
    const size = bounceBytes(module);
    const bounce = size > 0 ? device.createBuffer({ label: "copy bounce", size, usage: GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST }) : undefined;
    if (bounce !== undefined) owned.buffers.push(bounce);
    return { arenas, bounce };
  });
  if (E.isLeft(buffers)) return fail(buffers.left);

  const pipelines = await createPipelines(device, module, chosen.right);
  if (E.isLeft(pipelines)) return fail(pipelines.left);

  const { arenas, bounce } = buffers.right;
  const phases = await scoped(device, `module '${module.name}': creating its bind groups`, () =>
    preparePhases(device, module, arenas, chosen.right, pipelines.right),
  );
  if (E.isLeft(phases)) return fail(phases.left);

  return E.right(new ModuleInstance(device, module, adapterClass, arenas, bounce, phases.right, owned));
}
