// Presets: the paper's benchmark settings, and a configuration small enough for a CPU.

import { OFFICIAL, type TrainConfig, VARIANT_SETTINGS, type Variant } from "./train";

export type PresetName = "gta5-cityscapes" | "synthia-cityscapes" | "cityscapes-crosscity" | "cpu-demo";

export const PRESETS: { readonly [P in PresetName]: Partial<TrainConfig> } = {
  // GTA5 (1280x720) -> Cityscapes (1024x512), 19 classes: the official script's defaults.
  "gta5-cityscapes": {},
  // SYNTHIA-RAND-CITYSCAPES (1280x760) -> Cityscapes, 16 classes (13-class evaluation).
  "synthia-cityscapes": { numClasses: 16, sourceSize: [760, 1280] },
  // Cityscapes -> NTHU Cross-City (Rome, Rio, Tokyo, Taipei), 13 classes. The paper sets
  // lambda_adv = 0.0005 for this benchmark, for each adapted level.
  "cityscapes-crosscity": { numClasses: 13, sourceSize: [512, 1024], lambdaAdvTarget2: 0.0005, lambdaAdvTarget1: 0.0005 },
  // Small enough to train on a 2-core CPU through lavapipe in minutes: blocks [1,1,1,1],
  // width 8 (stem 8 ch, layer4 256 ch), discriminators ndf 16, 64x128 crops, 19 classes.
  // numSteps = the demo's 1500 iterations (npm run demo): the poly schedule decays over the
  // whole short run, so the final models settle (the official run stops at 60% of its
  // schedule, after 150k iterations); the loss weights are the official ones. See docs/demo.md.
  "cpu-demo": {
    sourceSize: [64, 128],
    targetSize: [64, 128],
    network: { blocks: [1, 1, 1, 1], width: 8, asppBranches: 2 },
    vgg: { asppBranches: 2, shrink: 8 },
    ndf: 16,
    learningRate: 2.5e-3,
    numSteps: 1500,
  },
};

/** The full configuration of a variant under a preset: official defaults, then preset, then variant. */
export function configFor(variant: Variant, preset: PresetName, overrides: Partial<TrainConfig> = {}): TrainConfig {
  const v = VARIANT_SETTINGS[variant];
  const p = PRESETS[preset];
  // A preset's network size wins over the variant's (ADVENT keeps its 4 ASPP branches).
  const network = { ...OFFICIAL.network, ...v.network, ...(p.network ?? {}), ...(v.network ? { asppBranches: v.network.asppBranches } : {}) };
  return { ...OFFICIAL, ...v, ...p, ...overrides, network: { ...network, ...(overrides.network ?? {}) }, variant };
}
