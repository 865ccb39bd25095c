// Getting a WebGPU device fit for a generated module, and the runtime's one error type.
//
// Pure WebGPU API (no Node): the caller passes the `GPU` object (navigator.gpu in a browser,
// runtime/node-gpu.ts under Node). Limits follow TVM's practice: request the adapter's maxima for
// the limits that bound kernel and buffer sizes, because WebGPU's defaults are far lower than what
// adapters offer (lavapipe: maxBufferSize 4 GiB vs a 256 MiB default, 1024 vs 256 invocations per
// workgroup), and a device only grants what was asked for.

import * as TE from "fp-ts/lib/TaskEither.js";
import * as E from "fp-ts/lib/Either.js";
import { pipe } from "fp-ts/lib/function.js";
import type { AdapterClass, GeneratedModule } from "../format/module.js";

// ---------------------------------------------------------------------------------------------
// Errors

export type RuntimeErrorKind =
  /** No WebGPU adapter: no driver (lavapipe on a CPU-only Debian machine) or WebGPU disabled. */
  | "no-adapter"
  /** The module needs more of a device limit than the adapter (or the device) offers. */
  | "limit"
  /** The module needs a feature the adapter lacks. */
  | "feature"
  /** requestDevice refused, or the device was lost. */
  | "device"
  /** The module itself is inconsistent: a placement outside its arena, a misaligned offset. */
  | "module"
  /** A WGSL shader does not compile. */
  | "shader"
  /** A shader compiled but its pipeline could not be created. */
  | "pipeline"
  /** Tile tuning was asked for wrongly (ADAPTSEG_TUNE has an unknown value). */
  | "tune"
  /** A tensor name that the module does not have, or data of the wrong length or type. */
  | "tensor"
  /** A WebGPU validation or out-of-memory error caught while creating resources. */
  | "gpu";

/** Every failure carries its full, rendered message; the extra fields are for programs. */
export interface RuntimeError {
  readonly kind: RuntimeErrorKind;
  readonly message: string;
  /** "limit": the limit's name and both numbers. */
  readonly limit?: { readonly name: string; readonly needed: number; readonly available: number };
  /** "shader" / "pipeline": the shader's name, and where in it the first error is. */
  readonly shader?: string;
  readonly line?: number;
  readonly column?: number;
}

export function runtimeError(kind: RuntimeErrorKind, message: string): RuntimeError {
  return { kind, message };
}

/** "the module needs maxBufferSize = 8589934592, but the adapter offers only 4294967296". */
export function limitError(name: string, needed: number, available: number, who: string, offeredBy: string): RuntimeError {
  return {
    kind: "limit",
    message: `${who} needs ${name} = ${needed}, but the ${offeredBy} offers only ${available}`,
    limit: { name, needed, available },
  };
}

/** Thrown (not returned) by Instance methods whose misuse is a bug in the calling program. */
export class RuntimeFault extends Error {
  constructor(readonly error: RuntimeError) {
    super(error.message);
    this.name = "RuntimeFault";
  }
}

export const NO_ADAPTER_HELP =
  "no WebGPU adapter found. Without a GPU, install a Vulkan driver that runs on the CPU: on Debian " +
  "bookworm, `apt-get install -t bookworm-backports mesa-vulkan-drivers libvulkan1` (bookworm's own " +
  "Mesa 22 is too old for Dawn; .ci/run shows the steps), and set XDG_RUNTIME_DIR. " +
  "In a browser, enable WebGPU.";

// ---------------------------------------------------------------------------------------------
// Adapters

/** Software adapters (lavapipe, SwiftShader) run kernels on the CPU and want different variants. */
export function classifyAdapter(info: Pick<GPUAdapterInfo, "vendor" | "architecture" | "device" | "description"> & {
  readonly isFallbackAdapter?: boolean;
}): AdapterClass {
  if (info.isFallbackAdapter === true) return "cpu";
  if (/^(software|swiftshader)$/i.test(info.architecture)) return "cpu";
  const text = `${info.vendor} ${info.device} ${info.description}`;
  return /llvmpipe|lavapipe|swiftshader|softpipe|warp/i.test(text) ? "cpu" : "gpu";
}

/** One line for logs and benchmark reports, e.g. "mesa software (llvmpipe: Mesa 25.0.7 ...)". */
export function describeAdapter(info: GPUAdapterInfo): string {
  const detail = info.description || info.device;
  return `${info.vendor || "unknown vendor"} ${info.architecture || "unknown architecture"}${detail ? ` (${detail})` : ""}`;
}

// ---------------------------------------------------------------------------------------------
// Limits and features

export type DeviceNeeds = GeneratedModule["limits"] & { readonly features?: readonly GPUFeatureName[] };

type LimitName = keyof GeneratedModule["limits"];

/** Limits requested at the adapter's maximum whatever the module says (they bound kernel shapes). */
const RAISED_LIMITS = [
  "maxBufferSize",
  "maxStorageBufferBindingSize",
  "maxStorageBuffersPerShaderStage",
  "maxComputeWorkgroupStorageSize",
  "maxComputeInvocationsPerWorkgroup",
  "maxComputeWorkgroupSizeX",
  "maxComputeWorkgroupSizeY",
  "maxComputeWorkgroupSizeZ",
] as const satisfies readonly (keyof GPUSupportedLimits)[];

/** Requested when the adapter has them: per-kernel timing, and the fast CPU matmul's broadcasts. */
const OPTIONAL_FEATURES: readonly GPUFeatureName[] = ["timestamp-query", "subgroups"];

function neededLimits(needs: DeviceNeeds): Record<LimitName, number> {
  return {
    maxStorageBufferBindingSize: needs.maxStorageBufferBindingSize,
    maxBufferSize: needs.maxBufferSize,
    maxStorageBuffersPerShaderStage: needs.maxStorageBuffersPerShaderStage,
  };
}

/** Left naming the first limit the module needs beyond what the adapter offers. */
export function checkLimits(needs: DeviceNeeds, offered: GPUSupportedLimits): E.Either<RuntimeError, void> {
  for (const [name, needed] of Object.entries(neededLimits(needs)) as [LimitName, number][]) {
    const available = offered[name];
    if (needed > available) {
      return E.left(limitError(name, needed, available, "the module", "adapter"));
    }
  }
  return E.right(undefined);
}

/** What to pass as requiredLimits: the adapter's maxima for RAISED_LIMITS, else what is needed. */
export function requestedLimits(needs: DeviceNeeds, offered: GPUSupportedLimits): Record<string, number> {
  const limits: Record<string, number> = { ...neededLimits(needs) };
  for (const name of RAISED_LIMITS) limits[name] = offered[name];
  return limits;
}

export function requestedFeatures(
  needs: DeviceNeeds,
  offered: ReadonlySetLike<string>,
): E.Either<RuntimeError, GPUFeatureName[]> {
  const required = needs.features ?? [];
  const missing = required.find((f) => !offered.has(f));
  if (missing !== undefined) {
    return E.left(runtimeError("feature", `the module needs the WebGPU feature '${missing}', which the adapter lacks`));
  }
  const optional = OPTIONAL_FEATURES.filter((f) => offered.has(f) && !required.includes(f));
  return E.right([...required, ...optional]);
}

interface ReadonlySetLike<T> {
  has(value: T): boolean;
}

// ---------------------------------------------------------------------------------------------
// Device health: errors nobody awaited

/** Uncaptured errors and loss of a device, recorded as they happen (WebGPU reports them late). */
export interface DeviceHealth {
  /** Messages of uncaptured errors, oldest first; at most MAX_RECORDED_ERRORS. */
  readonly errors: readonly string[];
  /** Set once the device is lost; reason "destroyed" after destroy(). */
  readonly lost: { readonly reason: string; readonly message: string } | undefined;
}

/** A broken kernel can fail on every step; the first few errors say all there is to say. */
const MAX_RECORDED_ERRORS = 32;

export function watchDevice(device: GPUDevice): DeviceHealth {
  const errors: string[] = [];
  const health = { errors, lost: undefined as DeviceHealth["lost"] };
  device.addEventListener("uncapturederror", (event) => {
    // Recorded here, so the default report (a console message) is not needed as well.
    event.preventDefault();
    if (errors.length < MAX_RECORDED_ERRORS) errors.push((event as GPUUncapturedErrorEvent).error.message);
  });
  void device.lost.then((info) => {
    health.lost = { reason: info.reason, message: info.message };
  });
  return health;
}

/** The first thing wrong with a device, if any: lost (other than by destroy()), or an error. */
export function healthError(health: DeviceHealth): RuntimeError | undefined {
  if (health.lost !== undefined && health.lost.reason !== "destroyed") {
    return runtimeError("device", `the WebGPU device was lost (${health.lost.reason}): ${health.lost.message}`);
  }
  const first = health.errors[0];
  if (first === undefined) return undefined;
  const more = health.errors.length > 1 ? ` (and ${health.errors.length - 1} more)` : "";
  return runtimeError("gpu", `uncaptured WebGPU error${more}: ${first}`);
}

// ---------------------------------------------------------------------------------------------
// Acquiring

export interface AcquiredDevice {
  readonly device: GPUDevice;
  readonly adapter: GPUAdapter;
  readonly adapterClass: AdapterClass;
  readonly info: GPUAdapterInfo;
  readonly health: DeviceHealth;
}

function requestAdapter(gpu: GPU): TE.TaskEither<RuntimeError, GPUAdapter> {
  return pipe(
    TE.tryCatch(
      () => gpu.requestAdapter({ powerPreference: "high-performance" }),
      (e) => runtimeError("no-adapter", `${NO_ADAPTER_HELP} (requestAdapter failed: ${String(e)})`),
    ),
    TE.chain((adapter) => (adapter === null ? TE.left(runtimeError("no-adapter", NO_ADAPTER_HELP)) : TE.right(adapter))),
  );
}

function requestDevice(adapter: GPUAdapter, needs: DeviceNeeds): TE.TaskEither<RuntimeError, GPUDevice> {
  return pipe(
    TE.fromEither(checkLimits(needs, adapter.limits)),
    TE.chain(() => TE.fromEither(requestedFeatures(needs, adapter.features))),
    TE.chain((requiredFeatures) =>
      TE.tryCatch(
        () =>
          adapter.requestDevice({
            label: "adaptsegnet",
            requiredFeatures,
            requiredLimits: requestedLimits(needs, adapter.limits),
          }),
        (e) => runtimeError("device", `requestDevice failed: ${e instanceof Error ? e.message : String(e)}`),
      ),
    ),
  );
}

/** A device with the limits and features `needs` asks for, from the high-performance adapter. */
export function acquireDevice(gpu: GPU, needs: DeviceNeeds): TE.TaskEither<RuntimeError, AcquiredDevice> {
  return pipe(
    requestAdapter(gpu),
    TE.chain((adapter) =>
      pipe(
        requestDevice(adapter, needs),
        TE.map((device) => ({
          device,
          adapter,
          adapterClass: classifyAdapter(adapter.info),
          info: adapter.info,
          health: watchDevice(device),
        })),
      ),
    ),
  );
}
