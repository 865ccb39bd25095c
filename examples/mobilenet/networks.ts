// DeepLab on a MobileNetV2 backbone, written in the DSL: the second real network the adaptation
// step (adapt/step.ts) trains, next to DeepLab-v2 on ResNet (examples/adaptsegnet/).
//
// The backbone is torchvision's MobileNetV2 (Sandler et al., CVPR 2018): a 3x3 stride-2 stem,
// then inverted residuals (1x1 expand -> 3x3 depthwise -> 1x1 linear projection, a residual when
// the block keeps size and channels). Parameter paths equal torchvision's `mobilenet_v2`
// state-dict keys (`features.0.0.weight`, `features.3.conv.1.0.weight`, `features.17.conv.3.
// running_var`), so an ImageNet state dict loads with no renaming (checkpoint/import-rules.ts,
// rule "mobilenet").
//
// Choices (each with its reason):
// - features.18, the final 1x1 conv to 1280 channels, is dropped: it exists to feed ImageNet's
//   pooled classifier; DeepLab's MobileNetV2 feature extractor stops at the 320-channel output
//   of the last inverted residual (the MobileNetV2 paper's segmentation setting), and at output
//   stride 16 the 1280-channel map would be the widest tensor of the network.
// - Output stride 16 by default: the last stride-2 stage (features.14) keeps stride 1 and the
//   depthwise convs after it are dilated by 2, DeepLabv3's MobileNetV2 setting (the paper reports
//   OS 16 as the better accuracy/cost trade-off than OS 8, which costs about 2.5x the
//   multiply-adds). Output stride 8 (also dilating the stride-2 stage at features.7) is an option.
// - Heads in group "head" (10x learning rate, DeepLab's rule): `classifier`, the DeepLabv3 head
//   the MobileNetV2 paper found best for mobile (the 1x1 ASPP branch alone: 1x1 conv -> BN ->
//   ReLU -> 1x1 classifier; the image-pooling branch is left out, because train-mode BN of a
//   1x1 pooled map at batch size 1 has no variance), on the last features; `aux_classifier`, a
//   1x1 classifier on features.13 (the 96-channel stage, the last one before the stride that OS
//   16 removes), for multi-level adaptation as DeepLab-v2's layer5 on layer3.
// - Every BN's affine parameters are frozen (AdaptSegNet's DeepLab rule: batch size 1 gives BN
//   no usable gradient), in the backbone and the head.

import * as d from "../../dsl/index";
import type { F32 } from "../../dsl/index";
import * as nn from "../../dsl/nn";
import type { NetworkContext, SegmentationNetwork } from "../../adapt/network";

export interface MobileNetConfig {
  /** Channel multiplier (1 = MobileNetV2 as published); channels are rounded by makeDivisible. */
  readonly widthMult: number;
  readonly numClasses: number;
  /** Channels of the main head's 1x1 ASPP branch (256 in DeepLabv3). */
  readonly headChannels: number;
  readonly outputStride: 8 | 16;
}

export const MOBILENET_V2: Omit<MobileNetConfig, "numClasses"> = { widthMult: 1, headChannels: 256, outputStride: 16 };

/** The inverted-residual table: expansion t, output channels c, repeats n, first stride s. */
export const INVERTED_RESIDUAL_SETTING: readonly (readonly [number, number, number, number])[] = [
  [1, 16, 1, 1],
  [6, 24, 2, 2],
  [6, 32, 3, 2],
  [6, 64, 4, 2],
  [6, 96, 3, 1],
  [6, 160, 3, 2],
  [6, 320, 1, 1],
];

/** The block whose output the auxiliary head reads (the last 96-channel block). */
export const AUX_FEATURE_INDEX = 13;

/**
 * torchvision's _make_divisible(v, 8): v rounded to the nearest multiple of 8 (at least 8), one
 * step up when rounding down lost more than 10% of v.
 */
export function makeDivisible(v: number, divisor = 8): number {
  const rounded = Math.max(divisor, Math.floor((v + divisor / 2) / divisor) * divisor);
  return rounded < 0.9 * v ? rounded + divisor : rounded;
}

/** One inverted residual's geometry: channels, stride and dilation of its depthwise conv. */
export interface BlockGeometry {
  readonly inC: number;
  readonly hidden: number;
  readonly outC: number;
  readonly expand: number;
  readonly stride: number;
  readonly dilation: number;
  /** stride 1 and inC = outC: the block adds its input (torchvision's use_res_connect). */
  readonly residual: boolean;
}

/**
 * The 17 inverted residuals (features.1..17) in order. A stride that would take the network
 * past `outputStride` becomes 1 and multiplies the dilation of the depthwise convs after it
 * (the removing block itself keeps the dilation it had, as DeepLab's MobileNetV2 does).
 */
export function blockGeometry(widthMult: number, outputStride: 8 | 16): readonly BlockGeometry[] {
  const blocks: BlockGeometry[] = [];
  let inC = stemChannels(widthMult);
  let reached = 2; // the stem's stride
  let dilation = 1;
  for (const [t, c, n, s] of INVERTED_RESIDUAL_SETTING) {
    const outC = makeDivisible(c * widthMult);
    for (let i = 0; i < n; i++) {
      let stride = i === 0 ? s : 1;
      const blockDilation = dilation;
      if (stride > 1 && reached >= outputStride) {
        dilation *= stride;
        stride = 1;
      } else reached *= stride;
      // hidden_dim = int(round(inp * t)): Python rounds halves to even; inp * t is an integer here.
      blocks.push({ inC, hidden: Math.round(inC * t), outC, expand: t, stride, dilation: blockDilation, residual: stride === 1 && inC === outC });
      inC = outC;
    }
  }
  return blocks;
}

/** The stem's output channels: _make_divisible(32 * width_mult). */
export const stemChannels = (widthMult: number): number => makeDivisible(32 * widthMult);

// ---------------------------------------------------------------------------------------------
// Parameter tree

/**
 * Backbone convs: no bias, torchvision's kaiming_normal_(mode="fan_out"): N(0, 2 / fan_out) with
 * fan_out = out channels x kernel area (for a depthwise [C,1,3,3] weight, 9 C).
 */
const backboneConv = (outC: number, inC: number, k: number) =>
  nn.convSpec(outC, inC, k, { init: d.normal(Math.sqrt(2 / (outC * k * k))), group: "backbone" });
const frozenBn = (c: number, group: string) => nn.batchNormSpec(c, { affineTrainable: false, group });

type ConvBn = readonly [nn.ConvSpec, nn.BatchNormSpec];
const convBn = (outC: number, inC: number, k: number): ConvBn => [backboneConv(outC, inC, k), frozenBn(outC, "backbone")];

/** torchvision's InvertedResidual: `conv` = [expand ConvBNReLU6,] depthwise ConvBNReLU6, project conv, BN. */
export type InvertedResidualSpec = {
  readonly conv: readonly [ConvBn, ConvBn, nn.ConvSpec, nn.BatchNormSpec] | readonly [ConvBn, nn.ConvSpec, nn.BatchNormSpec];
};

function invertedResidualSpec(g: BlockGeometry): InvertedResidualSpec {
  const depthwise = convBn(g.hidden, 1, 3);
  const project = backboneConv(g.outC, g.hidden, 1);
  const bn = frozenBn(g.outC, "backbone");
  return { conv: g.expand === 1 ? [depthwise, project, bn] : [convBn(g.hidden, g.inC, 1), depthwise, project, bn] };
}

/** Head convs: PyTorch's default Conv2d init (torchvision's DeepLab heads keep it), group "head". */
const headConv = (outC: number, inC: number, bias: boolean) => nn.convSpec(outC, inC, 1, { bias, group: "head" });

export function mobilenetDeeplabSpec(cfg: MobileNetConfig) {
  const blocks = blockGeometry(cfg.widthMult, cfg.outputStride);
  const features: readonly [ConvBn, ...InvertedResidualSpec[]] = [convBn(stemChannels(cfg.widthMult), 3, 3), ...blocks.map(invertedResidualSpec)];
  const last = blocks.at(-1)!.outC;
  return {
    features,
    // nn.Sequential(Conv2d, BatchNorm2d, ReLU, Conv2d): indices 0, 1, (2), 3.
    classifier: {
      "0": headConv(cfg.headChannels, last, false),
      "1": frozenBn(cfg.headChannels, "head"),
      "3": headConv(cfg.numClasses, cfg.headChannels, true),
    },
    aux_classifier: headConv(cfg.numClasses, blocks[AUX_FEATURE_INDEX - 1]!.outC, true),
  };
}

export type MobileNetDeeplabSpec = ReturnType<typeof mobilenetDeeplabSpec>;
export type MobileNetDeeplabParams = d.Declared<MobileNetDeeplabSpec>;
type ConvBnParams = d.Declared<ConvBn>;
type InvertedResidualParams = d.Declared<InvertedResidualSpec>;

// ---------------------------------------------------------------------------------------------
// Forward

const bn = (x: F32<4>, p: nn.BatchNormParams, ctx: NetworkContext) => nn.batchNorm2d(x, p, { mode: ctx.mode, thread: ctx.thread });

/** Conv (dense, k x k, padding (k - 1) / 2) -> BN -> ReLU6: torchvision's ConvBNReLU. */
const convBnRelu6 = (x: F32<4>, p: ConvBnParams, ctx: NetworkContext, stride: number) =>
  nn.relu6(bn(nn.conv(x, p[0], { stride, padding: (p[0].weight.shape[2]! - 1) / 2 }), p[1], ctx));

/** Depthwise 3x3 (padding = dilation keeps the size at stride 1) -> BN -> ReLU6. */
const depthwiseBnRelu6 = (x: F32<4>, p: ConvBnParams, ctx: NetworkContext, g: BlockGeometry) =>
  nn.relu6(bn(d.depthwiseConv2d(x, p[0].weight, undefined, { stride: g.stride, padding: g.dilation, dilation: g.dilation }), p[1], ctx));

/** The inverted residual: expand (t > 1), depthwise, linear projection (no activation), residual. */
export function invertedResidual(x: F32<4>, p: InvertedResidualParams, g: BlockGeometry, ctx: NetworkContext): F32<4> {
  const c = p.conv;
  const hidden = c.length === 4 ? convBnRelu6(x, c[0], ctx, 1) : x;
  const [dw, project, projectBn] = c.length === 4 ? [c[1], c[2], c[3]] : [c[0], c[1], c[2]];
  const out = bn(nn.conv(depthwiseBnRelu6(hidden, dw, ctx, g), project), projectBn, ctx);
  return g.residual ? d.add(x, out) : out;
}

export interface MobileNetOutputs {
  readonly main: F32<4>;
  readonly aux: F32<4>;
  /** features.17's output (the last 320-channel map at width 1). */
  readonly features: F32<4>;
}

/** DeepLab-MobileNetV2 forward: logits at the output stride, not upsampled. */
export function mobilenetDeeplab(image: F32<4>, p: MobileNetDeeplabParams, cfg: MobileNetConfig, ctx: NetworkContext): MobileNetOutputs {
  const geometry = blockGeometry(cfg.widthMult, cfg.outputStride);
  const [stem, ...blocks] = p.features;
  let x = d.withScope("features.0", () => convBnRelu6(image, stem, ctx, 2));
  let auxIn: F32<4> | undefined;
  blocks.forEach((block, i) => {
    x = d.withScope(`features.${i + 1}`, () => invertedResidual(x, block, geometry[i]!, ctx));
    if (i + 1 === AUX_FEATURE_INDEX) auxIn = x;
  });
  const h = p.classifier;
  const main = d.withScope("classifier", () => nn.conv(d.relu(bn(nn.conv(x, h["0"]), h["1"], ctx)), h["3"]));
  const aux = d.withScope("aux_classifier", () => nn.conv(auxIn!, p.aux_classifier));
  return { main, aux, features: x };
}

/** DeepLab-MobileNetV2 as a SegmentationNetwork (adapt/network.ts): heads main + aux. */
export function mobilenetNetwork(cfg: MobileNetConfig): SegmentationNetwork<MobileNetDeeplabSpec> {
  return {
    spec: mobilenetDeeplabSpec(cfg),
    heads: "main+aux",
    forward: (image, p, ctx) => mobilenetDeeplab(image, p, cfg, ctx),
    featureChannels: blockGeometry(cfg.widthMult, cfg.outputStride).at(-1)!.outC,
  };
}
