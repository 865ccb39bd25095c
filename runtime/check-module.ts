// Checking a generated module against a device before anything is created (every inconsistency
// that would otherwise surface as an opaque WebGPU validation error), choosing each dispatch's
// kernel variant for the adapter, and checking its binding access.

import * as E from "fp-ts/lib/Either.js";
import { type AdapterClass, type Copy, type Dispatch, type GeneratedModule, type KernelVariant, type Placement, SUBGROUP_LANES, tileWorkgroups } from "../format/module.js";
import { limitError, runtimeError, type RuntimeError } from "./device.js";
import { overrideValues } from "./pipelines.js";

// ---------------------------------------------------------------------------------------------
// Checking a module against a device, before anything is created

/** Bytes of one storage word: offsets, sizes and copies are whole words. */
export const WORD = 4;

export function elementCount(shape: readonly number[]): number {
  return shape.reduce((n, d) => n * d, 1);
}

function checkPlacement(module: GeneratedModule, p: Placement, what: string): E.Either<RuntimeError, void> {
  const arena = module.arenas[p.arena];
  if (arena === undefined) return E.left(runtimeError("module", `${what}: arena ${p.arena} does not exist`));
  if (p.offset % WORD !== 0 || p.bytes % WORD !== 0 || p.offset < 0 || p.bytes < 0) {
    return E.left(runtimeError("module", `${what}: offset ${p.offset} and size ${p.bytes} must be multiples of 4`));
  }
  if (p.offset + p.bytes > arena.bytes) {
    return E.left(
      runtimeError("module", `${what}: bytes ${p.offset}..${p.offset + p.bytes} lie outside arena '${arena.name}' (${arena.bytes} bytes)`),
    );
  }
  return E.right(undefined);
}

/** A storage binding must start at a multiple of the device's alignment and fit one binding. */
function checkBinding(module: GeneratedModule, limits: GPUSupportedLimits, p: Placement, what: string) {
  if (p.offset % limits.minStorageBufferOffsetAlignment !== 0) {
    return E.left(
      runtimeError("module", `${what}: offset ${p.offset} is not a multiple of minStorageBufferOffsetAlignment (${limits.minStorageBufferOffsetAlignment})`),
    );
  }
  if (p.bytes === 0) return E.left(runtimeError("module", `${what}: a storage binding cannot be empty`));
  if (p.bytes > limits.maxStorageBufferBindingSize) {
    return E.left(limitError("maxStorageBufferBindingSize", p.bytes, limits.maxStorageBufferBindingSize, what, "device"));
  }
  return checkPlacement(module, p, what);
}

function checkTensors(module: GeneratedModule): E.Either<RuntimeError, void> {
  const seen = new Set<string>();
  for (const t of module.tensors) {
    if (seen.has(t.name)) return E.left(runtimeError("module", `tensor '${t.name}' is declared twice`));
    seen.add(t.name);
    if (t.bytes !== elementCount(t.shape) * WORD) {
      return E.left(runtimeError("module", `tensor '${t.name}': ${t.bytes} bytes for shape [${t.shape.join(", ")}] (expected ${elementCount(t.shape) * WORD})`));
    }
    const placed = checkPlacement(module, t, `tensor '${t.name}'`);
    if (E.isLeft(placed)) return placed;
  }
  for (const phase of module.phases) {
    const missing = phase.outputs.find((name) => !seen.has(name));
    if (missing !== undefined) return E.left(runtimeError("module", `phase '${phase.name}' lists output '${missing}', which is not a tensor`));
  }
  return E.right(undefined);
}

function checkConstants(module: GeneratedModule): E.Either<RuntimeError, void> {
  for (const c of module.constants) {
    if (c.words.length * WORD > c.bytes) {
      return E.left(runtimeError("module", `constant '${c.name}': ${c.words.length} words do not fit its ${c.bytes} bytes`));
    }
    const placed = checkPlacement(module, c, `constant '${c.name}'`);
    if (E.isLeft(placed)) return placed;
  }
  return E.right(undefined);
}

function checkDispatch(module: GeneratedModule, limits: GPUSupportedLimits, d: Dispatch): E.Either<RuntimeError, void> {
  const what = `dispatch '${d.name}'`;
  if (d.bindings.length > limits.maxStorageBuffersPerShaderStage) {
    return E.left(limitError("maxStorageBuffersPerShaderStage", d.bindings.length, limits.maxStorageBuffersPerShaderStage, what, "device"));
  }
  for (const [i, b] of d.bindings.entries()) {
    const bound = checkBinding(module, limits, b, `${what}, binding ${i}`);
    if (E.isLeft(bound)) return bound;
  }
  for (const v of d.variants) {
    const shader = module.shaders[v.shader];
    if (shader === undefined) return E.left(runtimeError("module", `${what}: shader ${v.shader} does not exist`));
    const values = overrideValues(shader, v.constants, v.tile?.rows);
    if (E.isLeft(values)) return E.left(runtimeError("module", `${what}: ${values.left}`));
    const tile = checkTile(v, limits, what);
    if (E.isLeft(tile)) return tile;
    const too = v.workgroups.find((n) => n > limits.maxComputeWorkgroupsPerDimension);
    if (too !== undefined) {
      return E.left(limitError("maxComputeWorkgroupsPerDimension", too, limits.maxComputeWorkgroupsPerDimension, what, "device"));
    }
  }
  return E.right(undefined);
}

/** A tile's rows are one of its candidates, and every candidate's grid fits the device. */
function checkTile(v: KernelVariant, limits: GPUSupportedLimits, what: string): E.Either<RuntimeError, void> {
  const tile = v.tile;
  if (tile === undefined) return E.right(undefined);
  const positive = (n: number) => Number.isInteger(n) && n > 0;
  if (!tile.candidates.every(positive) || !tile.candidates.includes(tile.rows) || !positive(tile.extent)) {
    return E.left(runtimeError("module", `${what}: tile of ${tile.rows} rows is not one of its candidates [${tile.candidates.join(", ")}] (or a candidate or the extent ${tile.extent} is not a positive integer)`));
  }
  for (const rows of tile.candidates) {
    const too = tileWorkgroups(v.workgroups, tile, rows).find((n) => n > limits.maxComputeWorkgroupsPerDimension);
    if (too !== undefined) {
      return E.left(limitError("maxComputeWorkgroupsPerDimension", too, limits.maxComputeWorkgroupsPerDimension, `${what}, tile of ${rows} rows`, "device"));
    }
  }
  return E.right(undefined);
}

function checkCopy(module: GeneratedModule, c: Copy, what: string): E.Either<RuntimeError, void> {
  if (c.from.bytes !== c.to.bytes) {
    return E.left(runtimeError("module", `${what}: copies ${c.from.bytes} bytes into ${c.to.bytes}`));
  }
  const from = checkPlacement(module, c.from, `${what}, source`);
  return E.isLeft(from) ? from : checkPlacement(module, c.to, `${what}, destination`);
}

/** Every inconsistency that would otherwise surface as an opaque WebGPU validation error. */
export function checkModule(module: GeneratedModule, limits: GPUSupportedLimits): E.Either<RuntimeError, void> {
  for (const arena of module.arenas) {
    if (arena.bytes > limits.maxBufferSize) {
      return E.left(limitError("maxBufferSize", arena.bytes, limits.maxBufferSize, `arena '${arena.name}'`, "device"));
    }
  }
  const checks: (() => E.Either<RuntimeError, void>)[] = [() => checkTensors(module), () => checkConstants(module)];
  for (const phase of module.phases) {
    for (const d of phase.dispatches) checks.push(() => checkDispatch(module, limits, d));
    for (const [i, c] of phase.copies.entries()) checks.push(() => checkCopy(module, c, `phase '${phase.name}', copy ${i}`));
  }
  for (const check of checks) {
    const result = check();
    if (E.isLeft(result)) return result;
  }
  return E.right(undefined);
}

// ---------------------------------------------------------------------------------------------
// Variants and binding access

/** What a device says about its subgroups (GPUAdapterInfo's fields; absent where not reported). */
export interface SubgroupInfo {
  readonly subgroupMinSize?: number;
  readonly subgroupMaxSize?: number;
}

/**
 * The features kernel variants may count on: the device's, less "subgroups" unless every subgroup
 * it can form has at least SUBGROUP_LANES lanes. The subgroup variants treat a workgroup of
 * SUBGROUP_LANES invocations as one subgroup and broadcast from its lanes 0..7; with narrower
 * subgroups (SwiftShader in Chromium: 4) one workgroup would span two subgroups and a broadcast
 * would read a lane of the other half, so those devices run the portable variants. A device that
 * does not report its subgroup sizes gets the portable variants too: they are right everywhere.
 */
export function usableFeatures(features: Iterable<string>, info: SubgroupInfo | undefined): ReadonlySet<string> {
  const out = new Set<string>(features);
  const min = info?.subgroupMinSize;
  if (min === undefined || !(min >= SUBGROUP_LANES)) out.delete("subgroups");
  return out;
}

/** usableFeatures of a device, from its adapterInfo (a GPUDevice attribute in browsers and Dawn). */
export function deviceFeatures(device: GPUDevice): ReadonlySet<string> {
  const info = (device as GPUDevice & { readonly adapterInfo?: SubgroupInfo }).adapterInfo;
  return usableFeatures(device.features, info);
}

/**
 * The first variant made for this adapter class (or for every adapter) whose features the device
 * has. Its tile, where it has candidates, is its default; runner.ts applies the tuned choice
 * (runtime/tune.ts, chooseTile).
 */
export function chooseVariant(
  d: Dispatch,
  adapterClass: AdapterClass,
  features: ReadonlySet<string> = new Set(),
): E.Either<RuntimeError, KernelVariant> {
  const variant = d.variants.find(
    (v) => (v.adapter === undefined || v.adapter === adapterClass) && (v.features ?? []).every((f) => features.has(f)),
  );
  return variant === undefined
    ? E.left(runtimeError("module", `dispatch '${d.name}' has no kernel variant for a ${adapterClass} adapter`))
    : E.right(variant);
}

/**
 * WebGPU tracks usage per buffer, not per byte range: within one dispatch a buffer may not be bound
 * both read-only and writable, even at disjoint offsets. With one buffer per arena, a kernel that
 * reads and writes the same arena must declare all those bindings read_write. The access of each
 * binding is data of the pooled kernel (ShaderSpec.access), written by the codegen beside the WGSL.
 */
export function checkAccess(module: GeneratedModule, d: Dispatch, variant: KernelVariant): E.Either<RuntimeError, void> {
  const shader = module.shaders[variant.shader];
  if (shader === undefined) return E.right(undefined);
  const access = shader.access ?? [];
  if (shader.access !== undefined && access.length !== d.bindings.length) {
    return E.left(runtimeError("module", `dispatch '${d.name}' binds ${d.bindings.length} buffers; shader '${shader.name}' declares the access of ${access.length}`));
  }
  const readOnly = new Set(access.flatMap((a, i) => (a === "read" ? [i] : [])));
  const written = new Set(d.bindings.filter((_, i) => !readOnly.has(i)).map((b) => b.arena));
  const clash = d.bindings.findIndex((b, i) => readOnly.has(i) && written.has(b.arena));
  if (clash < 0) return E.right(undefined);
  const arena = module.arenas[d.bindings[clash]?.arena ?? -1]?.name ?? "?";
  return E.left(
    runtimeError(
      "module",
      `dispatch '${d.name}' (shader '${shader.name}') binds arena '${arena}' read-only at binding ${clash} and writable at another binding; ` +
        `WebGPU forbids both in one dispatch, even at disjoint offsets. Declare binding ${clash} var<storage, read_write>.`,
    ),
  );
}

