// The programs `npm run codegen` compiles: every AdaptSegNet variant under the presets it is
// trained with. Each export is found by its type (ProgramExport), not its name.

import { exportProgram } from "../../dsl/index";
import { type PresetName, configFor } from "./presets";
import { type Variant, buildEval, buildTrainStep } from "./train";

const describe: { readonly [V in Variant]: string } = {
  "multi-level": "multi-level output-space adaptation (aux + main heads, two discriminators)",
  "single-level": "single-level output-space adaptation (main head)",
  "source-only": "source-only baseline: no target forward pass",
  "feature-level": "feature-level adaptation baseline (discriminator on upsampled layer4 features)",
  "ls-gan": "single-level adaptation with the LS-GAN objective",
  "vgg-single-level": "VGG-16 DeepLab-v2, single-level adaptation",
  oracle: "oracle: supervised on the target domain",
  advent: "AdvEnt: discriminators on weighted self-information (ADVENT)",
  minent: "MinEnt: entropy minimisation on the target (ADVENT)",
};

const train = (variant: Variant, preset: PresetName) =>
  exportProgram(`${variant}-${preset}`, `${describe[variant]}, ${preset}`, () => buildTrainStep(`${variant}-${preset}`, configFor(variant, preset)));

const evaluate = (variant: Variant, preset: PresetName) =>
  exportProgram(`eval-${variant}-${preset}`, `evaluation (main head, eval-mode BN) of the ${variant} network, ${preset}`, () =>
    buildEval(`eval-${variant}-${preset}`, configFor(variant, preset)));

/** The paper's GTA5 -> Cityscapes rows, and the beyond-the-paper ADVENT variants. */
export const gta5Cityscapes = (
  ["multi-level", "single-level", "source-only", "feature-level", "ls-gan", "vgg-single-level", "oracle", "advent", "minent"] as const
).map((v) => train(v, "gta5-cityscapes"));

export const synthiaCityscapes = (["multi-level", "source-only", "vgg-single-level"] as const).map((v) => train(v, "synthia-cityscapes"));

export const crossCity = (["multi-level"] as const).map((v) => train(v, "cityscapes-crosscity"));

/** The CPU demo: what `npm run demo` trains and evaluates. */
export const cpuDemo = (["source-only", "multi-level", "oracle"] as const).map((v) => train(v, "cpu-demo"));

/**
 * One evaluation program per segmentation network and preset, named after the first variant
 * that trains it: the runtime picks the one whose parameters a checkpoint covers exactly
 * (train/programs.ts, chooseEvalProgram), so every trained program has exactly one.
 *   eval-multi-level-*:      DeeplabMulti, two-branch ASPP heads (multi-level, single-level,
 *                            source-only, feature-level, ls-gan)
 *   eval-advent-*:           DeeplabMulti with four-branch heads (advent, minent)
 *   eval-oracle-*:           Res_Deeplab, one head on layer4 (oracle)
 *   eval-vgg-single-level-*: DeeplabVGG (vgg-single-level)
 */
export const evaluation = [
  ...(["multi-level", "advent", "oracle", "vgg-single-level"] as const).map((v) => evaluate(v, "gta5-cityscapes")),
  ...(["multi-level", "vgg-single-level"] as const).map((v) => evaluate(v, "synthia-cityscapes")),
  evaluate("multi-level", "cityscapes-crosscity"),
  ...(["multi-level", "oracle"] as const).map((v) => evaluate(v, "cpu-demo")),
];
