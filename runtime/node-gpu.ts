// WebGPU under Node: Dawn from the npm `webgpu` package. Everything Node-specific in the runtime
// lives here, so device.ts and runner.ts run unchanged against a browser's navigator.gpu.

import { mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { create, globals } from "webgpu";
import type { TaskEither } from "fp-ts/lib/TaskEither.js";
import { acquireDevice, type AcquiredDevice, type DeviceNeeds, type RuntimeError } from "./device.js";

/**
 * Dawn option that turns off timestamp quantization (on by default, it rounds GPU timestamps to
 * tens of microseconds as a side-channel defence). Pass it to nodeGPU when profiling kernels.
 */
export const PRECISE_TIMESTAMPS = "disable-dawn-features=timestamp_quantization";

// Every GPU object created stays referenced for the life of the process: if V8 collects the object
// returned by create(), the next wait crashes inside Dawn (futex error or SIGSEGV in ProcessEvents).
const instances = new Map<string, GPU>();

/** Mesa's Vulkan drivers print errors on every call when XDG_RUNTIME_DIR is unset. */
function ensureXdgRuntimeDir(): void {
  if (process.env["XDG_RUNTIME_DIR"]) return;
  const uid = typeof process.getuid === "function" ? process.getuid() : 0;
  const dir = join(tmpdir(), `xdg-runtime-${uid}`);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  process.env["XDG_RUNTIME_DIR"] = dir;
}

/**
 * The process's Dawn instance for these options (created once, never collected), with the WebGPU
 * globals (GPUBufferUsage, GPUMapMode, ...) installed on globalThis as a browser has them.
 */
export function nodeGPU(options: readonly string[] = []): GPU {
  const key = options.join("\n");
  const existing = instances.get(key);
  if (existing !== undefined) return existing;
  ensureXdgRuntimeDir();
  Object.assign(globalThis, globals);
  const gpu = create([...options]);
  instances.set(key, gpu);
  return gpu;
}

/** acquireDevice on Node's Dawn. */
export function acquireNodeDevice(
  needs: DeviceNeeds,
  options: readonly string[] = [],
): TaskEither<RuntimeError, AcquiredDevice> {
  // Lazily, like every TaskEither: Dawn starts when the task runs, not when it is built.
  return () => acquireDevice(nodeGPU(options), needs)();
}
