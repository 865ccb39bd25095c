// Pooled kernels on a device: override values per use, pipelines shared between instances, and
// modules whose override values do not fit their kernel refused before anything is created.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as E from "fp-ts/lib/Either.js";
import type { AcquiredDevice } from "./device.js";
import { pipelineStats } from "./pipelines.js";
import { checkModule, instantiate, type Instance } from "./runner.js";
import { testDevice } from "../testing/gpu.js";
import { overrideModule } from "../testing/modules.js";

let gpu: AcquiredDevice;
const live: Instance[] = [];

beforeAll(async () => {
  gpu = await testDevice();
});

afterAll(() => {
  for (const instance of live) instance.destroy();
  gpu.device.destroy();
});

async function run(constants?: Parameters<typeof overrideModule>[0]): Promise<Instance> {
  const made = await instantiate(gpu.device, overrideModule(constants), gpu.adapterClass);
  if (E.isLeft(made)) throw new Error(made.left.message);
  live.push(made.right);
  return made.right;
}

describe("pooled kernels", () => {
  it("give each use its own override values: one kernel text, two sizes and factors", async () => {
    const m = await run();
    m.write("x", [1, 2, 3, 4]);
    m.step();
    expect(Array.from(await m.read("y"))).toEqual([2, 4, 6, 8]);
    expect(Array.from(await m.read("z"))).toEqual([3, 6, 0, 0]);
  });

  it("share pipelines between instances on one device: the second instance creates none", async () => {
    await run([[5, 1], [6, 3]]);
    const before = pipelineStats(gpu.device);
    const second = await run([[5, 1], [6, 3]]);
    const after = pipelineStats(gpu.device);
    expect(after.created - before.created).toBe(0);
    expect(after.reused - before.reused).toBe(2);
    second.write("x", [1, 1, 1, 1]);
    second.step();
    expect(Array.from(await second.read("z"))).toEqual([6, 6, 6, 0]);
  });

  it("refuse a use with the wrong number of override values, naming the dispatch and the kernel", () => {
    const checked = checkModule(overrideModule([[2], [3, 2]]), gpu.device.limits);
    expect(E.isLeft(checked) && checked.left.message).toMatch(/dispatch 'y'.*'scale_pooled' declares 2 overrides, the dispatch gives 1 values/);
  });

  it("refuse a non-integer value for an integer override", () => {
    const checked = checkModule(overrideModule([[2, 1.5], [3, 2]]), gpu.device.limits);
    expect(E.isLeft(checked) && checked.left.message).toMatch(/override lit1 \(i32\) cannot take 1\.5/);
  });
});
