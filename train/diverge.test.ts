// A loss that turns NaN or infinite stops the run with the loss, the iteration interval in which
// it went bad, and the last good snapshot; nothing is saved after it.

import * as E from "fp-ts/lib/Either.js";
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { writeSafetensors } from "../checkpoint/safetensors";
import { makeTensor } from "../checkpoint/tensor";
import { loadCheckpoint } from "./checkpoint";
import { renderTrainError } from "./errors";
import { readMetrics } from "./metrics";
import { persistentSlots } from "./slots";
import { compiled, scratch, SILENT, testDevice, tinyData, TINY, tinyTrainProgram } from "./test-programs";
import { train, type TrainRun } from "./trainer";

describe("divergence", () => {
  it("an exploding run stops at the first read-back that sees a non-finite loss, keeping the last good snapshot", async () => {
    const device = await testDevice();
    const data = await tinyData();
    // A learning rate no network survives: the weights overflow within a few dozen steps.
    const module = compiled(tinyTrainProgram("tiny-explode", { ...TINY, learningRate: 1e5 }));
    const dir = scratch();
    const run: TrainRun = {
      module,
      data,
      seed: 3,
      numStepsStop: 60,
      savePredEvery: 4,
      snapshotDir: dir,
      snapshotPrefix: "x",
      logEvery: 3,
      evalEvery: 0,
      workers: 0,
      metricsPath: join(dir, "metrics.jsonl"),
      progress: SILENT,
    };
    const r = await train(run, device);
    if (E.isRight(r)) throw new Error("the run did not diverge; raise the learning rate of this test");
    const m = renderTrainError(r.left);
    // Either a loss went non-finite, or (train-mode BN hiding it from the losses) a state tensor did.
    const found =
      /(loss_\w+) is (?:NaN|-?Infinity) at iteration (\d+); all losses were finite at iteration (\d+)/.exec(m) ??
      /tensor (\S+) holds non-finite values at iteration (\d+) \(the losses are still finite\); every tensor was finite at iteration (\d+)/.exec(m);
    expect(found, m).not.toBeNull();
    const [, loss, bad, good] = found!;
    expect(Number(bad)).toBeGreaterThan(Number(good));

    // The interval is honest: the log shows finite losses at `good` and the bad value at `bad`.
    const log = readMetrics(join(dir, "metrics.jsonl"));
    const last = log.at(-1)!;
    expect(last).toMatchObject({ type: "diverged", iteration: Number(bad), loss, last_finite: Number(good) });

    // No snapshot at or after the bad read; the one named is the newest and holds finite values.
    const snaps = readdirSync(dir).filter((f) => /^x_\d+\.safetensors$/.test(f)).map((f) => Number(/\d+/.exec(f)![0]));
    expect(snaps.every((i) => i <= Number(good))).toBe(true);
    if (snaps.length > 0) {
      const newest = join(dir, `x_${Math.max(...snaps)}.safetensors`);
      expect(m).toContain(`the last good snapshot is ${newest}`);
      const c = await loadCheckpoint(newest)();
      if (E.isLeft(c)) throw new Error(renderTrainError(c.left));
      for (const dict of Object.values(c.right.groups)) {
        for (const t of dict.values()) expect(Array.from(t.data as Float32Array).every(Number.isFinite)).toBe(true);
      }
    } else {
      expect(m).toContain("no snapshot was written before it");
    }
  });

  it("non-finite weights are refused when they are loaded, naming the tensor, before any iteration", async () => {
    const device = await testDevice();
    const data = await tinyData();
    const module = compiled(tinyTrainProgram("tiny-train"));
    const path = join(scratch(), "nan.safetensors");
    const g = persistentSlots(module).filter((s) => s.model === "G");
    const dict = new Map(g.map((s) => [s.key, makeTensor("F32", s.slot.shape, new Float32Array(s.slot.shape.reduce((n, x) => n * x, 1)).fill(s.key === "layer6.weight" ? Number.NaN : 0.1))]));
    await writeSafetensors(path, { tensors: dict, metadata: {} })();
    const dir = scratch();
    const r = await train(
      { module, data, seed: 1, numStepsStop: 10, savePredEvery: 0, snapshotDir: dir, snapshotPrefix: "n", restoreFrom: path, logEvery: 5, evalEvery: 0, workers: 0, progress: SILENT },
      device,
    );
    const m = E.isLeft(r) ? renderTrainError(r.left) : "";
    expect(m).toContain(`${path}: tensor layer6.weight of G holds NaN at element 0`);
    expect(existsSync(join(dir, "n_10.safetensors"))).toBe(false);
  });

  it("a stop past NUM_STEPS is refused: the poly schedule is undefined there", async () => {
    const device = await testDevice();
    const data = await tinyData();
    const module = compiled(tinyTrainProgram("tiny-short", { ...TINY, numSteps: 20 }));
    const r = await train(
      { module, data, seed: 1, numStepsStop: 30, savePredEvery: 0, snapshotDir: scratch(), snapshotPrefix: "s", logEvery: 5, evalEvery: 0, workers: 0, progress: SILENT },
      device,
    );
    expect(E.isLeft(r) && renderTrainError(r.left)).toContain("--num-steps-stop 30 is past NUM_STEPS 20");
  });

  it("a stop past a run-time --num-steps is refused as well (the run's NUM_STEPS, not the default)", async () => {
    const device = await testDevice();
    const data = await tinyData();
    const module = compiled(tinyTrainProgram("tiny-long", { ...TINY, numSteps: 1000 }));
    const r = await train(
      { module, data, seed: 1, hyperparameters: { numSteps: 20 }, numStepsStop: 30, savePredEvery: 0, snapshotDir: scratch(), snapshotPrefix: "s", logEvery: 5, evalEvery: 0, workers: 0, progress: SILENT },
      device,
    );
    expect(E.isLeft(r) && renderTrainError(r.left)).toContain("--num-steps-stop 30 is past NUM_STEPS 20");
  });
});
