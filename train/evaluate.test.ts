// Evaluation during training: the evaluation program gets the trained G (parameters and BN
// running statistics), scores the target val split with the official protocol, and the best
// evaluated state is kept as a named snapshot.

import * as E from "fp-ts/lib/Either.js";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { PROTOCOLS } from "../datasets/classes";
import { listDataset } from "../datasets/layouts";
import { instantiate } from "../runtime/runner";
import { loadCheckpoint } from "./checkpoint";
import { renderTrainError } from "./errors";
import { evalSetup, evaluateWeights } from "./evaluate";
import { readMetrics } from "./metrics";
import { compiled, scratch, SILENT, testDevice, tinyData, tinyEvalProgram, tinyTrainProgram } from "./test-programs";
import { train } from "./trainer";

describe("evaluation", () => {
  const module = compiled(tinyTrainProgram("tiny-train"));
  const evalModule = compiled(tinyEvalProgram("tiny-eval"));

  it("evaluates every N iterations, logs mIoU and keeps the best state as <prefix>_best", async () => {
    const device = await testDevice();
    const data = await tinyData();
    const dir = scratch();
    const r = await train(
      { module, evalModule, data, seed: 4, numStepsStop: 8, savePredEvery: 0, snapshotDir: dir, snapshotPrefix: "e", logEvery: 2, evalEvery: 4, workers: 0, metricsPath: join(dir, "m.jsonl"), plotPath: join(dir, "training.png"), progress: SILENT },
      device,
    );
    if (E.isLeft(r)) throw new Error(renderTrainError(r.left));
    expect(r.right.evals.map((e) => e.iteration)).toEqual([4, 8]);
    for (const e of r.right.evals) {
      expect(e.result.images).toBe(3);
      expect(e.result.summary.miou).toBeGreaterThanOrEqual(0);
      expect(e.result.summary.miou).toBeLessThanOrEqual(100);
    }
    const evals = readMetrics(join(dir, "m.jsonl")).filter((x) => x.type === "eval");
    expect(evals.map((x) => x.iteration)).toEqual([4, 8]);
    const best = r.right.best!;
    expect(best.mIoU).toBe(Math.max(...r.right.evals.map((e) => e.result.summary.miou)));
    const c = await loadCheckpoint(join(dir, "e_best.safetensors"))();
    expect(E.isRight(c) && c.right.iteration).toBe(best.iteration);
    expect(existsSync(join(dir, "training.png"))).toBe(true);
    expect(existsSync(join(dir, "e_8.safetensors"))).toBe(true);
  });

  it("scores the same weights the same way twice, and the final evaluation matches a separate one", async () => {
    const device = await testDevice();
    const data = await tinyData();
    const dir = scratch();
    const r = await train(
      { module, evalModule, data, seed: 5, numStepsStop: 4, savePredEvery: 0, snapshotDir: dir, snapshotPrefix: "f", logEvery: 2, evalEvery: 4, workers: 0, progress: SILENT },
      device,
    );
    if (E.isLeft(r)) throw new Error(renderTrainError(r.left));
    const refs = await listDataset(data.val.spec)();
    if (E.isLeft(refs)) throw new Error("no val data");
    const inst = await instantiate(device.device, evalModule, device.adapterClass);
    if (E.isLeft(inst)) throw new Error(inst.left.message);
    try {
      const setup = evalSetup(evalModule, inst.right, refs.right, PROTOCOLS.cityscapes19);
      if (E.isLeft(setup)) throw new Error(renderTrainError(setup.left));
      const a = await evaluateWeights(setup.right, r.right.groups["G"]!, "final", { keep: 1 });
      const b = await evaluateWeights(setup.right, r.right.groups["G"]!, "final");
      if (E.isLeft(a) || E.isLeft(b)) throw new Error("evaluation failed");
      expect(Array.from(a.right.summary.confusion.hist)).toEqual(Array.from(b.right.summary.confusion.hist));
      expect(a.right.summary.miou).toBe(r.right.evals[0]!.result.summary.miou);
      // Predictions come back at label resolution (the stored 32x16 labels), class indices.
      const p = a.right.predictions[0]!;
      expect(p.pred.length).toBe(32 * 16);
      expect(Math.max(...p.pred)).toBeLessThan(19);
    } finally {
      inst.right.destroy();
    }
  });
});
