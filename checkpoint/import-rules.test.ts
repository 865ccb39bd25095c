import { copyFileSync } from "node:fs";
import { join } from "node:path";
import * as E from "fp-ts/lib/Either.js";
import { describe, expect, it } from "vitest";
import { renderCheckpointError } from "./errors";
import {
  adventToOfficialDiscriminatorKey,
  applyImportRule,
  checkShaPrefix,
  chooseRule,
  expectedShaPrefix,
  initKey,
  officialToAdventDiscriminatorKey,
  selectModelKeys,
  stripDataParallelPrefix,
  type ImportResult,
  type ImportRule,
} from "./import-rules";
import { fixture, fixtureBytes, manifest, scratchDir, values } from "./test-fixtures";
import type { StateDict, Tensor } from "./tensor";
import { decodeTorchCheckpoint } from "./torch-load";

function tensorsOf(file: string): StateDict {
  const r = decodeTorchCheckpoint(file, fixtureBytes(file));
  if (E.isLeft(r)) throw new Error(renderCheckpointError(r.left));
  return r.right.tensors;
}

function apply(dict: StateDict, rule: ImportRule): ImportResult {
  const r = applyImportRule("x.pth", dict, rule);
  if (E.isLeft(r)) throw new Error(renderCheckpointError(r.left));
  return r.right;
}

const scalar: Tensor = { dtype: "F32", shape: [1], data: new Float32Array([1]) };
const dictOf = (...keys: string[]): StateDict => new Map(keys.map((k) => [k, scalar]));

describe("init rule (DeepLab_resnet_pretrained_init)", () => {
  it("strips the wrapper module, skips layer5 and drops num_batches_tracked, keeping the values", () => {
    const init = tensorsOf(manifest.init.file);
    const r = apply(init, "init");
    expect([...r.tensors.keys()]).toEqual([
      "conv1.weight",
      "bn1.weight",
      "bn1.bias",
      "bn1.running_mean",
      "bn1.running_var",
      "layer1.0.conv1.weight",
      "layer3.22.bn3.running_var",
    ]);
    expect(values(r.tensors.get("layer3.22.bn3.running_var")!)).toEqual(manifest.init.tensors["Scale.layer3.22.bn3.running_var"]!.values);
    expect(r.skipped.map((s) => s.key)).toEqual([
      "Scale.bn1.num_batches_tracked",
      "Scale.layer5.conv2d_list.0.weight",
      "Scale.layer5.conv2d_list.0.bias",
      "Scale.layer5.conv2d_list.1.weight",
      "Scale.layer5.conv2d_list.1.bias",
    ]);
  });

  it("maps single keys as the spec's examples say", () => {
    expect(initKey("Scale.layer3.22.bn3.running_var")).toEqual({ kind: "keep", key: "layer3.22.bn3.running_var" });
    expect(initKey("Scale.layer5.conv2d_list.3.weight").kind).toBe("skip");
    expect(initKey("Scale.layer50.weight")).toEqual({ kind: "keep", key: "layer50.weight" });
    expect(initKey("conv1").kind).toBe("error");
  });

  it("is what auto chooses for keys under one wrapper module", () => {
    expect(apply(tensorsOf(manifest.init.file), "auto").rule).toBe("init");
  });

  it("refuses a key without a module prefix, naming it", () => {
    const r = applyImportRule("init.pth", dictOf("Scale.conv1.weight", "bare"), "init");
    expect(E.isLeft(r) && r.left.tensor).toBe("bare");
  });
});

describe("model rule and DataParallel prefixes", () => {
  it("keeps keys as they are, less the BN step counters", () => {
    const r = apply(tensorsOf("flat_zip.pth"), "model");
    const counter = (k: string) => k.endsWith("num_batches_tracked");
    expect([...r.tensors.keys()]).toEqual(Object.keys(manifest.flat).filter((k) => !counter(k)));
    expect(r.skipped.map((s) => s.key)).toEqual(Object.keys(manifest.flat).filter(counter));
  });

  it("strips module. when every key has it", () => {
    const r = apply(tensorsOf("nested_state_dict.pth"), "auto");
    expect(r.strippedModulePrefix).toBe(true);
    expect(r.rule).toBe("model");
    expect([...r.tensors.keys()]).toEqual(
      Object.keys(manifest.nested)
        .map((k) => k.slice("module.".length))
        .filter((k) => !k.endsWith("num_batches_tracked")),
    );
  });

  it("leaves module. alone when only some keys have it", () => {
    const { stripped, dict } = stripDataParallelPrefix(dictOf("module.a", "b"));
    expect(stripped).toBe(false);
    expect([...dict.keys()]).toEqual(["module.a", "b"]);
  });

  it("auto picks model for DeeplabMulti keys", () => {
    expect(chooseRule(dictOf("conv1.weight", "layer1.0.conv1.weight")).rule).toBe("model");
    expect(chooseRule(dictOf("layer6.conv2d_list.0.weight")).rule).toBe("model");
  });

  it("evaluation loading takes the keys the model has and reports the rest", () => {
    const model = new Map([["conv1.weight", { shape: [1] }], ["layer6.bias", { shape: [1] }]]);
    const r = selectModelKeys(dictOf("conv1.weight", "stray.weight"), model);
    expect([...r.loaded.keys()]).toEqual(["conv1.weight"]);
    expect(r.notInModel).toEqual(["stray.weight"]);
    expect(r.missing).toEqual(["layer6.bias"]);
  });
});

describe("discriminator key maps", () => {
  it("maps ADVENT's Sequential indices to the official names and back", () => {
    const pairs = [
      ["0.weight", "conv1.weight"],
      ["2.bias", "conv2.bias"],
      ["4.weight", "conv3.weight"],
      ["6.bias", "conv4.bias"],
      ["8.weight", "classifier.weight"],
    ];
    for (const [advent, official] of pairs) {
      expect(adventToOfficialDiscriminatorKey(advent!)).toBe(official);
      expect(officialToAdventDiscriminatorKey(official!)).toBe(advent);
    }
    expect(adventToOfficialDiscriminatorKey("1.weight")).toBeUndefined();
    expect(adventToOfficialDiscriminatorKey("0.weight.x")).toBeUndefined();
    expect(adventToOfficialDiscriminatorKey("constructor.weight")).toBeUndefined();
  });

  it("imports an ADVENT discriminator under the official names (auto-detected)", () => {
    const r = apply(tensorsOf("advent_d.pth"), "auto");
    expect(r.rule).toBe("advent-d");
    expect([...r.tensors.keys()]).toEqual([
      "conv1.weight", "conv1.bias", "conv2.weight", "conv2.bias", "conv3.weight",
      "conv3.bias", "conv4.weight", "conv4.bias", "classifier.weight", "classifier.bias",
    ]);
    expect(values(r.tensors.get("classifier.bias")!)).toEqual(manifest.advent_d["8.bias"]!.values);
  });

  it("refuses a non-discriminator key under advent-d, naming it", () => {
    const r = applyImportRule("d.pth", dictOf("0.weight", "9.weight"), "advent-d");
    expect(E.isLeft(r) && r.left.tensor).toBe("9.weight");
  });
});

describe("SHA-256 prefix in the file name", () => {
  it("reads the prefix from official names and nothing from others", () => {
    expect(expectedShaPrefix("/w/DeepLab_resnet_pretrained_init-f81d91e8.pth")).toBe("f81d91e8");
    expect(expectedShaPrefix("GTA2Cityscapes_multi-ed35151c.pth")).toBe("ed35151c");
    expect(expectedShaPrefix("cityscapes_oracle-b7b9934.pth")).toBe("b7b9934");
    expect(expectedShaPrefix("resnet101-caffe.pth")).toBeUndefined();
    expect(expectedShaPrefix("vgg16-00b39a1b-updated.pth")).toBeUndefined();
    expect(expectedShaPrefix("DeepLab_resnet_pretrained_imagenet.pth")).toBeUndefined();
  });

  it("verifies a file whose hash starts with its suffix", () => {
    const r = checkShaPrefix(fixture(manifest.init.file), fixtureBytes(manifest.init.file));
    expect(E.isRight(r) && r.right).toEqual({ kind: "verified", prefix: manifest.init.file.slice(12, 20), sha256: manifest.init.sha256 });
  });

  it("refuses a file whose hash does not, naming the file, the expected prefix and the actual hash", () => {
    const renamed = join(scratchDir(), "DeepLab_resnet_pretrained_init-f81d91e8.pth");
    copyFileSync(fixture(manifest.init.file), renamed);
    const r = checkShaPrefix(renamed, fixtureBytes(manifest.init.file));
    expect(E.isLeft(r)).toBe(true);
    if (E.isRight(r)) return;
    expect(r.left.kind).toBe("hash");
    const msg = renderCheckpointError(r.left);
    expect(msg).toContain(renamed);
    expect(msg).toContain("f81d91e8");
    expect(msg).toContain(manifest.init.sha256);
  });

  it("reports the hash of a file without a suffix and passes it", () => {
    const r = checkShaPrefix("flat_zip.pth", fixtureBytes("flat_zip.pth"));
    expect(E.isRight(r) && r.right.kind).toBe("no-prefix");
  });
});
