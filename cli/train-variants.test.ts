// `npm run train -- ... --eval-every N` for every preset x variant the docs list, at small sizes:
// each shipped training program is rebuilt from its own config with small images and a small
// network (the same builder, the same variant settings), compiled with its evaluation program,
// and the command line trains one iteration and evaluates it (the full-size programs take
// minutes per step on a CPU adapter). The data are the tiny synthetic benchmark, read in the
// GTA5 and Cityscapes layouts whatever the preset's own layouts are.

import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { compileProgram } from "../codegen/compile";
import { emitStandalone } from "../codegen/emit";
import type { Program } from "../dsl/index";
import { configFor, type PresetName } from "../examples/adaptsegnet/presets";
import * as shipped from "../examples/adaptsegnet/programs";
import { type TrainConfig, type Variant, buildEval, buildTrainStep } from "../examples/adaptsegnet/train";
import { scratch, tinyData } from "../train/test-programs";
import { runScript } from "../testing/scripts";

/** Every shipped training program, as [variant, preset] (the names are variant-preset). */
const PROGRAMS: readonly (readonly [Variant, PresetName])[] = [...shipped.gta5Cityscapes, ...shipped.synthiaCityscapes, ...shipped.crossCity, ...shipped.cpuDemo].map((p) => {
  const preset = (["gta5-cityscapes", "synthia-cityscapes", "cityscapes-crosscity", "cpu-demo"] as const).find((s) => p.name.endsWith(`-${s}`))!;
  return [p.name.slice(0, -preset.length - 1) as Variant, preset] as const;
});

/**
 * What CI runs: one program per input contract (source only, adaptation, oracle), class protocol
 * (19, 16, 13) and network family (ResNet, VGG); every first run of a program compiles its
 * pipelines on a cold shader cache, a minute each at full CPU. `TRAIN_VARIANTS=all` runs all 16.
 */
const CI_SET = new Set(["source-only-cpu-demo", "multi-level-cpu-demo", "oracle-cpu-demo", "multi-level-synthia-cityscapes", "vgg-single-level-synthia-cityscapes", "multi-level-cityscapes-crosscity"]);
const CHOSEN = process.env["TRAIN_VARIANTS"] === "all" ? PROGRAMS : PROGRAMS.filter(([v, p]) => CI_SET.has(`${v}-${p}`));

/**
 * Small copies: 32x64 images, DeepLab blocks [1,1,1,1] at width 4, VGG at 1/64 width, ndf 4.
 * Feature-level discriminates layer4's features at output stride 8, which must still be 32
 * pixels a side for the discriminator's five stride-2 convs: its copy takes 256x256 images.
 */
function smallConfig(variant: Variant, preset: PresetName): TrainConfig {
  const size: readonly [number, number] = variant === "feature-level" ? [256, 256] : [32, 64];
  const network = { ...configFor(variant, preset).network, blocks: [1, 1, 1, 1] as const, width: 4 };
  return configFor(variant, preset, { sourceSize: size, targetSize: size, network, vgg: { asppBranches: 2, shrink: 64 }, ndf: 4, numSteps: 10 });
}

function writeModule(dir: string, program: Program): string {
  const file = join(dir, program.name, "module.ts");
  mkdirSync(join(dir, program.name), { recursive: true });
  writeFileSync(file, emitStandalone(compileProgram(program), "cli/train-variants.test.ts"));
  return file;
}

/** `npm run train -- ...args`. */
const run = (args: readonly string[]) => runScript("scripts/train.ts", args);

const work = scratch("train-variants-");
let data: Awaited<ReturnType<typeof tinyData>>;
beforeAll(async () => {
  data = await tinyData(join(work, "data"));
});

describe("npm run train --eval-every, every preset x variant at small sizes", () => {
  it("lists the 16 shipped training programs", () => {
    expect(PROGRAMS).toHaveLength(16);
  });

  it.each(CHOSEN)("%s, %s", async (variant, preset) => {
    const cfg = smallConfig(variant, preset);
    const name = `${variant}-${preset}`;
    const module = writeModule(work, buildTrainStep(name, cfg));
    const evalModule = writeModule(work, buildEval(`eval-${name}`, cfg));
    const dir = join(work, "runs", name);
    const r = await run([
      "--module", module, "--eval-module", evalModule, "--program", variant, "--preset", preset,
      "--data-dir", join(data.dir, "gta5"), "--source-layout", "gta5",
      "--data-dir-target", join(data.dir, "cityscapes"), "--target-layout", "cityscapes",
      "--num-steps-stop", "1", "--eval-every", "1", "--eval-images", "1", "--save-pred-every", "1", "--snapshot-dir", dir,
    ]);
    expect(r.code, r.out).toBe(0);
    const records = readFileSync(join(dir, "metrics.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l) as { type: string; mIoU?: number });
    const evals = records.filter((x) => x.type === "eval");
    expect(evals.length, r.out).toBeGreaterThan(0);
    expect(Number.isFinite(evals[0]!.mIoU)).toBe(true);
  }, 400_000);

  it("refuses an evaluation module of another network, naming the tensor", async () => {
    const module = writeModule(work, buildTrainStep("multi-level-cpu-demo", smallConfig("multi-level", "cpu-demo")));
    const other = writeModule(work, buildEval("eval-oracle-cpu-demo", smallConfig("oracle", "cpu-demo")));
    const r = await run(["--module", module, "--eval-module", other, "--eval-every", "1", "--num-steps-stop", "1", "--data-dir", join(data.dir, "gta5"), "--data-dir-target", join(data.dir, "cityscapes"), "--snapshot-dir", join(work, "runs", "refused")]);
    expect(r.code).not.toBe(0);
    expect(r.out).toMatch(/--eval-module .*eval-oracle-cpu-demo.* does not evaluate the network multi-level-cpu-demo trains: .*layer/);
  }, 120_000);
});
