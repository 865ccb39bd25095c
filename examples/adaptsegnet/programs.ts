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
  exportProgram(`eval-${variant}-${preset}`, `evaluation (main head, eval-mode BN) of ${variant}, ${preset}`, () =>
    buildEval(`eval-${variant}-${preset}`, configFor(variant, preset)));

/** The paper's GTA5 -> Cityscapes rows, and the beyond-the-paper ADVENT variants. */
export const gta5Cityscapes = (
  ["multi-level", "single-level", "source-only", "feature-level", "ls-gan", "vgg-single-level", "oracle", "advent", "minent"] as const
).map((v) => train(v, "gta5-cityscapes"));

export const synthiaCityscapes = (["multi-level", "source-only", "vgg-single-level"] as const).map((v) => train(v, "synthia-cityscapes"));

export const crossCity = (["multi-level"] as const).map((v) => train(v, "cityscapes-crosscity"));

/** The CPU demo: what `npm run demo` trains and evaluates. */
export const cpuDemo = (["source-only", "multi-level", "oracle"] as const).map((v) => train(v, "cpu-demo"));

export const evaluation = [evaluate("multi-level", "gta5-cityscapes"), evaluate("multi-level", "cpu-demo")];
