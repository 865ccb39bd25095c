// TF.js's WebGPU backend on the same Dawn device as our kernels, for the kernel suite.
//
// The backend registers itself on import when navigator.gpu exists; we install the Dawn GPU
// object there (Node 20 has no navigator), then replace its registration with one that wraps
// our already-acquired device, so both implementations share one device and one queue.
// Convolutions run in TF.js's native NHWC layout with HWIO filters; dx and dw call the kernels
// tf.grad would (Conv2DBackpropInput / Conv2DBackpropFilter) directly, and fwd+dx+dw is tf.grads
// with an upstream gradient. TF.js has no gradients for dilated convolutions: those are reported
// as unsupported. Timing waits with the sleeping wait (environment.md, pitfall 2).

import { performance } from "node:perf_hooks";
import type * as TfCore from "@tensorflow/tfjs";
import type { AcquiredDevice, DeviceHealth } from "../runtime/device";
import type { ConvPass, ConvShape } from "./cases";
import { sleepingWait } from "../runtime/wait";
import { type Contender, type Sample, warmUp } from "./measure";
import { randomData } from "./ours";

type Tf = typeof TfCore;

export interface TfjsSide {
  readonly tf: Tf;
  readonly version: string;
  readonly device: GPUDevice;
  readonly health: DeviceHealth;
}

export async function startTfjs(acquired: AcquiredDevice, gpu: GPU): Promise<TfjsSide | { readonly missing: string }> {
  const nav = (globalThis as { navigator?: { gpu?: GPU } }).navigator;
  if (nav?.gpu === undefined) {
    Object.defineProperty(globalThis, "navigator", { value: { ...(nav ?? {}), gpu }, configurable: true, writable: true });
  }
  let tf: Tf;
  let WebGPUBackend: new (device: GPUDevice, info?: GPUAdapterInfo) => TfCore.KernelBackend;
  try {
    // The union package, not tfjs-core alone: tfjs-core's CommonJS build registers no gradients.
    tf = (await import("@tensorflow/tfjs")) as Tf;
    ({ WebGPUBackend } = (await import("@tensorflow/tfjs-backend-webgpu")) as unknown as { WebGPUBackend: typeof WebGPUBackend });
  } catch (e) {
    return { missing: `TF.js is not installed (npm install): ${e instanceof Error ? e.message : String(e)}` };
  }
  tf.removeBackend("webgpu");
  tf.registerBackend("webgpu", () => new WebGPUBackend(acquired.device, acquired.info), 3);
  if (!(await tf.setBackend("webgpu"))) return { missing: "TF.js could not start its WebGPU backend" };
  await tf.ready();
  return { tf, version: tf.version_core, device: acquired.device, health: acquired.health };
}

interface BackendQueue {
  ensureCommandEncoderReady(): void;
  endComputePassEncoder(): void;
  submitQueue(): void;
}

/**
 * Submits what TF.js has batched (as its own readback does) and waits, sleeping, until the
 * device is idle; throws if a WebGPU error was reported meanwhile (TF.js's own errors would
 * otherwise go unnoticed: our device records uncaptured errors rather than printing them).
 */
async function drain(side: TfjsSide): Promise<void> {
  const errors = side.health.errors.length;
  const backend = side.tf.backend() as unknown as BackendQueue;
  backend.ensureCommandEncoderReady();
  backend.endComputePassEncoder();
  backend.submitQueue();
  await sleepingWait(side.device.queue.onSubmittedWorkDone());
  if (side.health.errors.length > errors) throw new Error(`WebGPU error: ${side.health.errors[errors]}`);
}

function contender(side: TfjsSide, targetMs: number, build: () => { fn: () => void; tensors: TfCore.Tensor[] } | string): Contender {
  let built: { fn: () => void; tensors: TfCore.Tensor[] } | undefined;
  const run = async (reps: number): Promise<Sample> => {
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    for (let i = 0; i < reps; i++) {
      side.tf.tidy(() => {
        built!.fn();
      });
    }
    await drain(side);
    const ms = (performance.now() - t0) / reps;
    const cpu = process.cpuUsage(cpu0);
    return { ms, cpuMs: (cpu.user + cpu.system) / 1000 / reps };
  };
  return {
    impl: "tfjs-webgpu",
    async prepare() {
      const b = build();
      if (typeof b === "string") return { unsupported: b };
      built = b;
      // The cold run compiles TF.js's shaders.
      return { reps: (await warmUp(async () => (await run(1)).ms, targetMs)).reps };
    },
    run,
    async dispose() {
      for (const t of built?.tensors ?? []) t.dispose();
      built = undefined;
    },
  };
}

export function tfjsConv(side: TfjsSide, s: ConvShape, pass: ConvPass, targetMs: number): Contender {
  return contender(side, targetMs, () => {
    if (s.dilation > 1 && pass !== "fwd") return "TF.js has no gradients for dilated convolutions";
    const { tf } = side;
    const [n, c, h, w] = s.x;
    const [o, , kh, kw] = s.w;
    const x = tf.tensor4d(randomData(n * h * w * c, 1), [n, h, w, c]);
    const filter = tf.tensor4d(randomData(kh * kw * c * o, 2, 0.05), [kh, kw, c, o]);
    const conv = (a: TfCore.Tensor4D, b: TfCore.Tensor4D) => tf.conv2d(a, b, s.stride, s.padding, "NHWC", s.dilation, "floor");
    const y = conv(x, filter);
    const dy = tf.randomUniform(y.shape, -1, 1) as TfCore.Tensor4D;
    y.dispose();
    const attrs = { strides: s.stride, pad: s.padding, dataFormat: "NHWC", dimRoundingMode: "floor" };
    const fns: Record<ConvPass, () => void> = {
      fwd: () => conv(x, filter),
      dx: () => tf.engine().runKernel("Conv2DBackpropInput", { dy, filter }, { ...attrs, inputShape: x.shape }),
      dw: () => tf.engine().runKernel("Conv2DBackpropFilter", { x, dy }, { ...attrs, filterShape: filter.shape }),
      all: () => tf.grads((a: TfCore.Tensor, b: TfCore.Tensor) => conv(a as TfCore.Tensor4D, b as TfCore.Tensor4D))([x, filter], dy),
    };
    return { fn: fns[pass], tensors: [x, filter, dy] };
  });
}

export function tfjsMatmul(side: TfjsSide, m: number, k: number, n: number, targetMs: number): Contender {
  return contender(side, targetMs, () => {
    const a = side.tf.tensor2d(randomData(m * k, 3), [m, k]);
    const b = side.tf.tensor2d(randomData(k * n, 4), [k, n]);
    return { fn: () => side.tf.matMul(a, b), tensors: [a, b] };
  });
}
