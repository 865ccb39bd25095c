// One AdaptSegNet training iteration of each variant of the paper, as a DSL program: the
// variant's network (DeepLab-v2 on ResNet or VGG) and settings, built by the generic
// adaptation step (adapt/step.ts: the order of the official script, adaptsegnet.md §3.4).
// Every hyperparameter of §3.1 is an option with the official default; the variants of the
// paper are settings.
//
// Two kinds of option. Those that change the graph (variant, sizes, classes, networks, GAN
// objective, BN mode, the optimizer's visits and eps placement, ignore label) are compiled in.
// The numeric ones (learning rates, momentum, weight decay, poly power, NUM_STEPS, loss weights,
// Adam's betas and eps: HYPERPARAMETER_KEYS) are elements of the program's hyperparameter vector
// (dsl/hyper.ts), read at run time, with the config's values as defaults: one compiled program
// trains with any of them (`npm run train -- --lambda-adv-target2 0.005`).

import type { Program, SpecTree } from "../../dsl/index";
import { buildEvaluation } from "../../adapt/evaluation";
import { HYPERPARAMETER_KEYS as ADAPT_KEYS, type HyperparameterKey, hyperparameterKeysFor } from "../../adapt/hyperparameters";
import type { SegmentationNetwork } from "../../adapt/network";
import { type DiscriminatorInput, type Objective, type StepSettings, buildAdaptationStep } from "../../adapt/step";
import { type DeepLabConfig, type VggConfig, deeplab, deeplabSpec, deeplabVgg, deeplabVggSpec } from "./networks";

export type Variant =
  | "multi-level"
  | "single-level"
  | "source-only"
  | "feature-level"
  | "ls-gan"
  | "vgg-single-level"
  | "oracle"
  | "advent"
  | "minent";

export type Gan = "Vanilla" | "LS";
export type BnMode = "official" | "frozen";

export interface TrainConfig {
  readonly variant: Variant;
  readonly numClasses: number;
  /** [H, W] of source and target images. */
  readonly sourceSize: readonly [number, number];
  readonly targetSize: readonly [number, number];
  readonly network: Omit<DeepLabConfig, "numClasses" | "heads">;
  readonly vgg: Omit<VggConfig, "numClasses">;
  /** ndf of the discriminators (64) and whether they upsample their output (the paper: yes; the code: no). */
  readonly ndf: number;
  readonly discriminatorUpsample: boolean;
  /**
   * Feature-level baseline: feed the discriminator layer4 features upsampled to the image size
   * (the paper's wording) or at their own output-stride-8 size (default: the upsampled map has
   * 2048 channels at full resolution, 7.5 GB at 1280x720, which no 12 GB GPU holds).
   */
  readonly featureUpsample: boolean;
  readonly learningRate: number;
  readonly learningRateD: number;
  readonly momentum: number;
  readonly weightDecay: number;
  readonly power: number;
  /** The poly schedule's horizon (NUM_STEPS); training stops earlier, at NUM_STEPS_STOP. */
  readonly numSteps: number;
  readonly lambdaSeg: number;
  readonly lambdaAdvTarget1: number;
  readonly lambdaAdvTarget2: number;
  /** MinEnt entropy weights (ADVENT): main and aux. */
  readonly lambdaEntMain: number;
  readonly lambdaEntAux: number;
  readonly gan: Gan;
  /**
   * official: train-mode BN (batch statistics), affine frozen, running statistics updated on
   * every forward pass (twice per iteration). frozen: eval-mode BN, statistics never change.
   */
  readonly bnMode: BnMode;
  /**
   * Reproduce the official optimizer's duplicate parameter visits (§1.9): backbone block convs
   * 3 times, downsample convs 4 times, with in-place weight decay. Off: clean PyTorch.
   */
  readonly duplicateVisits: boolean;
  readonly adamEps: "pytorch1" | "pytorch0.4";
  /** Adam's betas and eps value (the official (0.9, 0.99) and 1e-8); adamEps is where eps enters. */
  readonly adamBeta1: number;
  readonly adamBeta2: number;
  readonly adamEpsilon: number;
  readonly ignoreLabel: number;
}

/** The numeric options that are run-time values of the hyperparameter vector, not compiled in. */
export const HYPERPARAMETER_KEYS = ADAPT_KEYS satisfies readonly (keyof TrainConfig)[];

export type { HyperparameterKey };

/** The official defaults (§3.1) at the GTA5 -> Cityscapes sizes, ResNet-101, multi-level. */
export const OFFICIAL: TrainConfig = {
  variant: "multi-level",
  numClasses: 19,
  sourceSize: [720, 1280],
  targetSize: [512, 1024],
  network: { blocks: [3, 4, 23, 3], width: 64, asppBranches: 2 },
  vgg: { asppBranches: 2, shrink: 1 },
  ndf: 64,
  discriminatorUpsample: false,
  featureUpsample: false,
  learningRate: 2.5e-4,
  learningRateD: 1e-4,
  momentum: 0.9,
  weightDecay: 5e-4,
  power: 0.9,
  numSteps: 250000,
  lambdaSeg: 0.1,
  lambdaAdvTarget1: 0.0002,
  lambdaAdvTarget2: 0.001,
  lambdaEntMain: 0.001,
  lambdaEntAux: 0.0002,
  gan: "Vanilla",
  bnMode: "official",
  duplicateVisits: false,
  adamEps: "pytorch1",
  adamBeta1: 0.9,
  adamBeta2: 0.99,
  adamEpsilon: 1e-8,
  ignoreLabel: 255,
};

/** The settings that define each variant (README command lines of §3.2, and ADVENT §9). */
export const VARIANT_SETTINGS: { readonly [V in Variant]: Partial<TrainConfig> } = {
  "multi-level": {},
  // The official single-level run: the same script with aux weights 0 (§3.8).
  "single-level": { lambdaSeg: 0, lambdaAdvTarget1: 0, lambdaAdvTarget2: 0.001 },
  "source-only": {},
  "feature-level": { lambdaSeg: 0, lambdaAdvTarget1: 0, lambdaAdvTarget2: 0.001 },
  "ls-gan": { lambdaSeg: 0, lambdaAdvTarget1: 0, lambdaAdvTarget2: 0.01, gan: "LS" },
  "vgg-single-level": { lambdaSeg: 0, lambdaAdvTarget1: 0, lambdaAdvTarget2: 0.001 },
  oracle: {},
  // ADVENT fixed the ASPP head (all four branches).
  advent: { network: { blocks: [3, 4, 23, 3], width: 64, asppBranches: 4 } },
  minent: { network: { blocks: [3, 4, 23, 3], width: 64, asppBranches: 4 } },
};

/** The objective of each variant (adapt/step.ts). */
export function objectiveOf(cfg: TrainConfig): Objective {
  const discriminator = { ndf: cfg.ndf, upsample: cfg.discriminatorUpsample };
  const adversarial = (input: DiscriminatorInput): Objective => ({ kind: "adversarial", input, gan: cfg.gan, discriminator, featureUpsample: cfg.featureUpsample });
  switch (cfg.variant) {
    case "source-only":
      return { kind: "supervised", domain: "source" };
    case "oracle":
      return { kind: "supervised", domain: "target" };
    case "minent":
      return { kind: "entropy" };
    case "feature-level":
      return adversarial("features");
    case "advent":
      return adversarial("self-information");
    case "multi-level":
    case "single-level":
    case "ls-gan":
    case "vgg-single-level":
      return adversarial("softmax");
    default: {
      const never: never = cfg.variant;
      throw new Error(`unknown variant ${String(never)}`);
    }
  }
}

/** The head layout of a variant's segmentation network: the oracle is Res_Deeplab (one head). */
export const headsOf = (variant: Variant): DeepLabConfig["heads"] => (variant === "oracle" ? "single" : "multi");

/** DeepLab-v2 with a ResNet backbone as a SegmentationNetwork (adapt/network.ts). */
export function deeplabNetwork(cfg: DeepLabConfig): SegmentationNetwork<ReturnType<typeof deeplabSpec>> {
  return {
    spec: deeplabSpec(cfg),
    heads: cfg.heads === "multi" ? "main+aux" : "main",
    forward: (image, p, ctx) => deeplab(image, p, cfg, ctx),
    featureChannels: cfg.width * 32,
  };
}

/** DeepLab-v2 with a VGG-16 backbone (one head, no BN) as a SegmentationNetwork. */
export function vggNetwork(cfg: VggConfig): SegmentationNetwork<ReturnType<typeof deeplabVggSpec>> {
  return { spec: deeplabVggSpec(cfg), heads: "main", forward: (image, p) => ({ main: deeplabVgg(image, p, cfg) }) };
}

/** Calls `use` with the segmentation network a variant trains (each its own parameter tree). */
function withNetwork<R>(cfg: TrainConfig, use: <T extends SpecTree>(network: SegmentationNetwork<T>) => R): R {
  if (cfg.variant === "vgg-single-level") return use(vggNetwork({ ...cfg.vgg, numClasses: cfg.numClasses }));
  return use(deeplabNetwork({ ...cfg.network, numClasses: cfg.numClasses, heads: headsOf(cfg.variant) }));
}

/**
 * The hyperparameters a variant reads (adapt/hyperparameters.ts: hyperparameterKeysFor): only
 * those, so that a program has no element nothing uses.
 */
export function hyperparameterKeysOf(variant: Variant): readonly HyperparameterKey[] {
  const cfg = { ...OFFICIAL, variant };
  return withNetwork(cfg, (network) => hyperparameterKeysFor(objectiveOf(cfg).kind, network.heads));
}

/**
 * How many times the official optimizer's parameter list visits a backbone weight (§1.9):
 * 1 for the stem conv, 3 for bottleneck convs (listed under the layer, the block and the conv),
 * 4 for downsample convs (one more level, the Sequential), 1 for the heads.
 */
export function officialVisits(key: string): number {
  if (/^layer[1-4]\.\d+\.downsample\.0\.weight$/.test(key)) return 4;
  if (/^layer[1-4]\.\d+\.conv[123]\.weight$/.test(key)) return 3;
  return 1;
}

/** The step settings of a config: the variant's objective, its optimizer rules, its values. */
function settingsOf(cfg: TrainConfig): StepSettings {
  const vgg = cfg.variant === "vgg-single-level";
  return {
    numClasses: cfg.numClasses,
    sourceSize: cfg.sourceSize,
    targetSize: cfg.targetSize,
    ignoreLabel: cfg.ignoreLabel,
    bnMode: cfg.bnMode === "official" ? "train" : "eval",
    objective: objectiveOf(cfg),
    values: Object.fromEntries(HYPERPARAMETER_KEYS.map((k) => [k, cfg[k]])) as Record<HyperparameterKey, number>,
    // VGG's optimizer has one learning-rate group (§1.11); DeepLab's heads learn 10x faster.
    optimizer: { lrGroups: vgg ? "single" : "head-10x", ...(cfg.duplicateVisits ? { visits: officialVisits } : {}), adamEps: cfg.adamEps },
    scopeForwardPasses: !vgg,
    config: { ...cfg },
  };
}

/** Builds the training step of `cfg.variant` as one phase (all optimizers step at the end). */
export function buildTrainStep(name: string, cfg: TrainConfig): Program {
  return withNetwork(cfg, (network) => buildAdaptationStep(name, network, settingsOf(cfg)));
}

/** Evaluation: main logits in eval-mode BN (§5), for the official protocol. */
export function buildEval(name: string, cfg: TrainConfig): Program {
  return withNetwork(cfg, (network) => buildEvaluation(name, network, cfg.targetSize, { ...cfg }));
}
