// The DeepLab-MobileNetV2 programs train through the trainer: two iterations of the generated
// multi-level cpu-demo step on a tiny synthetic benchmark, with an evaluation at the end by the
// evaluation program that --eval-every finds for it, and the parameter keys are torchvision's.

import * as E from "fp-ts/lib/Either.js";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import * as d from "../../dsl/index";
import { renderTrainError } from "../../train/errors";
import { chooseEvalProgram, evalPrograms, loadModule, presetOf } from "../../train/programs";
import { expectedTable, persistentSlots } from "../../train/slots";
import { scratch, SILENT, testDevice, tinyData } from "../../train/test-programs";
import { train } from "../../train/trainer";
import { blockGeometry, makeDivisible, mobilenetDeeplabSpec } from "./networks";

const load = async (name: string) => {
  const m = await loadModule(name)();
  if (E.isLeft(m)) throw new Error(renderTrainError(m.left));
  return m.right;
};

describe("MobileNetV2's geometry is torchvision's", () => {
  it("_make_divisible and the channel table at width 1 and 0.25", () => {
    expect([32, 16, 24, 32, 64, 96, 160, 320].map((c) => makeDivisible(c))).toEqual([32, 16, 24, 32, 64, 96, 160, 320]);
    expect([32, 16, 24, 32, 64, 96, 160, 320].map((c) => makeDivisible(c * 0.25))).toEqual([8, 8, 8, 8, 16, 24, 40, 80]);
    expect(makeDivisible(1280 * 0.35)).toBe(448);
  });

  it("output stride 16: features.14 keeps stride 1, the depthwise convs after it are dilated by 2", () => {
    const g = blockGeometry(1, 16);
    expect(g.map((b) => b.stride)).toEqual([1, 2, 1, 2, 1, 1, 2, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1]);
    expect(g.map((b) => b.dilation)).toEqual([1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2]);
    expect(g.filter((b) => b.residual).length).toBe(10);
    const os8 = blockGeometry(1, 8);
    expect(os8.map((b) => b.dilation)).toEqual([1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 4, 4, 4]);
  });

  it("the parameter keys are torchvision's mobilenet_v2 keys (features.0..17), then the heads", () => {
    const keys = d.declareModel("G", mobilenetDeeplabSpec({ widthMult: 1, numClasses: 19, headChannels: 256, outputStride: 16 })).entries;
    const byKey = new Map(keys.map((e) => [e.key, e.spec.shape]));
    expect(byKey.get("features.0.0.weight")).toEqual([32, 3, 3, 3]);
    expect(byKey.get("features.1.conv.0.0.weight")).toEqual([32, 1, 3, 3]);
    expect(byKey.get("features.1.conv.1.weight")).toEqual([16, 32, 1, 1]);
    expect(byKey.get("features.2.conv.1.0.weight")).toEqual([96, 1, 3, 3]);
    expect(byKey.get("features.17.conv.2.weight")).toEqual([320, 960, 1, 1]);
    expect(byKey.get("features.17.conv.3.running_var")).toEqual([320]);
    expect([...byKey.keys()].some((k) => k.startsWith("features.18."))).toBe(false);
    // torchvision's 3,504,872 parameters less features.18 (412,160) and classifier.1 (1,281,000).
    const backbone = keys.filter((e) => e.key.startsWith("features.") && e.spec.kind === "param");
    expect(backbone.reduce((n, e) => n + e.spec.shape.reduce((a, b) => a * b, 1), 0)).toBe(3504872 - 412160 - 1281000);
  });
});

describe("the mobilenet cpu-demo programs", () => {
  it("names its preset, and the trainer's --eval-every finds eval-mobilenet-cpu-demo", async () => {
    expect(presetOf("mobilenet-multi-level-cpu-demo")).toBe("cpu-demo");
    expect(presetOf("eval-mobilenet-cpu-demo")).toBe("cpu-demo");
    expect(evalPrograms("cpu-demo")).toContain("eval-mobilenet-cpu-demo");
    const module = await load("mobilenet-multi-level-cpu-demo");
    const trained = expectedTable(persistentSlots(module), "G");
    const chosen = await chooseEvalProgram("G", trained, evalPrograms("cpu-demo"), "cpu-demo", module.config);
    expect(E.isRight(chosen) && chosen.right.name).toBe("eval-mobilenet-cpu-demo");
  });

  it("trains two iterations of mobilenet-multi-level-cpu-demo and evaluates the result", async () => {
    const [module, evalModule, data, device] = await Promise.all([
      load("mobilenet-multi-level-cpu-demo"),
      load("eval-mobilenet-cpu-demo"),
      tinyData(),
      testDevice(),
    ]);
    const dir = scratch("mobilenet-");
    const r = await train(
      { module, evalModule, data, seed: 1, numStepsStop: 2, savePredEvery: 2, snapshotDir: dir, snapshotPrefix: "mnv2", logEvery: 1, evalEvery: 2, workers: 0, metricsPath: join(dir, "metrics.jsonl"), progress: SILENT },
      device,
    );
    if (E.isLeft(r)) throw new Error(renderTrainError(r.left));
    expect(r.right.iteration).toBe(2);
    for (const k of ["loss_seg1", "loss_seg2", "loss_adv1", "loss_adv2", "loss_D1", "loss_D2"]) expect(Number.isFinite(r.right.losses[k])).toBe(true);
    // Random 19-class predictions: the cross-entropy starts near ln 19.
    expect(r.right.losses["loss_seg2"]).toBeGreaterThan(1);
    expect(r.right.evals.length).toBe(1);
    expect(r.right.evals[0]!.result.summary.miou).toBeGreaterThanOrEqual(0);
    expect(r.right.groups["G"]!.has("features.17.conv.3.running_var")).toBe(true);
  }, 600_000);
});
