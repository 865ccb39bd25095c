// Compute pipelines of pooled kernels, shared by every module instantiated on one device.
//
// A pipeline is one kernel of the pool (format/module.ts, ShaderSpec) with the override values
// of one use. Programs that use the same kernel at the same sizes (the demo's three models, the
// forward passes of a training program and its evaluation program) get the same pipeline
// object: it is compiled once per device and process. On lavapipe that matters: the LLVM
// compile of a pipeline happens at its first dispatch and dominates a cold start.
//
// Pure WebGPU API: the same code runs on Dawn under Node and in a browser.

import * as E from "fp-ts/lib/Either.js";
import { type KernelVariant, type ShaderSpec, TILE_OVERRIDE, overrideName } from "../format/module.js";
import type { RuntimeError } from "./device.js";

/** How many pipelines a device's cache created, and how many requests it answered from them. */
export interface PipelineStats {
  readonly created: number;
  readonly reused: number;
}

interface DeviceCache {
  readonly shaders: Map<string, Promise<E.Either<RuntimeError, GPUShaderModule>>>;
  readonly pipelines: Map<string, Promise<E.Either<RuntimeError, GPUComputePipeline>>>;
  created: number;
  reused: number;
}

const caches = new WeakMap<GPUDevice, DeviceCache>();

function cacheOf(device: GPUDevice): DeviceCache {
  let cache = caches.get(device);
  if (cache === undefined) {
    cache = { shaders: new Map(), pipelines: new Map(), created: 0, reused: 0 };
    caches.set(device, cache);
  }
  return cache;
}

export function pipelineStats(device: GPUDevice): PipelineStats {
  const { created, reused } = cacheOf(device);
  return { created, reused };
}

/** "add:3:12: error: expected ';'" followed by the source line and a caret under the column. */
export function renderCompilationMessage(shader: string, wgsl: string, m: GPUCompilationMessage): string {
  const line = wgsl.split("\n")[m.lineNum - 1] ?? "";
  const gutter = `${m.lineNum} | `;
  const caret = `${" ".repeat(gutter.length - 2)}| ${" ".repeat(Math.max(0, m.linePos - 1))}^`;
  return `${shader}:${m.lineNum}:${m.linePos}: ${m.type}: ${m.message}\n${gutter}${line}\n${caret}`;
}

async function compileShader(device: GPUDevice, name: string, wgsl: string): Promise<E.Either<RuntimeError, GPUShaderModule>> {
  // The scope keeps Dawn from reporting the same failure again as an uncaptured error.
  device.pushErrorScope("validation");
  const shaderModule = device.createShaderModule({ label: name, code: wgsl });
  const [info, scopeError] = await Promise.all([shaderModule.getCompilationInfo(), device.popErrorScope()]);
  const errors = info.messages.filter((m) => m.type === "error");
  const first = errors[0];
  if (first !== undefined) {
    const rendered = errors.map((m) => renderCompilationMessage(name, wgsl, m)).join("\n");
    return E.left({
      kind: "shader",
      message: `shader '${name}' does not compile:\n${rendered}`,
      shader: name,
      line: first.lineNum,
      column: first.linePos,
    });
  }
  if (scopeError !== null) return E.left({ kind: "shader", message: `shader '${name}': ${scopeError.message}`, shader: name });
  return E.right(shaderModule);
}

/**
 * The override record of a use: lit0..litN by name, and TILE_OVERRIDE where the use has a tile
 * (its rows: the default, or the tuner's choice); or a message when the counts disagree.
 */
export function overrideValues(shader: ShaderSpec, constants: readonly number[] | undefined, tileRows?: number): E.Either<string, Record<string, number>> {
  const types = shader.overrides ?? [];
  const values = constants ?? [];
  if (values.length !== types.length) {
    return E.left(`shader '${shader.name}' declares ${types.length} overrides, the dispatch gives ${values.length} values`);
  }
  const bad = values.findIndex((v, k) => !Number.isFinite(v) || (types[k] !== "f32" && !Number.isInteger(v)));
  if (bad >= 0) return E.left(`shader '${shader.name}': override ${overrideName(bad)} (${types[bad]}) cannot take ${values[bad]}`);
  const record: Record<string, number> = Object.fromEntries(values.map((v, k) => [overrideName(k), v]));
  if (tileRows !== undefined) record[TILE_OVERRIDE] = tileRows;
  return E.right(record);
}

/** The cache key of a use: the kernel text, its override values and its tile. */
export const useKey = (shader: ShaderSpec, variant: Pick<KernelVariant, "constants" | "tile">): string =>
  `${shader.wgsl}\u0000${(variant.constants ?? []).join(",")}\u0000${variant.tile?.rows ?? ""}`;

/**
 * The pipeline of one use of a kernel on `device`, created at most once per device: later
 * requests (from this or any other module) get the same object.
 */
export function pipelineFor(device: GPUDevice, shader: ShaderSpec, variant: Pick<KernelVariant, "constants" | "tile">): Promise<E.Either<RuntimeError, GPUComputePipeline>> {
  const cache = cacheOf(device);
  const key = useKey(shader, variant);
  const known = cache.pipelines.get(key);
  if (known !== undefined) {
    cache.reused++;
    return known;
  }
  cache.created++;
  const made = (async (): Promise<E.Either<RuntimeError, GPUComputePipeline>> => {
    const constants = overrideValues(shader, variant.constants, variant.tile?.rows);
    if (E.isLeft(constants)) return E.left({ kind: "module", message: constants.left });
    let compiled = cache.shaders.get(shader.wgsl);
    if (compiled === undefined) {
      compiled = compileShader(device, shader.name, shader.wgsl);
      cache.shaders.set(shader.wgsl, compiled);
    }
    const shaderModule = await compiled;
    if (E.isLeft(shaderModule)) return shaderModule;
    try {
      const pipeline = await device.createComputePipelineAsync({
        label: shader.name,
        layout: "auto",
        compute: { module: shaderModule.right, entryPoint: "main", constants: constants.right },
      });
      return E.right(pipeline);
    } catch (e) {
      const detail = e instanceof Error ? e.message : String(e);
      return E.left({ kind: "pipeline", message: `shader '${shader.name}': cannot create its pipeline: ${detail}`, shader: shader.name });
    }
  })();
  // A failure is not kept: the next request tries again (and reports its own error).
  cache.pipelines.set(key, made);
  void made.then((r) => {
    if (E.isLeft(r)) {
      cache.pipelines.delete(key);
      cache.shaders.delete(shader.wgsl);
    }
  });
  return made;
}
