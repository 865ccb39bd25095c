// Restoring weights into a program: every kind of file the trainer accepts is checked against the
// program's slots, and a tensor of the wrong shape is named in the error.

import * as E from "fp-ts/lib/Either.js";
import { copyFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { writeSafetensors } from "../checkpoint/safetensors";
import { makeTensor, type Tensor } from "../checkpoint/tensor";
import { fixture, manifest } from "../checkpoint/test-fixtures";
import { checkGroups, restoreWeights, ruleForPth, saveCheckpoint } from "./checkpoint";
import { renderTrainError, type TrainError } from "./errors";
import { persistentSlots } from "./slots";
import { compiled, scratch, SILENT, testDevice, tinyData, TINY, tinyTrainProgram } from "./test-programs";
import { train } from "./trainer";

const program = compiled(tinyTrainProgram("tiny-train"));
const wider = compiled(tinyTrainProgram("tiny-train", { ...TINY, hidden: 5 }));
const slots = persistentSlots(program);

const f32 = (shape: number[]): Tensor => makeTensor("F32", shape, new Float32Array(shape.reduce((n, d) => n * d, 1)).fill(0.5));
const message = (r: E.Either<TrainError, unknown>) => (E.isLeft(r) ? renderTrainError(r.left) : "no error");

/** Every tensor of `module`'s G at its own shapes: a state dict that fits it. */
function gStateDict(module: typeof program): Map<string, Tensor> {
  return new Map(persistentSlots(module).filter((s) => s.model === "G").map((s) => [s.key, f32([...s.slot.shape])]));
}

describe("restoring weights checks shapes and names the tensor", () => {
  it("a plain safetensors state dict with one wrong shape", async () => {
    const path = join(scratch(), "G.safetensors");
    const dict = gStateDict(program);
    dict.set("layer6.weight", f32([19, 4, 3, 3]));
    await writeSafetensors(path, { tensors: dict, metadata: {} })();
    const m = message(await restoreWeights(path, slots)());
    expect(m).toContain("G: tensor layer6.weight has shape [19,4,3,3], expected [19,4,1,1]");
    expect(m).toContain(path);
  });

  it("a trainer checkpoint of a program with another width: every G and D tensor that differs", async () => {
    const path = join(scratch(), "wide.safetensors");
    const groups: Record<string, Map<string, Tensor>> = {};
    for (const s of persistentSlots(wider)) (groups[s.model] ??= new Map()).set(s.key, f32([...s.slot.shape]));
    await saveCheckpoint(path, { program: wider.name, config: wider.config, iteration: 3, sampler: { seed: 1, sourcePosition: 3, targetPosition: 3 }, groups })();
    const m = message(await restoreWeights(path, slots)());
    for (const key of ["conv1.weight", "bn1.weight", "bn1.running_var", "layer6.weight"]) expect(m).toContain(`tensor ${key} has shape`);
    expect(m).toContain("tensor conv1.weight has shape [5,3,3,3], expected [4,3,3,3]");
    // D2 does not depend on the width, and optimizer state is not part of a weight restore.
    expect(m).not.toContain("D2:");
    expect(m).not.toContain("sgd_G");
  });

  it("--resume is strict: a missing optimizer tensor is an error too", () => {
    const groups: Record<string, Map<string, Tensor>> = {};
    for (const s of slots) (groups[s.model] ??= new Map()).set(s.key, f32([...s.slot.shape]));
    groups["sgd_G"]!.delete("G.conv1.weight");
    groups["G"]!.set("bn1.running_mean", f32([7]));
    const m = message(checkGroups("snap.safetensors", slots, groups, true));
    expect(m).toContain("sgd_G: missing 1 key: G.conv1.weight");
    expect(m).toContain("G: tensor bn1.running_mean has shape [7], expected [4]");
  });

  it("a PyTorch init .pth goes through the init rule; with another width, its tensors are named", async () => {
    // The fixture is a miniature DeepLab init file: Scale.conv1.weight [4,3,3,3], Scale.bn1.* [4], ...
    const dir = scratch();
    const path = join(dir, "DeepLab_resnet_pretrained_init-eb9d2f1d.pth");
    copyFileSync(fixture(manifest.init.file), path);
    expect(ruleForPth(path)).toBe("init");
    const ok = await restoreWeights(path, slots)();
    if (E.isLeft(ok)) throw new Error(renderTrainError(ok.left));
    expect([...ok.right.groups["G"]!.keys()]).toContain("conv1.weight");
    expect(ok.right.notes.join("\n")).toMatch(/rule init/);
    expect(ok.right.notes.join("\n")).toMatch(/ignored: .*layer1\.0\.conv1\.weight/);

    const bad = message(await restoreWeights(path, persistentSlots(wider))());
    expect(bad).toContain("tensor conv1.weight has shape [4,3,3,3], expected [5,3,3,3]");
    expect(bad).toContain("tensor bn1.running_mean has shape [4], expected [5]");
  });

  it("a file none of whose keys the program has is refused, not silently ignored", async () => {
    const path = join(scratch(), "other.safetensors");
    await writeSafetensors(path, { tensors: new Map([["fc.weight", f32([3, 3])]]), metadata: {} })();
    expect(message(await restoreWeights(path, slots)())).toMatch(/none of its 1 G tensors is a key of the program/);
  });

  it("a missing file or an unknown format is named", async () => {
    expect(message(await restoreWeights("/nonexistent/x.pth", slots)())).toContain("/nonexistent/x.pth");
    const path = join(scratch(), "weights.bin");
    copyFileSync(fixture(manifest.init.file), path);
    expect(message(await restoreWeights(path, slots)())).toContain("takes a .pth (PyTorch) or .safetensors file");
  });

  it("the trainer refuses --restore-from with a wrong shape before training, naming the tensor", async () => {
    const device = await testDevice();
    const data = await tinyData();
    const path = join(scratch(), "G.safetensors");
    const dict = gStateDict(program);
    dict.set("conv1.weight", f32([4, 3, 5, 5]));
    await writeSafetensors(path, { tensors: dict, metadata: {} })();
    const dir = scratch();
    const r = await train(
      { module: program, data, seed: 1, numStepsStop: 2, savePredEvery: 0, snapshotDir: dir, snapshotPrefix: "t", restoreFrom: path, logEvery: 1, evalEvery: 0, workers: 0, progress: SILENT },
      device,
    );
    expect(message(r)).toContain("tensor conv1.weight has shape [4,3,5,5], expected [4,3,3,3]");
  });

  it("a missing data root is refused before any training, naming the path", async () => {
    const device = await testDevice();
    const data = await tinyData();
    const r = await train(
      {
        module: program,
        data: { ...data, target: { ...data.target, spec: { kind: "cityscapes", root: "/nonexistent/cityscapes", split: "train", withLabels: false } } },
        seed: 1,
        numStepsStop: 2,
        savePredEvery: 0,
        snapshotDir: scratch(),
        snapshotPrefix: "t",
        logEvery: 1,
        evalEvery: 0,
        workers: 0,
        progress: SILENT,
      },
      device,
    );
    expect(message(r)).toContain("the target data root /nonexistent/cityscapes does not exist (set it with --data-dir-target");
    const empty = scratch();
    const r2 = await train(
      { module: program, data: { ...data, source: { ...data.source, spec: { kind: "gta5", root: empty } } }, seed: 1, numStepsStop: 2, savePredEvery: 0, snapshotDir: scratch(), snapshotPrefix: "t", logEvery: 1, evalEvery: 0, workers: 0, progress: SILENT },
      device,
    );
    expect(message(r2)).toContain(`the source data root ${empty} holds no usable gta5 images`);
  });
});
