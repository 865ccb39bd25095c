// The order in which training draws samples, as the official code does it (docs §3.3): the id list
// is repeated ceil(maxIters / length) times and the whole repeated list is shuffled once; training
// then walks it front to back and never restarts. Unlike the official code (which never seeds),
// the shuffle here is a function of the seed, so iteration i always sees the same sample and a run
// can resume at any i by indexing the order.

import { createRng } from "./prng";

export interface SampleOrder {
  /** Dataset indices, one per draw. */
  readonly order: Uint32Array;
  readonly datasetLength: number;
  readonly repeats: number;
}

/** ceil(maxIters / length) copies of 0..length-1, Fisher-Yates shuffled with a seeded PRNG. */
export function repeatedShuffle(datasetLength: number, maxIters: number, seed: number): SampleOrder {
  if (!Number.isInteger(datasetLength) || datasetLength <= 0) {
    throw new Error(`repeatedShuffle: dataset length must be a positive integer, got ${datasetLength}`);
  }
  const repeats = Math.max(1, Math.ceil(maxIters / datasetLength));
  const order = new Uint32Array(repeats * datasetLength);
  for (let i = 0; i < order.length; i++) order[i] = i % datasetLength;
  const rng = createRng(seed);
  for (let i = order.length - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    const t = order[i]!;
    order[i] = order[j]!;
    order[j] = t;
  }
  return { order, datasetLength, repeats };
}

/** The dataset index drawn at draw number `position` (0-based); past the end the order wraps. */
export function sampleAt(s: SampleOrder, position: number): number {
  return s.order[position % s.order.length]!;
}

/** A resumable position in the order: `take` returns the next indices and the advanced cursor. */
export interface SampleCursor {
  readonly sampleOrder: SampleOrder;
  readonly position: number;
}

export function cursorAt(sampleOrder: SampleOrder, position: number): SampleCursor {
  return { sampleOrder, position };
}

export function take(c: SampleCursor, count: number): { readonly indices: number[]; readonly next: SampleCursor } {
  const indices: number[] = [];
  for (let k = 0; k < count; k++) indices.push(sampleAt(c.sampleOrder, c.position + k));
  return { indices, next: { sampleOrder: c.sampleOrder, position: c.position + count } };
}

/** The identity order 0..length-1, once: evaluation walks a split in list order. */
export function sequentialOrder(datasetLength: number): SampleOrder {
  const order = new Uint32Array(datasetLength);
  for (let i = 0; i < datasetLength; i++) order[i] = i;
  return { order, datasetLength, repeats: 1 };
}
