import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as E from "fp-ts/lib/Either.js";
import type { AcquiredDevice } from "./device.js";
import type { GeneratedModule } from "../format/module.js";
import { checkModule, instantiate, type Instance } from "./runner.js";
import { sleepingWait } from "./wait.js";
import { testDevice } from "../testing/gpu.js";
import {
  ALIGN,
  BROKEN_LINE,
  BROKEN_SOURCE,
  SMALL_LIMITS,
  TABLE,
  accumulateModule,
  addModule,
  brokenShaderModule,
  constantModule,
  dtypeModule,
  twoPhaseModule,
  variantModule,
} from "../testing/modules.js";

let gpu: AcquiredDevice;
const live: Instance[] = [];

beforeAll(async () => {
  gpu = await testDevice();
});

afterAll(() => {
  for (const instance of live) instance.destroy();
  gpu.device.destroy();
});

async function run(module: GeneratedModule, adapterClass = gpu.adapterClass): Promise<Instance> {
  const result = await instantiate(gpu.device, module, adapterClass);
  if (E.isLeft(result)) throw new Error(result.left.message);
  live.push(result.right);
  return result.right;
}

async function failure(module: GeneratedModule) {
  const result = await instantiate(gpu.device, module, gpu.adapterClass);
  if (E.isRight(result)) {
    result.right.destroy();
    throw new Error("expected instantiate to fail");
  }
  return result.left;
}

const X = [1, 2, 3, 4];

describe("instantiate and step", () => {
  it("adds tensors bound at non-zero offsets of one arena and copies the sum into a parameter", async () => {
    const add = await run(addModule());
    add.write("a", X);
    add.write("b", new Float32Array([10, 20, 30, 40]));
    add.step();
    const [sum, p] = await add.readMany(["sum", "p"]);
    expect(Array.from(sum ?? [])).toEqual([11, 22, 33, 44]);
    expect(Array.from(p ?? [])).toEqual([11, 22, 33, 44]);
  });

  it("binds read-only inputs when they live in a different arena from the output", async () => {
    const add = await run(addModule({ access: "read", inputArena: 0 }));
    add.write("a", X);
    add.write("b", X);
    add.step();
    expect(Array.from(await add.read("p"))).toEqual([2, 4, 6, 8]);
  });

  it("runs the second phase on what the first phase's copies wrote", async () => {
    const m = await run(twoPhaseModule());
    m.write("x", X);
    m.step();
    expect(Array.from(await m.read("s"))).toEqual([2, 4, 6, 8]);
    expect(Array.from(await m.read("y"))).toEqual([3, 5, 7, 9]);
  });

  it("puts n steps in one submission: accumulating x three times gives 3x", async () => {
    const m = await run(accumulateModule());
    m.write("acc", [0, 0, 0, 0]);
    m.write("x", X);
    m.step(3);
    expect(Array.from(await m.read("acc"))).toEqual([3, 6, 9, 12]);
  });

  it("copies within one arena through a bounce buffer", async () => {
    const m = await run(accumulateModule(0));
    m.write("acc", [0, 0, 0, 0]);
    m.write("x", X);
    m.step(2);
    expect(Array.from(await m.read("acc"))).toEqual([2, 4, 6, 8]);
  });

  it("uploads constants at creation for shaders to read", async () => {
    const m = await run(constantModule());
    m.write("x", [1, 1, 2, 2]);
    m.step();
    expect(Array.from(await m.read("y"))).toEqual([TABLE[0], TABLE[1], 2 * TABLE[2]!, 2 * TABLE[3]!]);
  });

  it("encodeStep encodes into the caller's encoder", async () => {
    const m = await run(accumulateModule());
    m.write("acc", [1, 1, 1, 1]);
    m.write("x", X);
    const encoder = gpu.device.createCommandEncoder();
    m.encodeStep(encoder);
    m.encodeStep(encoder);
    gpu.device.queue.submit([encoder.finish()]);
    await m.sync();
    expect(Array.from(await m.read("acc"))).toEqual([3, 5, 7, 9]);
  });

  it("leaves no uncaptured WebGPU error behind", () => {
    expect(gpu.health.errors).toEqual([]);
  });
});

describe("kernel variants", () => {
  const cpuTimes1GpuTimes2 = variantModule([
    { adapter: "cpu", shader: 0 },
    { adapter: "gpu", shader: 1 },
  ]);

  it("picks the variant of the adapter's class", async () => {
    const m = await run(cpuTimes1GpuTimes2);
    m.write("x", X);
    m.step();
    const factor = gpu.adapterClass === "cpu" ? 1 : 2;
    expect(Array.from(await m.read("y"))).toEqual(X.map((v) => factor * v));
  });

  it.each([
    ["cpu", 1],
    ["gpu", 2],
  ] as const)("on a %s adapter runs the variant made for it", async (adapterClass, factor) => {
    const m = await run(cpuTimes1GpuTimes2, adapterClass);
    m.write("x", X);
    m.step();
    expect(Array.from(await m.read("y"))).toEqual(X.map((v) => factor * v));
  });

  it("falls back to a variant made for every adapter", async () => {
    const m = await run(variantModule([{ adapter: "gpu", shader: 1 }, { shader: 0 }]), "cpu");
    m.write("x", X);
    m.step();
    expect(Array.from(await m.read("y"))).toEqual(X);
  });

  it("refuses a dispatch with no variant for the adapter", async () => {
    const result = await instantiate(gpu.device, variantModule([{ adapter: "gpu", shader: 1 }]), "cpu");
    expect(E.isLeft(result) && result.left.message).toMatch(/dispatch 'scale' has no kernel variant for a cpu adapter/);
  });
});

describe("errors", () => {
  it("names the shader, the line and the source line of a WGSL syntax error", async () => {
    const error = await failure(brokenShaderModule());
    expect(error.kind).toBe("shader");
    expect(error.shader).toBe("add_broken");
    expect(error.line).toBe(BROKEN_LINE);
    expect(error.message).toContain(`add_broken:${BROKEN_LINE}:${error.column}: error: `);
    expect(error.message).toContain(`${BROKEN_LINE} |   ${BROKEN_SOURCE}`);
    expect(gpu.health.errors).toEqual([]);
  });

  it("refuses a binding larger than the device's maxStorageBufferBindingSize, naming both numbers", async () => {
    const max = gpu.device.limits.maxStorageBufferBindingSize;
    const huge = addModule();
    const bytes = max + ALIGN;
    const module: GeneratedModule = {
      ...huge,
      arenas: huge.arenas.map((a) => ({ ...a, bytes: 2 * bytes })),
      phases: huge.phases.map((p) => ({
        ...p,
        dispatches: p.dispatches.map((d) => ({ ...d, bindings: [...d.bindings.slice(0, 2), { arena: 1, offset: 0, bytes }] })),
        copies: [],
      })),
    };
    const error = await failure(module);
    expect(error.kind).toBe("limit");
    expect(error.limit).toEqual({ name: "maxStorageBufferBindingSize", needed: bytes, available: max });
    expect(error.message).toContain(`maxStorageBufferBindingSize = ${bytes}`);
    expect(error.message).toContain(String(max));
  });

  it("explains why one arena cannot be bound read-only and writable in one dispatch", async () => {
    const error = await failure(addModule({ access: "read" }));
    expect(error.kind).toBe("module");
    expect(error.message).toMatch(/dispatch 'add' .*arena 'scratch' read-only at binding 0.*read_write/);
  });

  it("refuses a placement outside its arena", () => {
    const m = addModule();
    const outside = { ...m, tensors: m.tensors.map((t) => (t.name === "p" ? { ...t, offset: 4 * ALIGN } : t)) };
    const result = checkModule(outside, gpu.device.limits);
    expect(E.isLeft(result) && result.left.message).toMatch(/tensor 'p': bytes 1024\.\.1040 lie outside arena 'persistent'/);
  });

  it("refuses a binding offset that is not a multiple of the storage alignment", () => {
    const m = addModule();
    const misaligned = {
      ...m,
      phases: m.phases.map((p) => ({ ...p, dispatches: p.dispatches.map((d) => ({ ...d, bindings: [{ arena: 1, offset: 4, bytes: 16 }, ...d.bindings.slice(1)] })) })),
    };
    const result = checkModule(misaligned, gpu.device.limits);
    expect(E.isLeft(result) && result.left.message).toMatch(/binding 0: offset 4 is not a multiple of minStorageBufferOffsetAlignment/);
  });

  it("lists the module's tensors when asked for an unknown one", async () => {
    const m = await run(addModule());
    await expect(m.read("summ")).rejects.toThrow(/no tensor named 'summ'; the module has: a, b, sum, p/);
    expect(() => m.write("c", X)).toThrow(/no tensor named 'c'/);
  });

  it("refuses data whose length does not match the tensor's shape", async () => {
    const m = await run(addModule());
    expect(() => m.write("a", [1, 2, 3])).toThrow(/tensor 'a' has shape \[4\] \(4 elements\); got 3 values/);
  });
});

describe("tensor data types", () => {
  it("stores bools as u32 0/1 and converts integer arrays into i32", async () => {
    const m = await run(dtypeModule());
    m.write("mask", [1, 0, 3, 0]);
    m.write("labels", new Uint8Array([0, 1, 255, 7]));
    m.write("f", new Int32Array([1, -2, 3, -4]));
    const [f, labels, mask] = await m.readMany(["f", "labels", "mask"]);
    expect(mask).toEqual(new Uint32Array([1, 0, 1, 0]));
    expect(labels).toEqual(new Int32Array([0, 1, 255, 7]));
    expect(f).toEqual(new Float32Array([1, -2, 3, -4]));
  });

  it("refuses floats for an i32 tensor", async () => {
    const m = await run(dtypeModule());
    expect(() => m.write("labels", new Float32Array(4))).toThrow(/Float32Array cannot fill an i32 tensor/);
    expect(() => m.write("labels", [0.5, 1, 2, 3])).toThrow(/integers only/);
  });
});

describe("profile", () => {
  it("times every dispatch of a step when the device has timestamp queries", async () => {
    const m = await run(twoPhaseModule());
    m.write("x", X);
    const times = await m.profile();
    if (!gpu.device.features.has("timestamp-query")) {
      expect(times).toBeUndefined();
      return;
    }
    expect(times?.map((t) => [t.phase, t.name])).toEqual([
      ["scale", "double"],
      ["shift", "shift"],
    ]);
    for (const t of times ?? []) expect(t.ms).toBeGreaterThanOrEqual(0);
    expect(Array.from(await m.read("y"))).toEqual([3, 5, 7, 9]);
  });
});

describe("sleepingWait", () => {
  it("resolves with the promise's value", async () => {
    await expect(sleepingWait(new Promise((r) => setTimeout(() => r(42), 5)))).resolves.toBe(42);
  });

  it("rejects with the promise's error", async () => {
    await expect(sleepingWait(Promise.reject(new Error("lost")))).rejects.toThrow("lost");
  });
});

// SMALL_LIMITS is what testDevice asked for; the runner must still see the adapter's maxima.
it("runs on a device whose limits were raised beyond what the test modules need", () => {
  expect(gpu.device.limits.maxStorageBufferBindingSize).toBeGreaterThanOrEqual(SMALL_LIMITS.maxStorageBufferBindingSize);
});
