// What a segmentation network must provide to be trained and evaluated by the adaptation step
// builders (step.ts, evaluation.ts): its parameter tree and its forward function. Any network
// written in the DSL qualifies; DeepLab-v2 (ResNet-101 and VGG-16) in examples/adaptsegnet/ is
// one instance, and docs/your-model.md writes another from an empty file.

import type { Declared, F32, SpecTree, StateThread } from "../dsl/index";

/** How a forward pass runs: BN on batch statistics ("train") or running ones ("eval"). */
export interface NetworkContext {
  readonly mode: "train" | "eval";
  /** Where BN's running-statistics updates are collected (the step stores them). */
  readonly thread: StateThread;
}

/**
 * Logits at the network's own output stride (the builders upsample them bilinearly to the
 * label size, align_corners=True, as AdaptSegNet does), and optionally an auxiliary head and the
 * features feature-level adaptation discriminates.
 */
export interface NetworkOutputs {
  readonly main: F32<4>;
  readonly aux?: F32<4> | undefined;
  readonly features?: F32<4>;
}

export interface SegmentationNetwork<T extends SpecTree = SpecTree> {
  /**
   * The parameter tree, declared as model "G": its keys are the state-dict keys checkpoints
   * use; entries in group "head" train with 10x the learning rate (DeepLab's classifier rule).
   */
  readonly spec: T;
  /** Whether forward returns an auxiliary head (multi-level adaptation discriminates both). */
  readonly heads: "main" | "main+aux";
  readonly forward: (image: F32<4>, params: Declared<T>, ctx: NetworkContext) => NetworkOutputs;
  /** Channels of `features`, when feature-level adaptation is used. */
  readonly featureChannels?: number;
}
