import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as E from "fp-ts/lib/Either.js";
import {
  acquireDevice,
  checkLimits,
  classifyAdapter,
  describeAdapter,
  healthError,
  requestedLimits,
  type AcquiredDevice,
  type DeviceNeeds,
} from "./device.js";
import { acquireNodeDevice, nodeGPU } from "./node-gpu.js";
import { sleepingWait } from "./wait.js";
import { SMALL_LIMITS } from "../testing/modules.js";
import { testDevice } from "../testing/gpu.js";

let gpu: AcquiredDevice;

beforeAll(async () => {
  gpu = await testDevice();
});

afterAll(() => {
  gpu.device.destroy();
});

const info = (fields: Partial<GPUAdapterInfo>) => ({ vendor: "", architecture: "", device: "", description: "", isFallbackAdapter: false, ...fields });

describe("classifyAdapter", () => {
  it.each([
    ["lavapipe", { vendor: "mesa", architecture: "software", description: "llvmpipe: Mesa 25.0.7" }],
    ["SwiftShader under Dawn", { vendor: "google", architecture: "swiftshader" }],
    ["any fallback adapter", { isFallbackAdapter: true }],
  ])("calls %s a cpu adapter", (_, fields) => {
    expect(classifyAdapter(info(fields))).toBe("cpu");
  });

  it.each([
    ["an NVIDIA GPU", { vendor: "nvidia", architecture: "hopper" }],
    ["a browser that hides its adapter", {}],
  ])("calls %s a gpu adapter", (_, fields) => {
    expect(classifyAdapter(info(fields))).toBe("gpu");
  });
});

describe("acquireDevice on Dawn", () => {
  it("classifies the adapter it got", () => {
    expect(gpu.adapterClass).toBe(classifyAdapter(gpu.info));
    if (gpu.info.architecture === "software") expect(gpu.adapterClass).toBe("cpu");
    expect(describeAdapter(gpu.info)).toContain(gpu.info.vendor);
  });

  it("requests the adapter's maxima for the limits that bound buffers and workgroups", () => {
    for (const name of [
      "maxBufferSize",
      "maxStorageBufferBindingSize",
      "maxStorageBuffersPerShaderStage",
      "maxComputeWorkgroupStorageSize",
      "maxComputeInvocationsPerWorkgroup",
      "maxComputeWorkgroupSizeX",
    ] as const) {
      expect([name, gpu.device.limits[name]]).toEqual([name, gpu.adapter.limits[name]]);
    }
  });

  it("requests timestamp queries and subgroups when the adapter has them", () => {
    for (const feature of ["timestamp-query", "subgroups"] as const) {
      expect(gpu.device.features.has(feature)).toBe(gpu.adapter.features.has(feature));
    }
  });

  it("refuses a module needing a larger binding than the adapter offers, naming the limit and both numbers", async () => {
    const available = gpu.adapter.limits.maxStorageBufferBindingSize;
    const needed = available * 2;
    const result = await acquireNodeDevice({ ...SMALL_LIMITS, maxStorageBufferBindingSize: needed })();
    expect(E.isLeft(result) && result.left).toMatchObject({
      kind: "limit",
      limit: { name: "maxStorageBufferBindingSize", needed, available },
      message: `the module needs maxStorageBufferBindingSize = ${needed}, but the adapter offers only ${available}`,
    });
  });

  it("records uncaptured errors and loss of the device", async () => {
    const own = await testDevice();
    // MAP_READ may only be combined with COPY_DST: an invalid buffer nobody awaits an error for.
    own.device.createBuffer({ size: 16, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.STORAGE });
    await sleepingWait(own.device.queue.onSubmittedWorkDone());
    expect(own.health.errors).toHaveLength(1);
    expect(healthError(own.health)?.kind).toBe("gpu");
    own.device.destroy();
    await sleepingWait(own.device.lost);
    expect(own.health.lost?.reason).toBe("destroyed");
  });

  it("keeps one Dawn instance per set of options for the whole process", () => {
    expect(nodeGPU()).toBe(nodeGPU([]));
  });
});

describe("acquireDevice failures", () => {
  const needs: DeviceNeeds = SMALL_LIMITS;
  const fakeGPU = (requestAdapter: () => Promise<unknown>) => ({ requestAdapter }) as unknown as GPU;

  it("says how to install a driver when there is no adapter", async () => {
    const result = await acquireDevice(fakeGPU(async () => null), needs)();
    expect(E.isLeft(result) && result.left.kind).toBe("no-adapter");
    expect(E.isLeft(result) && result.left.message).toMatch(/bookworm-backports mesa-vulkan-drivers/);
  });

  it("reports a failing requestAdapter as no adapter, with its reason", async () => {
    const result = await acquireDevice(fakeGPU(() => Promise.reject(new Error("Vulkan loader missing"))), needs)();
    expect(E.isLeft(result) && result.left.message).toMatch(/no WebGPU adapter.*Vulkan loader missing/s);
  });

  it("refuses a module needing a feature the adapter lacks", async () => {
    const adapter = { features: new Set<string>(), limits: gpu.adapter.limits, info: gpu.info };
    const result = await acquireDevice(fakeGPU(async () => adapter), { ...needs, features: ["shader-f16"] })();
    expect(E.isLeft(result) && result.left).toMatchObject({ kind: "feature", message: expect.stringContaining("'shader-f16'") });
  });

  it("reports a refused requestDevice", async () => {
    const adapter = {
      features: new Set<string>(),
      limits: gpu.adapter.limits,
      info: gpu.info,
      requestDevice: () => Promise.reject(new Error("OperationError: limit out of range")),
    };
    const result = await acquireDevice(fakeGPU(async () => adapter), needs)();
    expect(E.isLeft(result) && result.left).toMatchObject({ kind: "device", message: "requestDevice failed: OperationError: limit out of range" });
  });
});

describe("limits", () => {
  it("checkLimits names the first limit a module needs beyond the adapter", () => {
    const offered = { ...gpu.adapter.limits, maxBufferSize: 1000 } as GPUSupportedLimits;
    const result = checkLimits({ ...SMALL_LIMITS, maxBufferSize: 2000 }, offered);
    expect(E.isLeft(result) && result.left.message).toBe("the module needs maxBufferSize = 2000, but the adapter offers only 1000");
  });

  it("requestedLimits raises the kernel-shaping limits to the adapter's maxima", () => {
    const limits = requestedLimits(SMALL_LIMITS, gpu.adapter.limits);
    expect(limits["maxComputeInvocationsPerWorkgroup"]).toBe(gpu.adapter.limits.maxComputeInvocationsPerWorkgroup);
    expect(limits["maxBufferSize"]).toBe(gpu.adapter.limits.maxBufferSize);
  });
});
