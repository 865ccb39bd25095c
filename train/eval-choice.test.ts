// The evaluation program is chosen by the weights' exact signature (issue 12): a checkpoint of one
// architecture is never scored by another's program, and every shipped training program, with
// --eval-every, finds the one evaluation program of exactly its network.

import * as E from "fp-ts/lib/Either.js";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { writeSafetensors } from "../checkpoint/safetensors";
import { makeTensor } from "../checkpoint/tensor";
import { parseEvalOptions, runEvalCli } from "../cli/eval";
import { scratch } from "./test-programs";
import { loadPrograms } from "../cli/train";
import { renderTrainError } from "./errors";
import { parseTrainOptions } from "../cli/options";
import { chooseEvalProgram, evalPrograms, listPrograms, loadModule, presetOf } from "./programs";
import { expectedTable, persistentSlots } from "./slots";

const PRESETS = ["gta5-cityscapes", "synthia-cityscapes", "cityscapes-crosscity", "cpu-demo"] as const;

async function gTable(name: string) {
  return (await gOf(name)).table;
}

async function gOf(name: string) {
  const m = await loadModule(name)();
  if (E.isLeft(m)) throw new Error(renderTrainError(m.left));
  return { table: expectedTable(persistentSlots(m.right), "G"), config: m.right.config };
}

describe("evaluation programs are chosen by exact signature", () => {
  for (const preset of PRESETS) {
    it(`${preset}: each network's weights pick its own program and are refused by every other, naming a tensor`, async () => {
      const names = evalPrograms(preset);
      expect(names.length).toBeGreaterThan(0);
      for (const own of names) {
        // As a trainer checkpoint of that network: its tensors and the config it was trained with.
        const { table: weights, config } = await gOf(own);
        const picked = await chooseEvalProgram(own, weights, names, preset, config);
        expect(E.isRight(picked) && picked.right.name).toBe(own);
        for (const other of names.filter((n) => n !== own)) {
          const r = await chooseEvalProgram(`${own}.safetensors`, weights, [other], preset, config);
          const m = E.isLeft(r) ? renderTrainError(r.left) : `chose ${other}`;
          expect(m).toMatch(new RegExp(`${own}\\.safetensors is not exactly the network of any evaluation program: ${other}: (tensor \\S+ |its network)`));
        }
      }
    }, 120_000);
  }

  it("the four GTA5 networks are four programs: two- and four-branch DeeplabMulti, Res_Deeplab, DeeplabVGG", () => {
    expect(evalPrograms("gta5-cityscapes")).toEqual([
      "eval-advent-gta5-cityscapes",
      "eval-multi-level-gta5-cityscapes",
      "eval-oracle-gta5-cityscapes",
      "eval-vgg-single-level-gta5-cityscapes",
    ]);
  });

  it("ADVENT's four-branch head has the two-branch head's tensors: its config tells them apart, and without one the choice is refused", async () => {
    const advent = await gOf("eval-advent-gta5-cityscapes");
    const both = ["eval-advent-gta5-cityscapes", "eval-multi-level-gta5-cityscapes"];
    const wrong = await chooseEvalProgram("advent.safetensors", advent.table, ["eval-multi-level-gta5-cityscapes"], "gta5-cityscapes", advent.config);
    expect(E.isLeft(wrong) && renderTrainError(wrong.left)).toMatch(/eval-multi-level-gta5-cityscapes: its network .*"asppBranches":2.* is not the weights' .*"asppBranches":4/);
    const right = await chooseEvalProgram("advent.safetensors", advent.table, both, "gta5-cityscapes", advent.config);
    expect(E.isRight(right) && right.right.name).toBe("eval-advent-gta5-cityscapes");
    // A plain state dict (.pth, import-weights output) says nothing about the head: ask.
    const plain = await chooseEvalProgram("GTA2Cityscapes.pth", advent.table, both, "gta5-cityscapes");
    expect(E.isLeft(plain) && renderTrainError(plain.left)).toContain("has the tensors of several evaluation programs that compute differently");
  });

  it("the oracle is Res_Deeplab: one head, layer5, on layer4's 2048 channels (the official oracle's keys)", async () => {
    const oracle = await gTable("eval-oracle-gta5-cityscapes");
    expect(oracle.get("layer5.conv2d_list.0.weight")?.shape).toEqual([19, 2048, 3, 3]);
    expect([...oracle.keys()].some((k) => k.startsWith("layer6."))).toBe(false);
  });
});

describe("--eval-every finds the evaluation program of every shipped training program", () => {
  const trainPrograms = listPrograms().filter((p) => !p.startsWith("eval-") && !p.startsWith("parity-"));
  for (const name of trainPrograms) {
    it(name, async () => {
      const preset = presetOf(name)!;
      const variant = name.slice(0, name.length - preset.length - 1);
      const o = parseTrainOptions(["--program", variant, "--preset", preset, "--eval-every", "100"]);
      if (E.isLeft(o)) throw new Error(renderTrainError(o.left));
      const r = await loadPrograms(o.right);
      if (E.isLeft(r)) throw new Error(renderTrainError(r.left));
      expect(r.right.evalModule?.name).toMatch(new RegExp(`^eval-.*-${preset}$`));
      expect(r.right.notes.join("\n")).toContain(`evaluating with ${r.right.evalModule!.name}`);
    }, 60_000);
  }
});

describe("npm run eval refuses weights that are not exactly a program's network (issue 18.1)", () => {
  const evalOf = async (file: string, extra: string[] = []) => {
    const o = parseEvalOptions(["--restore-from", file, "--preset", "cpu-demo", "--data-dir", "/nonexistent", ...extra]);
    if (E.isLeft(o)) throw new Error(renderTrainError(o.left));
    const r = await runEvalCli(o.right);
    return E.isLeft(r) ? renderTrainError(r.left) : "scored";
  };

  it("an empty state dict", async () => {
    const path = join(scratch("eval-cli-"), "empty.safetensors");
    await writeSafetensors(path, { tensors: new Map(), metadata: {} })();
    expect(await evalOf(path)).toContain(`${path} holds no segmentation network (G) tensors`);
  });

  it("a state dict with one tensor of the network", async () => {
    const path = join(scratch("eval-cli-"), "one.safetensors");
    const table = await gTable("eval-multi-level-cpu-demo");
    const [key, t] = [...table][0]!;
    await writeSafetensors(path, { tensors: new Map([[key, makeTensor("F32", t.shape, new Float32Array(t.shape.reduce((n, x) => n * x, 1)))]]), metadata: {} })();
    expect(await evalOf(path)).toMatch(/one\.safetensors is not exactly the network of any evaluation program: .*eval-multi-level-cpu-demo: tensor \S+ is missing/);
  });

  it("a whole network whose program is named but is another architecture's", async () => {
    const path = join(scratch("eval-cli-"), "oracle.safetensors");
    const table = await gTable("eval-oracle-cpu-demo");
    const dict = new Map([...table].map(([k, t]) => [k, makeTensor("F32", t.shape, new Float32Array(t.shape.reduce((n, x) => n * x, 1)).fill(0.01))]));
    await writeSafetensors(path, { tensors: dict, metadata: {} })();
    expect(await evalOf(path, ["--program", "eval-multi-level-cpu-demo"])).toMatch(/eval-multi-level-cpu-demo: tensor layer5\.conv2d_list\.0\.weight has shape \[19,256,3,3\], the program's is \[19,128,3,3\]/);
    // Unnamed, the weights find their own program, and only then the (missing) data is refused.
    expect(await evalOf(path)).toContain("/nonexistent");
  });
});

describe("npm run eval's numeric options", () => {
  it("take decimal integers only, naming the option", () => {
    for (const bad of ["0x2", "", "Infinity", "1.5", "-3"]) {
      const o = parseEvalOptions(["--restore-from", "x.safetensors", "--num-images", bad]);
      expect(E.isLeft(o) && renderTrainError(o.left)).toContain("--num-images");
    }
    const ok = parseEvalOptions(["--restore-from", "x.safetensors", "--num-images", "12"]);
    expect(E.isRight(ok) && ok.right.numImages).toBe(12);
  });
});
