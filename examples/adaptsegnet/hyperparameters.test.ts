// The numeric hyperparameters of the training programs are run-time values (train.ts,
// HYPERPARAMETER_KEYS): each program declares exactly those its variant reads, with the
// config's values as defaults, and the generated kernels hold none of them as literals.

import { readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { HYPER_OPTIONS } from "../../train/hyperparameters";
import { configFor } from "./presets";
import { HYPERPARAMETER_KEYS, type Variant, buildTrainStep, hyperparameterKeysOf } from "./train";

const VARIANTS: readonly Variant[] = ["multi-level", "single-level", "source-only", "feature-level", "ls-gan", "vgg-single-level", "oracle", "advent", "minent"];

/**
 * Small enough to build every variant in a second (only graphs are built, nothing runs):
 * cpu-demo's network, 3 classes; 257x259 so that the feature-level discriminator, which sees
 * output-stride-8 features, still has a pixel after its five stride-2 convolutions.
 */
const small = (variant: Variant) =>
  configFor(variant, "cpu-demo", { sourceSize: [257, 259], targetSize: [257, 261], numClasses: 3, ndf: 2, network: { blocks: [1, 1, 1, 1], width: 2, asppBranches: variant === "advent" || variant === "minent" ? 4 : 2 } });

describe("hyperparameters of the training programs", () => {
  it.each(VARIANTS)("%s declares the hyperparameters it reads, defaults from its config", (variant) => {
    const cfg = small(variant);
    const program = buildTrainStep(`hyper-${variant}`, cfg);
    expect(program.hyperparameters.map((h) => h.name)).toEqual(hyperparameterKeysOf(variant));
    for (const h of program.hyperparameters) expect(h.value, h.name).toBe(cfg[h.name as keyof typeof cfg]);
    for (const k of hyperparameterKeysOf(variant)) expect(HYPERPARAMETER_KEYS).toContain(k);
  });

  it("the trainer knows a rule (and the flag, if any) for every one (train/hyperparameters.ts)", () => {
    expect(Object.keys(HYPER_OPTIONS).sort()).toEqual([...HYPERPARAMETER_KEYS].sort());
  });

  it("single-level is the multi-level graph: it reads the aux weights (0 by default) and D1 still trains", () => {
    const program = buildTrainStep("hyper-single", small("single-level"));
    const defaults = Object.fromEntries(program.hyperparameters.map((h) => [h.name, h.value]));
    expect(defaults).toMatchObject({ lambdaSeg: 0, lambdaAdvTarget1: 0, lambdaAdvTarget2: 0.001 });
    expect(Object.keys(program.phases[0]!.updates).some((n) => n.startsWith("D1/"))).toBe(true);
  });
});

describe("generated/multi-level-cpu-demo", () => {
  const file = join(fileURLToPath(new URL("../../generated/multi-level-cpu-demo/module.ts", import.meta.url)));
  const text = readFileSync(file, "utf8");
  const shaders = text.slice(0, text.indexOf("export const module"));

  it("declares every default in its hyperparameters line", () => {
    const line = /^\s*hyperparameters: (\[.*\]),$/m.exec(text);
    expect(line).not.toBeNull();
    const declared = Object.fromEntries((JSON.parse(line![1]!) as { name: string; value: number }[]).map((h) => [h.name, h.value]));
    expect(declared).toEqual({
      learningRate: 2.5e-3,
      learningRateD: 1e-4,
      momentum: 0.9,
      weightDecay: 5e-4,
      power: 0.9,
      numSteps: 1500,
      lambdaSeg: 0.1,
      lambdaAdvTarget1: 0.0002,
      lambdaAdvTarget2: 0.001,
      adamBeta1: 0.9,
      adamBeta2: 0.99,
      adamEpsilon: 1e-8,
    });
  });

  // The f32 literals codegen wrote for them before they were run-time values. (0.9 and 0.1 are
  // not listed: BatchNorm's running-statistics momentum uses them too.)
  it.each([
    ["learningRate 2.5e-3", "0.0024999999441206455f"],
    ["learningRateD 1e-4", "0.00009999999747378752f"],
    ["weightDecay 5e-4", "0.0005000000237487257f"],
    ["numSteps 1500", "1500.0f"],
    ["lambdaAdvTarget1 2e-4", "0.00019999999494757503f"],
    ["lambdaAdvTarget2 1e-3", "0.0010000000474974513f"],
    ["adamBeta2 0.99", "0.9900000095367432f"],
    ["adamEpsilon 1e-8", "9.99999993922529e-9f"],
  ])("no kernel holds %s as the literal %s", (_what, literal) => {
    expect(shaders).not.toContain(literal);
  });
});
