// What the benchmark measures: the kernel shapes and the training-step configurations.
//
// Kernel shapes are those of one AdaptSegNet iteration at 321x321 (ResNet-101 DeepLab-v2:
// stem 161x161, layer1 at 81x81, layers 2-4 at 41x41 with dilations 2 and 4, ASPP dilations 6
// and 12; the FCDiscriminator with ndf 64 on a 321x321 softmax map), plus the two convolutions
// and the matmul of issue 3's acceptance. FLOPs count a multiply-add as two: one pass of a
// convolution costs 2*N*O*OH*OW*C*KH*KW, whichever of forward, input- or weight-gradient.

import { configFor } from "../examples/adaptsegnet/presets";
import type { TrainConfig } from "../examples/adaptsegnet/train";
import { mobilenetNetwork } from "../examples/mobilenet/networks";
import { CPU_DEMO_MOBILENET, mobilenetSettings } from "../examples/mobilenet/programs";
import { buildAdaptationStep } from "../adapt/step";
import type { Program } from "../dsl/index";

export interface ConvShape {
  readonly x: readonly [number, number, number, number];
  readonly w: readonly [number, number, number, number];
  readonly stride: number;
  readonly padding: number;
  readonly dilation: number;
}

/** One pass of a convolution, or all three (forward, input-gradient, weight-gradient) together. */
export type ConvPass = "fwd" | "dx" | "dw" | "all";

export interface ConvCase {
  readonly kind: "conv";
  readonly label: string;
  readonly shape: ConvShape;
  readonly passes: readonly ConvPass[];
}

export interface MatmulCase {
  readonly kind: "matmul";
  readonly label: string;
  readonly m: number;
  readonly k: number;
  readonly n: number;
}

export type KernelCase = ConvCase | MatmulCase;

const ALL: readonly ConvPass[] = ["fwd", "dx", "dw", "all"];
const EACH: readonly ConvPass[] = ["fwd", "dx", "dw"];

function conv(label: string, x: ConvShape["x"], w: ConvShape["w"], o: { stride?: number; padding?: number; dilation?: number } = {}, passes = EACH): ConvCase {
  return { kind: "conv", label, shape: { x, w, stride: o.stride ?? 1, padding: o.padding ?? 0, dilation: o.dilation ?? 1 }, passes };
}

export const KERNEL_CASES: readonly KernelCase[] = [
  // Issue 3's acceptance shapes first.
  conv("conv3x3 256>256 @64x64", [1, 256, 64, 64], [256, 256, 3, 3], { padding: 1 }, ALL),
  conv("layer4 conv3x3 d4 512>512 @41x41", [1, 512, 41, 41], [512, 512, 3, 3], { padding: 4, dilation: 4 }, ALL),
  { kind: "matmul", label: "matmul 1024^3", m: 1024, k: 1024, n: 1024 },
  // DeepLab-v2 / ResNet-101 at 321x321 (the image needs no gradient: the stem has no dx).
  conv("stem conv7x7/2 3>64 @321x321", [1, 3, 321, 321], [64, 3, 7, 7], { stride: 2, padding: 3 }, ["fwd", "dw"]),
  conv("layer1 conv1x1 256>64 @81x81", [1, 256, 81, 81], [64, 256, 1, 1]),
  conv("layer1 conv3x3 64>64 @81x81", [1, 64, 81, 81], [64, 64, 3, 3], { padding: 1 }),
  conv("layer1 conv1x1 64>256 @81x81", [1, 64, 81, 81], [256, 64, 1, 1]),
  conv("layer2 conv1x1/2 256>128 @81x81", [1, 256, 81, 81], [128, 256, 1, 1], { stride: 2 }),
  conv("layer2 conv3x3 128>128 @41x41", [1, 128, 41, 41], [128, 128, 3, 3], { padding: 1 }),
  conv("layer3 conv3x3 d2 256>256 @41x41", [1, 256, 41, 41], [256, 256, 3, 3], { padding: 2, dilation: 2 }),
  conv("layer3 conv1x1 1024>256 @41x41", [1, 1024, 41, 41], [256, 1024, 1, 1]),
  conv("layer3 conv1x1 256>1024 @41x41", [1, 256, 41, 41], [1024, 256, 1, 1]),
  conv("layer4 conv1x1 2048>512 @41x41", [1, 2048, 41, 41], [512, 2048, 1, 1]),
  conv("ASPP conv3x3 d12 2048>19 @41x41", [1, 2048, 41, 41], [19, 2048, 3, 3], { padding: 12, dilation: 12 }),
  // FCDiscriminator, ndf 64, on a 321x321 map of 19 class probabilities.
  conv("D conv4x4/2 19>64 @321x321", [1, 19, 321, 321], [64, 19, 4, 4], { stride: 2, padding: 1 }),
  conv("D conv4x4/2 64>128 @160x160", [1, 64, 160, 160], [128, 64, 4, 4], { stride: 2, padding: 1 }),
  conv("D conv4x4/2 128>256 @80x80", [1, 128, 80, 80], [256, 128, 4, 4], { stride: 2, padding: 1 }),
  conv("D conv4x4/2 256>512 @40x40", [1, 256, 40, 40], [512, 256, 4, 4], { stride: 2, padding: 1 }),
  conv("D classifier 4x4/2 512>1 @20x20", [1, 512, 20, 20], [1, 512, 4, 4], { stride: 2, padding: 1 }),
];

export function convOutSize(n: number, k: number, s: ConvShape): number {
  return Math.floor((n + 2 * s.padding - s.dilation * (k - 1) - 1) / s.stride) + 1;
}

/** FLOPs of one pass (fwd, dx or dw) of a convolution; "all" is three passes. */
export function convFlops(s: ConvShape, pass: ConvPass): number {
  const [n, c, h, w] = s.x;
  const [o, , kh, kw] = s.w;
  const one = 2 * n * o * convOutSize(h, kh, s) * convOutSize(w, kw, s) * c * kh * kw;
  return pass === "all" ? 3 * one : one;
}

export const PASS_LABEL: Readonly<Record<ConvPass, string>> = { fwd: "fwd", dx: "dx", dw: "dw", all: "fwd+dx+dw" };

// ---------------------------------------------------------------------------------------------
// Training-step configurations (one multi-level iteration, batch 1, source and target alike)

export interface StepCase {
  readonly name: string;
  readonly label: string;
  /** The AdaptSegNet config (sizes, classes; PyTorch's baseline builds its network from it). */
  readonly config: () => TrainConfig;
  /**
   * Another network's step at the config's sizes (DeepLab-MobileNetV2): ours builds this
   * program instead of buildTrainStep(config), with no PyTorch baseline (torch_baseline.py is
   * DeepLab-v2 only).
   */
  readonly other?: { readonly build: () => Program; readonly summary: string };
}

export const STEP_CASES: readonly StepCase[] = [
  { name: "cpu-demo", label: "step cpu-demo (64x128, width 8)", config: () => configFor("multi-level", "cpu-demo") },
  {
    name: "mobilenet-cpu-demo",
    label: "step mobilenet cpu-demo (64x128, MobileNetV2 width 0.25)",
    config: () => configFor("multi-level", "cpu-demo"),
    other: {
      build: () => {
        const s = mobilenetSettings("multi-level");
        return buildAdaptationStep("bench-mobilenet-cpu-demo", mobilenetNetwork({ ...CPU_DEMO_MOBILENET, numClasses: s.numClasses }), s);
      },
      summary: "multi-level, DeepLab-MobileNetV2 width 0.25, OS 16, head 64, ndf 16, source 64x128, target 64x128, 19 classes",
    },
  },
  {
    name: "tiny",
    label: "step tiny (128x128, width 16)",
    config: () =>
      configFor("multi-level", "gta5-cityscapes", {
        sourceSize: [128, 128],
        targetSize: [128, 128],
        network: { blocks: [1, 1, 1, 1], width: 16, asppBranches: 2 },
        ndf: 16,
      }),
  },
  {
    name: "resnet101-321",
    label: "step ResNet-101 (321x321)",
    config: () => configFor("multi-level", "gta5-cityscapes", { sourceSize: [321, 321], targetSize: [321, 321] }),
  },
];
