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
import { persistentSlots, type PersistentSlot } from "./slots";
import { compiled, scratch, SILENT, testDevice, tinyData, TINY, tinyTrainProgram } from "./test-programs";
import { train } from "./trainer";

const program = compiled(tinyTrainProgram("tiny-train"));
const wider = compiled(tinyTrainProgram("tiny-train", { ...TINY, hidden: 5 }));
const slots = persistentSlots(program);

const f32 = (shape: number[]): Tensor => makeTensor("F32", shape, new Float32Array(shape.reduce((n, d) => n * d, 1)).fill(0.5));
const message = (r: E.Either<TrainError, unknown>) => (E.isLeft(r) ? renderTrainError(r.left) : "no error");

/** Slots shaped like the miniature init fixture's keys, plus two multi-level heads, with `shapes` overriding. */
function initLikeSlots(shapes: Record<string, number[]>): PersistentSlot[] {
  const table: Record<string, number[]> = {
    "conv1.weight": [4, 3, 3, 3],
    "bn1.weight": [4],
    "bn1.bias": [4],
    "bn1.running_mean": [4],
    "bn1.running_var": [4],
    "layer1.0.conv1.weight": [8, 4, 1, 1],
    "layer3.22.bn3.running_var": [8],
    ...shapes,
    "layer5.conv2d_list.0.weight": [19, 8, 3, 3],
    "layer5.conv2d_list.0.bias": [19],
    "layer6.conv2d_list.0.weight": [19, 8, 3, 3],
    "layer6.conv2d_list.0.bias": [19],
  };
  return Object.entries(table).map(([key, shape]) => ({
    model: "G",
    key,
    slot: { name: `G/${key}`, role: "param", shape, dtype: "f32", arena: 0, offset: 0, bytes: 4 * shape.reduce((n, x) => n * x, 1) },
  }));
}

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
    const m = message(await restoreWeights(path, slots, "train")());
    expect(m).toContain("does not fit the program's G: tensor layer6.weight has shape [19,4,3,3], the program's is [19,4,1,1]");
    expect(m).toContain(path);
  });

  it("a trainer checkpoint of a program with another width: every G and D tensor that differs", async () => {
    const path = join(scratch(), "wide.safetensors");
    const groups: Record<string, Map<string, Tensor>> = {};
    for (const s of persistentSlots(wider)) (groups[s.model] ??= new Map()).set(s.key, f32([...s.slot.shape]));
    await saveCheckpoint(path, { program: wider.name, config: wider.config, iteration: 3, sampler: { seed: 1, sourcePosition: 3, targetPosition: 3 }, groups })();
    const m = message(await restoreWeights(path, slots, "train")());
    for (const key of ["conv1.weight", "bn1.weight", "bn1.running_var", "layer6.weight"]) expect(m).toContain(`tensor ${key} has shape`);
    expect(m).toContain("tensor conv1.weight has shape [5,3,3,3], the program's is [4,3,3,3]");
    // D2 does not depend on the width, and optimizer state is not part of a weight restore.
    expect(m).not.toContain("D2:");
    expect(m).not.toContain("sgd_G");
  });

  it("--resume is strict: a missing optimizer tensor is an error too", () => {
    const groups: Record<string, Map<string, Tensor>> = {};
    for (const s of slots) (groups[s.model] ??= new Map()).set(s.key, f32([...s.slot.shape]));
    groups["sgd_G"]!.delete("G.conv1.weight");
    groups["G"]!.set("bn1.running_mean", f32([7]));
    const m = message(checkGroups("snap.safetensors", slots, groups));
    expect(m).toContain("sgd_G: missing 1 key: G.conv1.weight");
    expect(m).toContain("G: tensor bn1.running_mean has shape [7], expected [4]");
  });

  it("a PyTorch init .pth goes through the init rule; its missing heads are allowed for training only, and logged", async () => {
    // The fixture is a miniature DeepLab init file: Scale.conv1.weight [4,3,3,3], Scale.bn1.* [4],
    // Scale.layer1.0.conv1.weight [8,4,1,1], Scale.layer3.22.bn3.running_var [8], Scale.layer5.* (skipped).
    const dir = scratch();
    const path = join(dir, "DeepLab_resnet_pretrained_init-eb9d2f1d.pth");
    copyFileSync(fixture(manifest.init.file), path);
    expect(ruleForPth(path)).toBe("init");
    const fits = initLikeSlots({ "conv1.weight": [4, 3, 3, 3] });
    const ok = await restoreWeights(path, fits, "train")();
    if (E.isLeft(ok)) throw new Error(renderTrainError(ok.left));
    expect([...ok.right.groups["G"]!.keys()]).toContain("layer1.0.conv1.weight");
    const notes = ok.right.notes.join("\n");
    expect(notes).toMatch(/rule init/);
    expect(notes).toMatch(/G: not in the file, the DeepLab init file carries no head.*layer5\.conv2d_list\.0\.weight/);
    // An init file is not a trained network: evaluation refuses it, naming the first head tensor.
    expect(message(await restoreWeights(path, fits, "eval")())).toContain("tensor layer5.conv2d_list.0.weight is missing");
    // Another width: the wrong tensor is named, first the shapes.
    const bad = message(await restoreWeights(path, initLikeSlots({ "conv1.weight": [5, 3, 3, 3] }), "train")());
    expect(bad).toContain("tensor conv1.weight has shape [4,3,3,3], the program's is [5,3,3,3]");
    // A backbone tensor the file lacks is not exempt.
    const more = message(await restoreWeights(path, initLikeSlots({ "conv1.weight": [4, 3, 3, 3], "layer4.0.conv1.weight": [8, 8, 1, 1] }), "train")());
    expect(more).toContain("tensor layer4.0.conv1.weight is missing");
  });

  it("a file none of whose keys the program has is refused, naming its first tensor", async () => {
    const path = join(scratch(), "other.safetensors");
    await writeSafetensors(path, { tensors: new Map([["fc.weight", f32([3, 3])]]), metadata: {} })();
    const m = message(await restoreWeights(path, slots, "eval")());
    expect(m).toMatch(/tensor conv1\.weight is missing \(and \d+ more/);
    expect(m).toContain("tensor fc.weight is not in the program");
  });

  it("an empty state dict is refused for evaluation and for training (issue 18.1)", async () => {
    const path = join(scratch(), "empty.safetensors");
    await writeSafetensors(path, { tensors: new Map(), metadata: {} })();
    for (const purpose of ["eval", "train"] as const) {
      expect(message(await restoreWeights(path, slots, purpose)())).toContain(`${path} holds no segmentation network (G) tensors`);
    }
  });

  it("a trainer checkpoint holding 1 of the G tensors is refused, naming the first missing one", async () => {
    const path = join(scratch(), "partial.safetensors");
    const g = gStateDict(program);
    const only = new Map([["layer6.bias", g.get("layer6.bias")!]]);
    await saveCheckpoint(path, { program: program.name, config: program.config, iteration: 3, sampler: { seed: 1, sourcePosition: 3, targetPosition: 3 }, groups: { G: only } })();
    for (const purpose of ["eval", "train"] as const) {
      const m = message(await restoreWeights(path, slots, purpose)());
      expect(m).toContain(`tensor conv1.weight is missing (and ${g.size - 2} more of the program's tensors)`);
    }
  });

  it("a non-finite weight is refused, naming the tensor and the element (issue 18.4)", async () => {
    for (const bad of [Number.NaN, Number.POSITIVE_INFINITY]) {
      const path = join(scratch(), "nan.safetensors");
      const dict = gStateDict(program);
      const w = f32([4, 3, 3, 3]);
      (w.data as Float32Array)[5] = bad;
      dict.set("conv1.weight", w);
      await writeSafetensors(path, { tensors: dict, metadata: {} })();
      expect(message(await restoreWeights(path, slots, "eval")())).toContain(`tensor conv1.weight of G holds ${bad} at element 5 of [4,3,3,3]`);
    }
  });

  it("training: a discriminator group the file holds must fit too; one it lacks starts fresh, said in the notes", async () => {
    const path = join(scratch(), "gd.safetensors");
    const groups: Record<string, Map<string, Tensor>> = { G: gStateDict(program), D2: new Map([["conv1.weight", f32([2, 19, 4, 4])]]) };
    await saveCheckpoint(path, { program: program.name, config: program.config, iteration: 3, sampler: { seed: 1, sourcePosition: 3, targetPosition: 3 }, groups })();
    expect(message(await restoreWeights(path, slots, "train")())).toContain("does not fit the program's D2: tensor conv1.bias is missing");
    // Evaluation reads G alone.
    expect(E.isRight(await restoreWeights(path, slots, "eval")())).toBe(true);
    const gOnly = join(scratch(), "g.safetensors");
    await writeSafetensors(gOnly, { tensors: gStateDict(program), metadata: {} })();
    const r = await restoreWeights(gOnly, slots, "train")();
    if (E.isLeft(r)) throw new Error(renderTrainError(r.left));
    expect(r.right.notes.join("\n")).toContain("not in the file, starting from their initialisation: D2");
  });

  it("a missing file or an unknown format is named", async () => {
    expect(message(await restoreWeights("/nonexistent/x.pth", slots, "train")())).toContain("/nonexistent/x.pth");
    const path = join(scratch(), "weights.bin");
    copyFileSync(fixture(manifest.init.file), path);
    expect(message(await restoreWeights(path, slots, "train")())).toContain("takes a .pth (PyTorch) or .safetensors file");
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
    expect(message(r)).toContain("tensor conv1.weight has shape [4,3,5,5], the program's is [4,3,3,3]");
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
