// The adaptation step builder on a network written here, not AdaptSegNet's: every objective
// builds a program that compiles and keeps the trainable-program contract, with the losses each
// objective reports, and one adversarial step runs in the interpreter with finite losses. (The
// AdaptSegNet programs are built by the same builder: `codegen --check` holds them byte for byte.)

import { describe, expect, it } from "vitest";
import { compileProgram } from "../codegen/compile";
import * as d from "../dsl/index";
import * as nn from "../dsl/nn";
import { checkEvaluation, checkTrainable, renderContractError } from "../format/program-contract";
import { buildEvaluation } from "./evaluation";
import { HYPERPARAMETER_KEYS, type HyperparameterKey } from "./hyperparameters";
import type { SegmentationNetwork } from "./network";
import { type Objective, type StepSettings, buildAdaptationStep } from "./step";

const C = 3;

/** A two-conv segmentation network with an optional auxiliary head: the smallest real one. */
function tinyNetwork(aux: boolean) {
  const spec = {
    stem: nn.convSpec(4, 3, 3, { bias: true, group: "backbone" }),
    head: nn.convSpec(C, 4, 1, { bias: true, group: "head" }),
    ...(aux ? { aux: nn.convSpec(C, 4, 1, { bias: true, group: "head" }) } : {}),
  };
  const network: SegmentationNetwork<typeof spec> = {
    spec,
    heads: aux ? "main+aux" : "main",
    forward: (image, p) => {
      const f = d.relu(nn.conv(d.maxPool2d(image, { kernel: 2 }), p.stem, { padding: 1 }));
      const q = p as d.Declared<typeof spec> & { aux?: nn.ConvParams };
      return { main: nn.conv(f, p.head), aux: q.aux ? nn.conv(f, q.aux) : undefined, features: f };
    },
    featureChannels: 4,
  };
  return network;
}

const VALUES = Object.fromEntries(HYPERPARAMETER_KEYS.map((k) => [k, 0.01])) as Record<HyperparameterKey, number>;

const settings = (objective: Objective): StepSettings => ({
  numClasses: C,
  // The discriminator's five stride-2 convs need 32 pixels a side.
  sourceSize: [32, 32],
  targetSize: [32, 48],
  ignoreLabel: 255,
  bnMode: "train",
  objective,
  values: { ...VALUES, numSteps: 100, power: 0.9 },
  optimizer: { lrGroups: "head-10x", adamEps: "pytorch1" },
  scopeForwardPasses: true,
  config: { numClasses: C },
});

const adversarial = (input: "softmax" | "self-information" | "features", gan: "Vanilla" | "LS" = "Vanilla", featureUpsample = false): Objective => ({
  kind: "adversarial",
  input,
  gan,
  discriminator: { ndf: 4, upsample: false },
  featureUpsample,
});

const CASES: readonly (readonly [string, boolean, Objective, readonly string[]])[] = [
  ["source-only", true, { kind: "supervised", domain: "source" }, ["loss_seg1", "loss_seg2"]],
  ["oracle (target labels)", false, { kind: "supervised", domain: "target" }, ["loss_seg2"]],
  ["MinEnt", true, { kind: "entropy" }, ["loss_seg1", "loss_seg2", "loss_ent1", "loss_ent2"]],
  ["single-level", false, adversarial("softmax"), ["loss_seg2", "loss_adv2", "loss_D2"]],
  ["multi-level", true, adversarial("softmax"), ["loss_seg1", "loss_seg2", "loss_adv1", "loss_adv2", "loss_D1", "loss_D2"]],
  ["LS-GAN", false, adversarial("softmax", "LS"), ["loss_seg2", "loss_adv2", "loss_D2"]],
  ["AdvEnt", true, adversarial("self-information"), ["loss_seg1", "loss_seg2", "loss_adv1", "loss_adv2", "loss_D1", "loss_D2"]],
  // Features at output stride 2 are too small for five stride-2 convs: upsampled to the image.
  ["feature-level", false, adversarial("features", "Vanilla", true), ["loss_seg2", "loss_adv2", "loss_D2"]],
];

describe("buildAdaptationStep on a user's network", () => {
  it.each(CASES)("%s compiles and keeps the trainable contract", (name, aux, objective, lossNames) => {
    const program = buildAdaptationStep(`tiny-${name.replace(/[^a-z]/gi, "").toLowerCase()}`, tinyNetwork(aux), settings(objective));
    const c = checkTrainable(compileProgram(program).module);
    expect(c.ok ? c.value.losses : renderContractError(c.error)).toEqual(lossNames);
  });

  it("the evaluation program keeps the evaluation contract", () => {
    const program = buildEvaluation("tiny-eval", tinyNetwork(true), [8, 12], { numClasses: C });
    const c = checkEvaluation(compileProgram(program).module);
    expect(c.ok ? c.value : renderContractError(c.error)).toEqual({ numClasses: C, size: { height: 8, width: 12 }, logits: { classes: C, height: 4, width: 6 } });
  });

  it("one multi-level step runs in the interpreter: finite losses, every parameter group moves", () => {
    const program = buildAdaptationStep("tiny-run", tinyNetwork(true), settings(adversarial("softmax")));
    const state: d.StateValues = new Map([...d.initialValues(program.params, 7)].map(([name, v]) => [name, Float64Array.from(v)]));
    const image = (n: number, seed: number) => Float64Array.from({ length: n }, (_, i) => Math.sin(i * 0.37 + seed));
    const data = {
      iteration: [0],
      source_image: image(3 * 32 * 32, 1),
      source_label: Int32Array.from({ length: 32 * 32 }, (_, i) => i % C),
      target_image: image(3 * 32 * 48, 2),
    };
    const { outputs, state: after } = runStep(program, state, data);
    for (const [name, v] of Object.entries(outputs)) expect(Number.isFinite(v.data[0]), name).toBe(true);
    for (const key of ["G/stem.weight", "D1/conv1.weight", "D2/classifier.weight"]) {
      const name = program.params.find((e) => `${e.model}/${e.key}` === key)!.name;
      expect(Array.from(after.get(name)!)).not.toEqual(Array.from(state.get(name)!));
    }
  });

  it("refuses MinEnt on a network without an auxiliary head, naming it", () => {
    expect(() => buildAdaptationStep("x", tinyNetwork(false), settings({ kind: "entropy" }))).toThrow(/entropy minimisation weights an auxiliary head: the network has none/);
  });
});

function runStep(program: d.Program, state: d.StateValues, data: Record<string, ArrayLike<number>>) {
  const r = d.runProgram(program, state, data);
  return { outputs: r.outputs[0]! as Record<string, { data: ArrayLike<number> }>, state: r.state };
}

