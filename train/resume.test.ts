// A run killed at a random iteration and resumed from its last snapshot ends with exactly the
// parameters, optimizer state and BN statistics of a run that was never interrupted.

import * as E from "fp-ts/lib/Either.js";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import type { StateDict, Tensor } from "../checkpoint/tensor";
import { loadCheckpoint } from "./checkpoint";
import { renderTrainError } from "./errors";
import { readMetrics } from "./metrics";
import { compiled, scratch, SILENT, testDevice, tinyData, tinyTrainProgram } from "./test-programs";
import { train, type TrainRun } from "./trainer";

const bytes = (t: Tensor) => new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);

function expectBitwiseEqual(a: Readonly<Record<string, StateDict>>, b: Readonly<Record<string, StateDict>>): number {
  expect(Object.keys(b).sort()).toEqual(Object.keys(a).sort());
  let tensors = 0;
  for (const [model, dict] of Object.entries(a)) {
    const other = b[model]!;
    expect([...other.keys()].sort()).toEqual([...dict.keys()].sort());
    for (const [key, t] of dict) {
      const u = other.get(key)!;
      expect(u.shape, `${model}.${key}`).toEqual(t.shape);
      // Buffer.compare: bit patterns, so -0 vs 0 or two NaN payloads would count as different.
      expect(Buffer.compare(bytes(u), bytes(t)), `${model}.${key} differs`).toBe(0);
      tensors++;
    }
  }
  return tensors;
}

describe("resume", () => {
  const module = compiled(tinyTrainProgram("tiny-train"));
  let data: Awaited<ReturnType<typeof tinyData>>;
  beforeAll(async () => {
    data = await tinyData();
  });

  const STOP = 12;
  const base = (dir: string): TrainRun => ({
    module,
    data,
    seed: 99,
    numStepsStop: STOP,
    savePredEvery: 4,
    snapshotDir: dir,
    snapshotPrefix: "tiny",
    logEvery: 3,
    evalEvery: 0,
    workers: 0,
    metricsPath: join(dir, "metrics.jsonl"),
    progress: SILENT,
  });

  it("a run killed at a random iteration and resumed ends bit for bit where an uninterrupted run ends", async () => {
    const device = await testDevice();
    const straight = await train(base(scratch()), device);
    if (E.isLeft(straight)) throw new Error(renderTrainError(straight.left));

    // Kill after a random iteration past the first snapshot (at 4); nothing after the last
    // snapshot survives, as with SIGKILL.
    const killAt = 5 + Math.floor(Math.random() * (STOP - 5));
    const dir = scratch();
    const killed = train({ ...base(dir), afterStep: (done) => {
      if (done === killAt) throw new Error(`killed at ${done}`);
    } }, device);
    await expect(killed).rejects.toThrow(`killed at ${killAt}`);

    const resumed = await train({ ...base(dir), resume: true }, device);
    if (E.isLeft(resumed)) throw new Error(renderTrainError(resumed.left));
    const n = expectBitwiseEqual(straight.right.groups, resumed.right.groups);
    expect(n).toBe(module.tensors.filter((t) => t.role === "param" || t.role === "state").length);
    expect(resumed.right.losses).toEqual(straight.right.losses);

    // The final snapshot files agree too, and record where the samplers stand.
    const c = await loadCheckpoint(join(dir, `tiny_${STOP}.safetensors`))();
    if (E.isLeft(c)) throw new Error(renderTrainError(c.left));
    expect(c.right.iteration).toBe(STOP);
    expect(c.right.sampler).toEqual({ seed: 99, sourcePosition: STOP, targetPosition: STOP });
    expectBitwiseEqual(straight.right.groups, c.right.groups);

    // The metrics log continues without the iterations the killed run repeated.
    const iterations = readMetrics(join(dir, "metrics.jsonl")).filter((r) => r.type === "loss").map((r) => r.iteration);
    expect(iterations).toEqual([...new Set(iterations)].sort((a, b) => a - b));
    expect(iterations.at(-1)).toBe(STOP);
  });

  it("another seed gives another run (the comparison above is not vacuous)", async () => {
    const device = await testDevice();
    const a = await train({ ...base(scratch()), numStepsStop: 4 }, device);
    const b = await train({ ...base(scratch()), numStepsStop: 4, seed: 100 }, device);
    if (E.isLeft(a) || E.isLeft(b)) throw new Error("training failed");
    const w = (r: typeof a) => (E.isRight(r) ? bytes(r.right.groups["G"]!.get("conv1.weight")!) : new Uint8Array());
    expect(Buffer.compare(w(a), w(b))).not.toBe(0);
  });

  it("--resume without a snapshot says where it looked", async () => {
    const device = await testDevice();
    const dir = scratch();
    const r = await train({ ...base(dir), resume: true }, device);
    expect(E.isLeft(r) && renderTrainError(r.left)).toContain(`no snapshot tiny_<iteration>.safetensors in ${dir}`);
  });
});
