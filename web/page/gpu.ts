// The page's WebGPU device: runtime/device.ts's acquireDevice on navigator.gpu (the limits and
// features requested exactly as under Node), and what the page shows about it.

import * as E from "fp-ts/lib/Either.js";
import type { GeneratedModule } from "../../format/module";
import { acquireDevice, type AcquiredDevice, describeAdapter, type RuntimeError, runtimeError } from "../../runtime/device";
import { chooseVariant, deviceFeatures } from "../../runtime/runner";
import { combinedNeeds } from "../../train/iteration";

export const NO_WEBGPU =
  "This browser does not offer WebGPU (navigator.gpu is undefined). Use a browser with WebGPU enabled: " +
  "Chrome or Edge 113+, or Chromium started with --enable-unsafe-webgpu; the page needs it to train.";

/** A device for every module, or why there is none, in words for the page. */
export async function pageDevice(gpu: GPU | undefined, modules: readonly GeneratedModule[]): Promise<E.Either<RuntimeError, AcquiredDevice>> {
  if (gpu === undefined) return E.left(runtimeError("no-adapter", NO_WEBGPU));
  return acquireDevice(gpu, combinedNeeds(modules))();
}

/** The adapter as the page lists it: name, class, subgroup sizes and the limits the modules depend on. */
export function adapterFacts(d: AcquiredDevice): [string, string][] {
  const info = d.info as GPUAdapterInfo & { subgroupMinSize?: number; subgroupMaxSize?: number };
  const l = d.device.limits;
  return [
    ["adapter", describeAdapter(d.info)],
    ["class", `${d.adapterClass} (${d.adapterClass === "cpu" ? "software: CPU-tuned kernel variants where they fit" : "GPU: portable kernels"})`],
    ["subgroup size", info.subgroupMinSize === undefined ? "not reported" : `${info.subgroupMinSize}..${info.subgroupMaxSize}`],
    ["features", [...d.device.features].sort().join(", ")],
    ["maxComputeInvocationsPerWorkgroup", String(l.maxComputeInvocationsPerWorkgroup)],
    ["maxStorageBuffersPerShaderStage", String(l.maxStorageBuffersPerShaderStage)],
    ["maxStorageBufferBindingSize", String(l.maxStorageBufferBindingSize)],
    ["maxBufferSize", String(l.maxBufferSize)],
    ["maxComputeWorkgroupStorageSize", String(l.maxComputeWorkgroupStorageSize)],
  ];
}

/** How many dispatches of a module run the subgroup variant on this device, and how many a portable one. */
export function variantCounts(module: GeneratedModule, d: AcquiredDevice): { subgroup: number; portable: number } {
  const features = deviceFeatures(d.device);
  let subgroup = 0;
  let portable = 0;
  for (const p of module.phases) {
    for (const disp of p.dispatches) {
      const v = chooseVariant(disp, d.adapterClass, features);
      if (E.isRight(v) && (v.right.features ?? []).includes("subgroups")) subgroup++;
      else portable++;
    }
  }
  return { subgroup, portable };
}
