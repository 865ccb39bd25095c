// torchvision's ImageNet mobilenet_v2 state dict as DeepLab-MobileNetV2's backbone: `npm run
// import-weights` picks the mobilenet rule from the keys, keeps features.0..17 unchanged and
// skips features.18 and the classifier; the trainer starts from it (the .pth or the imported
// safetensors) with the segmentation heads at their initialisation, listed in its notes.
// The checkpoint is synthetic (scripts/make_mobilenet_pth.py: torchvision's keys and shapes at
// width 0.1, a 10-class classifier), with PyTorch's own sums to compare against.

import * as E from "fp-ts/lib/Either.js";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { buildAdaptationStep } from "../../adapt/step";
import { importWeights, renderSummary } from "../../checkpoint/import-weights";
import { fixture } from "../../checkpoint/test-fixtures";
import { compileProgram } from "../../codegen/compile";
import * as d from "../../dsl/index";
import { fitWeights, readWeights } from "../../train/checkpoint";
import { renderTrainError } from "../../train/errors";
import { persistentSlots } from "../../train/slots";
import { scratch } from "../../train/test-programs";
import { mobilenetNetwork } from "./networks";
import { mobilenetSettings } from "./programs";

const PTH = fixture("mobilenet_v2_w0.1_synthetic.pth");
const expected = JSON.parse(readFileSync(fixture("mobilenet_v2_w0.1_synthetic.json"), "utf8")) as {
  widthMult: number;
  tensors: Record<string, { shape: number[]; sum: number }>;
};
const NET = { widthMult: expected.widthMult, headChannels: 16, outputStride: 16 } as const;
const spec = mobilenetNetwork({ ...NET, numClasses: 19 }).spec;
const backboneKeys = d.declareModel("G", spec).entries.filter((e) => e.key.startsWith("features."));

const sum = (data: ArrayLike<number>) => Array.from(data).reduce((a, b) => a + b, 0);

describe("npm run import-weights on torchvision's mobilenet_v2", () => {
  it("picks the mobilenet rule, keeps features.0..17 exactly, skips features.18 and the classifier", async () => {
    const out = join(scratch("mnv2-import-"), "mnv2.safetensors");
    const r = await importWeights({ input: PTH, rule: "auto", out, expectShapes: undefined })();
    if (E.isLeft(r)) throw new Error(JSON.stringify(r.left));
    expect(r.right.imported.rule).toBe("mobilenet");
    const written = r.right.written;
    expect([...written.keys()]).toEqual(backboneKeys.map((e) => e.key));
    for (const e of backboneKeys) {
      const t = written.get(e.key)!;
      expect(t.shape, e.key).toEqual(e.spec.shape);
      expect(sum(t.data as Float32Array)).toBeCloseTo(expected.tensors[e.key]!.sum, 3);
    }
    const skipped = r.right.imported.skipped.map((s) => s.key);
    expect(skipped).toContain("features.18.0.weight");
    expect(skipped).toContain("classifier.1.weight");
    // One counter per BN: the stem, 2 in features.1, 3 in each of features.2..17, 1 in features.18.
    expect(skipped.filter((k) => k.endsWith("num_batches_tracked")).length).toBe(1 + 2 + 16 * 3 + 1);
    expect(skipped.length + written.size).toBe(Object.keys(expected.tensors).length);
    const summary = renderSummary(r.right);
    expect(summary).toContain("rule        mobilenet");
    expect(summary).toContain("ImageNet's classifier; the segmentation heads start from their initialisation");
  });

  it("a key that is not torchvision's is refused, naming it", async () => {
    const { mobilenetKey } = await import("../../checkpoint/import-rules");
    expect(mobilenetKey("layer1.0.conv1.weight").kind).toBe("error");
    expect(mobilenetKey("features.17.conv.3.running_var")).toEqual({ kind: "keep", key: "features.17.conv.3.running_var" });
  });
});

describe("the trainer starts DeepLab-MobileNetV2 from the ImageNet backbone", () => {
  const module = compileProgram(buildAdaptationStep("mnv2-w01", mobilenetNetwork({ ...NET, numClasses: 19 }), mobilenetSettings("multi-level", NET))).module;
  const slots = persistentSlots(module);

  for (const source of ["the .pth", "the imported safetensors"] as const) {
    it(`from ${source}: the heads start fresh and are listed; evaluation refuses it`, async () => {
      let path = PTH;
      if (source === "the imported safetensors") {
        path = join(scratch("mnv2-import-"), "mnv2.safetensors");
        const r = await importWeights({ input: PTH, rule: "auto", out: path, expectShapes: undefined })();
        expect(E.isRight(r)).toBe(true);
      }
      const read = await readWeights(path)();
      if (E.isLeft(read)) throw new Error(renderTrainError(read.left));
      const fit = fitWeights(path, read.right, slots, "train");
      if (E.isLeft(fit)) throw new Error(renderTrainError(fit.left));
      expect(fit.right.groups["G"]!.size).toBe(backboneKeys.length);
      const notes = fit.right.notes.join("\n");
      expect(notes).toContain("classifier.0.weight");
      expect(notes).toContain("9 keys");
      expect(notes).toContain("the segmentation heads start from their initialisation");
      expect(notes).toContain("D1, D2");
      const evaluation = fitWeights(path, read.right, slots, "eval");
      expect(E.isLeft(evaluation) && renderTrainError(evaluation.left)).toContain("tensor classifier.0.weight is missing");
    }, 60_000);
  }
});
