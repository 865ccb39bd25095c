// Options that change the graph (sizes, classes, the GAN objective) are compiled into programs: a
// command-line value selects a program whose config has it, or the run is refused with what to
// do. Hyperparameters (learning rates, loss weights) are run-time values and choose nothing.

import * as E from "fp-ts/lib/Either.js";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { renderTrainError } from "./errors";
import { parseTrainOptions } from "../cli/options";
import { evalPrograms, listPrograms, peekConfig, presetOf, selectProgram } from "./programs";
import { scratch } from "./test-programs";

function fakeGenerated(programs: Record<string, Record<string, unknown>>): string {
  const dir = scratch("generated-");
  for (const [name, config] of Object.entries(programs)) {
    mkdirSync(join(dir, name));
    writeFileSync(join(dir, name, "module.ts"), `export const module = {\n    name: ${JSON.stringify(name)},\n    config: ${JSON.stringify(config)},\n    tensors: [],\n};\n`);
  }
  return dir;
}

const base = { variant: "multi-level", learningRate: 0.0025, lambdaAdvTarget2: 0.001, gan: "Vanilla", sourceSize: [64, 128] };

describe("selecting a generated program", () => {
  const dir = fakeGenerated({
    "multi-level-cpu-demo": base,
    // Other defaults for the run-time hyperparameters: no obstacle to choosing it.
    "multi-level-cpu-demo-ls": { ...base, gan: "LS", lambdaAdvTarget2: 0.01 },
    "eval-multi-level-cpu-demo": { variant: "multi-level" },
  });

  it("lists programs and reads their config without importing them", () => {
    expect(listPrograms(dir)).toEqual(["eval-multi-level-cpu-demo", "multi-level-cpu-demo", "multi-level-cpu-demo-ls"]);
    expect(peekConfig("multi-level-cpu-demo", dir)).toEqual(base);
  });

  it("takes <variant>-<preset> when the options agree with its config", async () => {
    expect(await selectProgram("multi-level", "cpu-demo", { gan: "Vanilla", sourceSize: [64, 128] }, dir)).toEqual(E.right({ name: "multi-level-cpu-demo" }));
  });

  it("picks another program whose compiled config has the requested values (hyperparameter defaults aside)", async () => {
    const r = await selectProgram("multi-level", "cpu-demo", { gan: "LS" }, dir);
    expect(E.isRight(r) && r.right.name).toBe("multi-level-cpu-demo-ls");
  });

  it("refuses a value no program was compiled with, saying what to add", async () => {
    const r = await selectProgram("multi-level", "cpu-demo", { sourceSize: [32, 64] }, dir);
    const m = E.isLeft(r) ? renderTrainError(r.left) : "";
    expect(m).toContain("sourceSize = [32,64] (compiled: [64,128])");
    expect(m).toContain("examples/adaptsegnet/presets.ts");
    expect(m).toContain("npm run codegen");
  });

  it("names the missing program and what is there", async () => {
    const r = await selectProgram("oracle", "cpu-demo", {}, dir);
    const m = E.isLeft(r) ? renderTrainError(r.left) : "";
    expect(m).toContain("no generated program oracle-cpu-demo");
    expect(m).toContain("multi-level-cpu-demo");
  });

  it("reads the preset from a program name", () => {
    expect(presetOf("multi-level-cpu-demo")).toBe("cpu-demo");
    expect(presetOf("eval-vgg-single-level-synthia-cityscapes")).toBe("synthia-cityscapes");
    expect(presetOf("tiny-train")).toBeUndefined();
  });

  it("lists the preset's evaluation programs", () => {
    expect(evalPrograms("cpu-demo", dir)).toEqual(["eval-multi-level-cpu-demo"]);
    expect(evalPrograms("gta5-cityscapes", dir)).toEqual([]);
  });
});

describe("train options", () => {
  it("maps the official option names onto config keys (sizes W,H -> [H, W]) and hyperparameters", () => {
    const o = parseTrainOptions(["--program", "single-level", "--preset", "cpu-demo", "--lambda-adv-target2", "0.01", "--gan", "LS", "--input-size", "128,64"]);
    if (E.isLeft(o)) throw new Error(renderTrainError(o.left));
    expect(o.right.overrides).toEqual({ gan: "LS", sourceSize: [64, 128] });
    expect(o.right.hyperparameters).toEqual({ lambdaAdvTarget2: 0.01 });
    expect(o.right.data.source.spec).toEqual({ kind: "gta5", root: join("data", "synth", "gta5") });
  });

  it("refuses contradictions and malformed values, naming the option", () => {
    const msg = (argv: string[]) => {
      const r = parseTrainOptions(argv);
      return E.isLeft(r) ? renderTrainError(r.left) : "accepted";
    };
    expect(msg(["--resume", "--restore-from", "x.pth"])).toContain("give one of them");
    expect(msg(["--num-steps-stop", "0"])).toContain("--num-steps-stop must be a positive integer");
    expect(msg(["--gan", "WGAN"])).toContain("--gan must be Vanilla or LS");
    expect(msg(["--batch-size", "2"])).toContain("compiled for batch 1");
    expect(msg(["--no-such-option"])).toContain("no-such-option");
  });

  it("the oracle reads target labels; the adaptation variants do not", () => {
    const oracle = parseTrainOptions(["--program", "oracle"]);
    const adapted = parseTrainOptions(["--program", "multi-level"]);
    expect(E.isRight(oracle) && oracle.right.data.target.spec).toMatchObject({ withLabels: true });
    expect(E.isRight(adapted) && adapted.right.data.target.spec).toMatchObject({ withLabels: false });
  });
});
