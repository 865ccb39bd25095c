// The evaluation program of a segmentation network: main logits in eval-mode BN (docs:
// adaptsegnet.md §5), for the official protocol; the evaluator upsamples and arg-maxes them.
// It keeps the evaluation-program contract (format/program-contract.ts).

import * as d from "../dsl/index";
import type { Program, SpecTree, Tensor } from "../dsl/index";
import type { SegmentationNetwork } from "./network";

/** One phase "predict": input image [1,3,H,W], outputs logits (and aux_logits with an auxiliary head). */
export function buildEvaluation<T extends SpecTree>(name: string, network: SegmentationNetwork<T>, size: readonly [number, number], config: Readonly<Record<string, unknown>>): Program {
  const image = d.input("image", [1, 3, size[0], size[1]], "f32");
  const thread = new d.StateThread();
  const G = d.declareModel("G", network.spec);
  const out = network.forward(image, G.p, { mode: "eval", thread });
  const outputs: Record<string, Tensor> = out.aux === undefined ? { logits: out.main } : { logits: out.main, aux_logits: out.aux };
  return d.defineProgram({ name, params: [...G.entries], phases: [{ name: "predict", outputs, updates: {} }], config: { ...config } });
}
