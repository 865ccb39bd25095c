// Parity programs of DeepLab-MobileNetV2 (examples/mobilenet/), compiled only for `npm run
// parity` (docs/parity.md): the forward pass in both BN modes at width 0.5 and output stride 8
// (every dilation path: 2 after features.7, 4 after features.14), and two multi-level training
// iterations at width 0.25, output stride 16 (the cpu-demo network) at odd, non-square sizes.
// The PyTorch side is scripts/parity/mobilenet.py, written from torchvision's definition.

import * as d from "../../dsl/index";
import type { Program, Tensor } from "../../dsl/index";
import { exportProgram } from "../../dsl/index";
import { buildAdaptationStep } from "../../adapt/step";
import { type MobileNetConfig, mobilenetDeeplab, mobilenetDeeplabSpec, mobilenetNetwork } from "../mobilenet/networks";
import { mobilenetSettings } from "../mobilenet/programs";

export const MOBILENET_FORWARD_SIZES = { a: [65, 65], b: [57, 73] } as const satisfies Record<string, readonly [number, number]>;
export const MOBILENET_FORWARD: MobileNetConfig = { widthMult: 0.5, numClasses: 19, headChannels: 32, outputStride: 8 };

/** Per input and BN mode: aux logits, main logits, last features; train mode threads statistics a then b. */
export function buildMobileNetForward(name: string): Program {
  const G = d.declareModel("G", mobilenetDeeplabSpec(MOBILENET_FORWARD));
  const frozen = new d.StateThread();
  const official = new d.StateThread();
  const outputs: Record<string, Tensor> = {};
  const images = Object.entries(MOBILENET_FORWARD_SIZES).map(([k, [h, w]]) => [k, d.input(`image_${k}`, [1, 3, h, w], "f32")] as const);
  for (const [mode, thread] of [["frozen", frozen], ["official", official]] as const) {
    for (const [k, image] of images) {
      const out = d.withScope(`${mode}_${k}`, () => mobilenetDeeplab(image, G.p, MOBILENET_FORWARD, { mode: mode === "frozen" ? "eval" : "train", thread }));
      outputs[`${mode}_${k}_aux`] = out.aux;
      outputs[`${mode}_${k}_main`] = out.main;
      outputs[`${mode}_${k}_features`] = out.features;
    }
  }
  return d.defineProgram({
    name,
    params: [...G.entries],
    phases: [{ name: "forward", outputs, updates: official.updates() }],
    config: { network: { kind: "mobilenet-v2", ...MOBILENET_FORWARD }, sizes: MOBILENET_FORWARD_SIZES },
  });
}

/** The training case: the cpu-demo network, the ResNet cases' sizes, learning rates and 1000x adversarial weights. */
export const MOBILENET_TRAIN_NET = { widthMult: 0.25, headChannels: 16, outputStride: 16 } as const;
export const MOBILENET_TRAIN_OVERRIDES = {
  sourceSize: [65, 71],
  targetSize: [49, 67],
  numSteps: 10,
  learningRate: 1e-2,
  learningRateD: 1e-4,
  lambdaAdvTarget1: 0.2,
  lambdaAdvTarget2: 1,
} as const;

export const mobilenetProgramName = { forward: "parity-mobilenet-forward", train: "parity-train-mobilenet-multi-level" };

export const parityMobileNetForward = exportProgram(mobilenetProgramName.forward, "parity: DeepLab-MobileNetV2 (width 0.5, OS 8) forward, eval- and train-mode BN, 65x65 and 57x73", () =>
  buildMobileNetForward(mobilenetProgramName.forward));

export const parityMobileNetTrain = exportProgram(mobilenetProgramName.train, "parity: two multi-level training iterations of DeepLab-MobileNetV2 (width 0.25, OS 16)", () => {
  const s = mobilenetSettings("multi-level", MOBILENET_TRAIN_NET, MOBILENET_TRAIN_OVERRIDES);
  return buildAdaptationStep(mobilenetProgramName.train, mobilenetNetwork({ ...MOBILENET_TRAIN_NET, numClasses: s.numClasses }), s);
});
