// One evaluation step as the official script does it (docs §5, step 3-4): the main head's logits
// at network resolution -> upsampled argmax at label resolution -> into the confusion matrix.
// The trainer calls this per validation image and `summarize` once at the end.

import type { Confusion } from "./confusion";
import { accumulate } from "./confusion";
import { upsampleArgmax } from "./upsample_argmax";

export interface Logits {
  /** C x h x w, row-major: the main (layer6) head only; the auxiliary head is not evaluated. */
  readonly data: Float32Array;
  readonly classes: number;
  readonly height: number;
  readonly width: number;
}

/**
 * Score one image: `label` holds the protocol's class indices (255 = ignore) at labelWidth x
 * labelHeight. The logits' classes must be the protocol's classes, in order. Returns the
 * prediction map, for writing or colorizing.
 */
export function accumulateLogits(conf: Confusion, logits: Logits, label: Uint8Array, labelWidth: number, labelHeight: number): Uint8Array {
  if (label.length !== labelWidth * labelHeight) {
    throw new Error(`accumulateLogits: label has ${label.length} pixels, ${labelWidth}x${labelHeight} expected`);
  }
  const pred = upsampleArgmax(logits.data, logits.classes, logits.height, logits.width, labelHeight, labelWidth);
  accumulate(conf, label, pred);
  return pred;
}
