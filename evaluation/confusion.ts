// The confusion matrix and the IoU figures of the official `compute_iou.py` (docs §5).
//
//   hist[g, p] = #pixels with ground truth g and prediction p, over pixels with 0 <= g < n
//   IoU_c      = hist[c,c] / (sum_p hist[c,p] + sum_g hist[g,c] - hist[c,c])   (NaN when 0/0)
//   mIoU       = 100 * mean of the IoU_c that are not NaN
//
// One addition: a prediction outside 0..n-1 on a valid pixel (a 19-class model scored on the
// 13-class protocol predicting "wall", say) cannot go in an n x n matrix. The official code never
// meets this (its model has exactly n outputs); dropping such pixels would hide errors, so they are
// counted per ground-truth class in `missed` and added to that class's row sum: a false negative
// for the ground-truth class, a false positive for no class of the protocol. With every prediction
// in range, `missed` is all zero and the figures are exactly the official ones.

export interface Confusion {
  readonly numClasses: number;
  /** Row-major n x n, rows = ground truth, columns = prediction. Float64 so counts stay exact past 2^32. */
  readonly hist: Float64Array;
  /** Per ground-truth class: valid pixels whose prediction is outside the protocol. */
  readonly missed: Float64Array;
}

export function emptyConfusion(numClasses: number): Confusion {
  return { numClasses, hist: new Float64Array(numClasses * numClasses), missed: new Float64Array(numClasses) };
}

/** Add one image's pixels (gt and pred of equal length, class indices, 255 = ignore) in place. */
export function accumulate(c: Confusion, gt: Uint8Array, pred: Uint8Array): void {
  if (gt.length !== pred.length) {
    throw new Error(`accumulate: ${gt.length} label pixels but ${pred.length} predicted pixels`);
  }
  const n = c.numClasses;
  for (let i = 0; i < gt.length; i++) {
    const g = gt[i]!;
    if (g >= n) continue;
    const p = pred[i]!;
    if (p < n) c.hist[g * n + p]!++;
    else c.missed[g]!++;
  }
}

export function confusionOf(numClasses: number, gt: Uint8Array, pred: Uint8Array): Confusion {
  const c = emptyConfusion(numClasses);
  accumulate(c, gt, pred);
  return c;
}

export function mergeConfusions(a: Confusion, b: Confusion): Confusion {
  if (a.numClasses !== b.numClasses) throw new Error("mergeConfusions: different class counts");
  return {
    numClasses: a.numClasses,
    hist: a.hist.map((v, i) => v + b.hist[i]!),
    missed: a.missed.map((v, i) => v + b.missed[i]!),
  };
}

/** IoU per class; NaN for a class that appears in neither ground truth nor prediction. */
export function perClassIoU(c: Confusion): Float64Array {
  const n = c.numClasses;
  const iou = new Float64Array(n);
  for (let k = 0; k < n; k++) {
    let row = c.missed[k]!;
    let col = 0;
    for (let j = 0; j < n; j++) {
      row += c.hist[k * n + j]!;
      col += c.hist[j * n + k]!;
    }
    const tp = c.hist[k * n + k]!;
    iou[k] = tp / (row + col - tp); // 0/0 = NaN, as numpy
  }
  return iou;
}

/**
 * NumPy's float64 sum (pairwise summation: fewer than 8 values added in order; up to 128 in eight
 * interleaved partial sums combined as a tree; more split in halves), reproduced so that mIoU is
 * the same double NumPy prints, not one that differs in the last bit.
 */
export function numpySum(xs: ArrayLike<number>, start = 0, n = xs.length): number {
  if (n < 8) {
    let r = 0;
    for (let i = 0; i < n; i++) r += xs[start + i]!;
    return r;
  }
  if (n <= 128) {
    const r = [0, 1, 2, 3, 4, 5, 6, 7].map((j) => xs[start + j]!);
    let i = 8;
    for (; i < n - (n % 8); i += 8) for (let j = 0; j < 8; j++) r[j]! += xs[start + i + j]!;
    let res = r[0]! + r[1]! + (r[2]! + r[3]!) + (r[4]! + r[5]! + (r[6]! + r[7]!));
    for (; i < n; i++) res += xs[start + i]!;
    return res;
  }
  let half = Math.floor(n / 2);
  half -= half % 8;
  return numpySum(xs, start, half) + numpySum(xs, start + half, n - half);
}

/** 100 x numpy.nanmean(iou): NaNs count as 0 in the sum and not in the count; NaN if all are NaN. */
export function meanIoU(iou: Float64Array): number {
  const zeroed = iou.map((v) => (Number.isNaN(v) ? 0 : v));
  const count = iou.reduce((k, v) => (Number.isNaN(v) ? k : k + 1), 0);
  return count === 0 ? Number.NaN : (numpySum(zeroed) / count) * 100;
}

/** The official script prints round(mIoU, 2). */
export function formatPercent(v: number): string {
  return Number.isNaN(v) ? "nan" : v.toFixed(2);
}

/** Fraction of valid pixels predicted correctly (not part of the protocol; useful as a sanity figure). */
export function pixelAccuracy(c: Confusion): number {
  let correct = 0;
  let total = 0;
  for (let k = 0; k < c.numClasses; k++) {
    correct += c.hist[k * c.numClasses + k]!;
    total += c.missed[k]!;
    for (let j = 0; j < c.numClasses; j++) total += c.hist[k * c.numClasses + j]!;
  }
  return total === 0 ? Number.NaN : correct / total;
}
