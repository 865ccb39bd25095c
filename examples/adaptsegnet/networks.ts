// The networks of AdaptSegNet, written in the DSL (spec: ../shared/docs/adaptsegnet.md §1-§2).
//
// Parameter paths equal the official PyTorch state-dict keys (`layer3.22.bn3.running_var`,
// `layer6.conv2d_list.1.bias`, `conv1.weight` of the discriminator), so checkpoints move
// between the two with no renaming. Depth and width are parameters: the paper's ResNet-101 is
// blocks [3, 4, 23, 3] at width 64, and small configurations use the same code.

import * as d from "../../dsl/index";
import type { F32, StateThread } from "../../dsl/index";
import * as nn from "../../dsl/nn";

// ---------------------------------------------------------------------------------------------
// DeepLab-v2, ResNet backbone (Caffe-style bottlenecks), two ASPP heads.

export interface DeepLabConfig {
  /** Bottlenecks per layer; ResNet-101 is [3, 4, 23, 3]. */
  readonly blocks: readonly [number, number, number, number];
  /** Planes of layer1 (64 in ResNet-101); layers 2-4 use 2x, 4x, 8x; the stem outputs this many. */
  readonly width: number;
  readonly numClasses: number;
  /**
   * ASPP branches summed: 2 is the official code (its forward returns after the second
   * branch, and the released checkpoints depend on it); 4 is the fixed head (ADVENT).
   */
  readonly asppBranches: 2 | 4;
  /** Heads: both (multi-level: aux on layer3, main on layer4) or the main head only. */
  readonly heads: "multi" | "single";
}

export const RESNET101: Omit<DeepLabConfig, "numClasses"> = { blocks: [3, 4, 23, 3], width: 64, asppBranches: 2, heads: "multi" };

/** Backbone convs: no bias, N(0, 0.01) (the constructor's init), the 1x learning-rate group. */
const backboneConv = (outC: number, inC: number, k: number) => nn.convSpec(outC, inC, k, { init: d.normal(0.01), group: "backbone" });
/** Every BN's affine parameters are frozen (requires_grad=False in the official code). */
const frozenBn = (c: number) => nn.batchNormSpec(c, { affineTrainable: false, group: "backbone" });

const ASPP_DILATIONS = [6, 12, 18, 24] as const;

/** Classifier_Module: four 3x3 convs in -> classes, dilation = padding = 6, 12, 18, 24, with bias. */
function asppSpec(inC: number, classes: number) {
  return {
    conv2d_list: ASPP_DILATIONS.map(() =>
      nn.convSpec(classes, inC, 3, { bias: true, init: d.normal(0.01), biasInit: d.convDefault(inC * 9), group: "head" }),
    ),
  };
}

function bottleneckSpec(inC: number, planes: number, downsample: boolean) {
  return {
    conv1: backboneConv(planes, inC, 1),
    bn1: frozenBn(planes),
    conv2: backboneConv(planes, planes, 3),
    bn2: frozenBn(planes),
    conv3: backboneConv(planes * 4, planes, 1),
    bn3: frozenBn(planes * 4),
    downsample: downsample ? ([backboneConv(planes * 4, inC, 1), frozenBn(planes * 4)] as const) : undefined,
  };
}

export interface LayerGeometry {
  readonly planes: number;
  readonly stride: number;
  readonly dilation: number;
}

/** layer1..4: planes w, 2w, 4w, 8w; stride 2 only in layer2; dilation 2 in layer3, 4 in layer4. */
export function layerGeometry(width: number): readonly LayerGeometry[] {
  return [
    { planes: width, stride: 1, dilation: 1 },
    { planes: width * 2, stride: 2, dilation: 1 },
    { planes: width * 4, stride: 1, dilation: 2 },
    { planes: width * 8, stride: 1, dilation: 4 },
  ];
}

function layerSpec(inC: number, g: LayerGeometry, blocks: number) {
  // Block 0 has the downsample branch: its stride, channels or dilation differ (§1.4).
  return Array.from({ length: blocks }, (_, b) => bottleneckSpec(b === 0 ? inC : g.planes * 4, g.planes, b === 0));
}

export function deeplabSpec(cfg: DeepLabConfig) {
  const [l1, l2, l3, l4] = layerGeometry(cfg.width) as [LayerGeometry, LayerGeometry, LayerGeometry, LayerGeometry];
  const w = cfg.width;
  const base = {
    conv1: backboneConv(w, 3, 7),
    bn1: frozenBn(w),
    layer1: layerSpec(w, l1, cfg.blocks[0]),
    layer2: layerSpec(l1.planes * 4, l2, cfg.blocks[1]),
    layer3: layerSpec(l2.planes * 4, l3, cfg.blocks[2]),
    layer4: layerSpec(l3.planes * 4, l4, cfg.blocks[3]),
  };
  return cfg.heads === "multi"
    ? { ...base, layer5: asppSpec(l3.planes * 4, cfg.numClasses), layer6: asppSpec(l4.planes * 4, cfg.numClasses) }
    : { ...base, layer5: asppSpec(l4.planes * 4, cfg.numClasses) };
}

export type DeepLabSpec = ReturnType<typeof deeplabSpec>;
export type DeepLabParams = d.Declared<DeepLabSpec>;
type BottleneckParams = d.Declared<ReturnType<typeof bottleneckSpec>>;
type AsppParams = d.Declared<ReturnType<typeof asppSpec>>;

/** How BN behaves in a forward pass, and where running statistics are threaded. */
export interface BnContext {
  readonly mode: nn.BatchNormMode;
  readonly thread: StateThread;
}

const bn = (x: F32<4>, p: nn.BatchNormParams, ctx: BnContext) => nn.batchNorm2d(x, p, { mode: ctx.mode, thread: ctx.thread });

/**
 * The Caffe/ResNet-v1 bottleneck of DeepLab-v2: stride on the first 1x1, dilation = padding on
 * the 3x3, residual (through the downsample branch on block 0), ReLU after the sum.
 */
export function bottleneck(x: F32<4>, p: BottleneckParams, g: { stride: number; dilation: number }, ctx: BnContext): F32<4> {
  let out = d.relu(bn(nn.conv(x, p.conv1, { stride: g.stride }), p.bn1, ctx));
  out = d.relu(bn(nn.conv(out, p.conv2, { padding: g.dilation, dilation: g.dilation }), p.bn2, ctx));
  out = bn(nn.conv(out, p.conv3), p.bn3, ctx);
  const residual = p.downsample ? bn(nn.conv(x, p.downsample[0], { stride: g.stride }), p.downsample[1], ctx) : x;
  return d.relu(d.add(out, residual));
}

/** The ASPP head: the sum of its first `branches` dilated convs (2 in the official code). */
export function aspp(x: F32<4>, p: AsppParams, branches: 2 | 4): F32<4> {
  const outs = p.conv2d_list.slice(0, branches).map((conv, i) =>
    nn.conv(x, conv, { padding: ASPP_DILATIONS[i]!, dilation: ASPP_DILATIONS[i]! }),
  );
  return outs.reduce((a, b) => d.add(a, b));
}

export interface DeepLabOutputs {
  /** Auxiliary logits (layer5 on layer3); undefined for a single-head network. */
  readonly aux: F32<4> | undefined;
  /** Main logits (layer6 on layer4, or layer5 for a single head). */
  readonly main: F32<4>;
  /** layer4's output (for feature-level adaptation). */
  readonly features: F32<4>;
}

/** DeepLab-v2 forward: stem, layer1..4, heads; logits at output stride 8, not upsampled. */
export function deeplab(image: F32<4>, p: DeepLabParams, cfg: DeepLabConfig, ctx: BnContext): DeepLabOutputs {
  let x = d.relu(bn(nn.conv(image, p.conv1, { stride: 2, padding: 3 }), p.bn1, ctx));
  x = d.maxPool2d(x, { kernel: 3, stride: 2, padding: 1, ceilMode: true });
  const geometry = layerGeometry(cfg.width);
  const layers = [p.layer1, p.layer2, p.layer3, p.layer4] as const;
  let layer3: F32<4> | undefined;
  layers.forEach((blocks, l) => {
    const g = geometry[l]!;
    blocks.forEach((block, b) => {
      x = d.withScope(`layer${l + 1}.${b}`, () => bottleneck(x, block, { stride: b === 0 ? g.stride : 1, dilation: g.dilation }, ctx));
    });
    if (l === 2) layer3 = x;
  });
  if ("layer6" in p) {
    const aux = d.withScope("layer5", () => aspp(layer3!, p.layer5, cfg.asppBranches));
    const main = d.withScope("layer6", () => aspp(x, p.layer6, cfg.asppBranches));
    return { aux, main, features: x };
  }
  return { aux: undefined, main: d.withScope("layer5", () => aspp(x, p.layer5, cfg.asppBranches)), features: x };
}

// ---------------------------------------------------------------------------------------------
// DeepLab-v2, VGG-16 backbone (§1.11): torchvision vgg16 features without pool4 and pool5,
// conv5 dilated by 2, fc6/fc7 as dilated 3x3 convs, one ASPP head named `classifier`.

/** The conv layers of the VGG trunk by torchvision index: [index, in, out, dilation]. */
const VGG_CONVS: readonly (readonly [number, number, number, number])[] = [
  [0, 3, 64, 1], [2, 64, 64, 1],
  [5, 64, 128, 1], [7, 128, 128, 1],
  [10, 128, 256, 1], [12, 256, 256, 1], [14, 256, 256, 1],
  [17, 256, 512, 1], [19, 512, 512, 1], [21, 512, 512, 1],
  [23, 512, 512, 2], [25, 512, 512, 2], [27, 512, 512, 2],
  [29, 512, 1024, 4], [31, 1024, 1024, 4],
];
/** 2x2 stride-2 pools follow these conv indices (pool1..pool3; pool4 and pool5 are removed). */
const VGG_POOL_AFTER = new Set([2, 7, 14]);

export interface VggConfig {
  readonly numClasses: number;
  readonly asppBranches: 2 | 4;
  /** Width divisor for small configurations (1 = VGG-16). */
  readonly shrink: number;
}

export function deeplabVggSpec(cfg: VggConfig) {
  const ch = (c: number) => (c === 3 ? 3 : Math.max(1, Math.floor(c / cfg.shrink)));
  const features: Record<string, nn.ConvSpec> = {};
  for (const [i, inC, outC] of VGG_CONVS) {
    features[String(i)] = nn.convSpec(ch(outC), ch(inC), 3, { bias: true, group: "backbone" });
  }
  return { features, classifier: asppSpec(ch(1024), cfg.numClasses) };
}

export function deeplabVgg(image: F32<4>, p: d.Declared<ReturnType<typeof deeplabVggSpec>>, cfg: VggConfig): F32<4> {
  let x = image;
  for (const [i, , , dil] of VGG_CONVS) {
    const conv = p.features[String(i)]!;
    x = d.relu(nn.conv(x, conv, { padding: dil, dilation: dil }));
    if (VGG_POOL_AFTER.has(i)) x = d.maxPool2d(x, { kernel: 2, stride: 2 });
  }
  return aspp(x, p.classifier, cfg.asppBranches);
}

// ---------------------------------------------------------------------------------------------
// FCDiscriminator (§2): adapt/discriminator.ts, shared by every network's adaptation step.

export {
  type FCDiscriminatorConfig as DiscriminatorConfig,
  type FCDiscriminatorParams as DiscriminatorParams,
  fcDiscriminator as discriminator,
  fcDiscriminatorSpec as discriminatorSpec,
} from "../../adapt/discriminator";
