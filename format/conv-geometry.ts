// The index geometry of a 2-D convolution (and of a pooling window), along one axis, written
// once for the DSL's shape rules, the reference interpreter and the WGSL templates.
//
// Names along an axis: n input length, k kernel taps, s stride, p padding, d dilation; i an
// output index, u a tap index, h an input index. Output i at tap u reads input
//
//   h = i*s - p + u*d                                                   (the tap index)
//
// and reads zero where h falls outside [0, n). The input-gradient inverts it: input h receives
// output i through tap u when i*s = h + p - u*d, i.e. when h + p - u*d is a multiple of s. Its
// remainder mod s depends on h only through the phase h mod s, so the inputs of one phase
// (h = ph, ph + s, ph + 2s, ...) all take the same taps: the stride phases of the transposed
// convolution.
//
// The number functions serve the shape rules and the interpreter; the `...Wgsl` builders return
// WGSL i32 expressions with the geometry baked in as literals (their text is part of the
// generated kernels, so a change here shows in generated/ as a diff).

/**
 * Output length along an axis (PyTorch's rule): the last output's last tap must land inside the
 * padded input, (out-1)*s + d(k-1) <= n + 2p - 1, so out = floor((n + 2p - d(k-1) - 1)/s) + 1.
 */
export function convOutSize(n: number, k: number, s: number, p: number, d: number): number {
  return Math.floor((n + 2 * p - d * (k - 1) - 1) / s) + 1;
}

/**
 * Max-pool output length, PyTorch's `pooling_output_shape`: like convOutSize, rounding up in
 * ceil mode, except that the last window must start inside the input or the left padding
 * (if (out-1)*s >= n + p, one window is dropped).
 */
export function poolOutSize(n: number, k: number, s: number, p: number, d: number, ceilMode: boolean): number {
  const span = n + 2 * p - d * (k - 1) - 1;
  let out = (ceilMode ? Math.ceil(span / s) : Math.floor(span / s)) + 1;
  if (ceilMode && (out - 1) * s >= n + p) out--;
  return out;
}

/** The input index h = i*s - p + u*d that output i reads at tap u. */
export function tapIndex(i: number, s: number, p: number, u: number, d: number): number {
  return i * s - p + u * d;
}

/**
 * Whether every tap of every one of `outN` outputs lands inside an input of length n, so a
 * template needs no bounds test: the smallest tap index (i = u = 0) is -p >= 0 and the largest
 * (i = outN-1, u = k-1) is below n.
 */
export function tapsInside(n: number, outN: number, k: number, s: number, p: number, d: number): boolean {
  return tapIndex(0, s, p, 0, d) >= 0 && tapIndex(outN - 1, s, p, k - 1, d) < n;
}

/** WGSL of the window origin i*s - p: the tap index at u = 0, shared by all taps of output i. */
export function windowOriginWgsl(i: string, s: number, p: number): string {
  return `${i} * ${s}i - ${p}i`;
}

/** WGSL of the tap index from the window origin: h = origin + u*d. */
export function tapFromOriginWgsl(origin: string, u: string, d: number): string {
  return `${origin} + ${u} * ${d}i`;
}

/** WGSL of a pooling window's tap index h = i*s - p + u (dilation 1, written without the factor). */
export function poolTapWgsl(i: string, s: number, p: number, u: string): string {
  return `${windowOriginWgsl(i, s, p)} + ${u}`;
}

/** WGSL of the tap index h = i*s - p + u*d in one expression. */
export function tapIndexWgsl(i: string, s: number, p: number, u: string, d: number): string {
  return tapFromOriginWgsl(windowOriginWgsl(i, s, p), u, d);
}

/**
 * WGSL of the tap offset u*d - p: the tap index less i*s. Where one invocation keeps a tap and
 * walks over outputs (the weight-gradient), the offset is computed once per tap.
 */
export function tapOffsetWgsl(u: string, d: number, p: number): string {
  return `${u} * ${d}i - ${p}i`;
}

/** WGSL of the tap index from the tap offset: h = i*s + offset. */
export function tapFromOffsetWgsl(i: string, s: number, offset: string): string {
  return `${i} * ${s}i + ${offset}`;
}

/**
 * WGSL of i*s = h + p - u*d: the tap index inverted, the stride multiple of the output that
 * input h meets at tap u (an output only when it is a multiple of s in [0, s*outN)).
 */
export function tapInverseWgsl(h: string, p: number, u: string, d: number): string {
  return `${h} + ${p}i - ${u} * ${d}i`;
}

/** WGSL of the output i = (i*s) / s, exact once the stride multiple is known to divide. */
export function outputOfTapWgsl(multiple: string, s: number): string {
  return `${multiple} / ${s}i`;
}

/** Inputs in a stride phase: h = ph + m*s for m in [0, ceil(n/s)) (the first phase's count). */
export function phaseLength(n: number, s: number): number {
  return Math.ceil(n / s);
}

/** WGSL of the m-th input of phase ph: h = ph + s*m (`m` a parenthesised or atomic expression). */
export function phasePositionWgsl(ph: string, s: number, m: string): string {
  return `${ph} + ${s}i * ${m}`;
}

/** Whether tap u reaches an output from the inputs of phase ph: (ph + p - u*d) mod s = 0. */
export function tapHitsPhase(ph: number, s: number, p: number, u: number, d: number): boolean {
  return mod(ph + p - u * d, s) === 0;
}

/**
 * WGSL test that tap u reaches no output from phase ph, the negation of tapHitsPhase. WGSL's %
 * keeps the dividend's sign, so the remainder is brought into [0, s) by adding s once more.
 */
export function tapMissesPhaseWgsl(ph: string, s: number, p: number, u: string, d: number): string {
  return `((${tapInverseWgsl(ph, p, u, d)}) % ${s}i + ${s}i) % ${s}i != 0i`;
}

/** For each phase ph in [0, s), the taps u in [0, k) that reach an output (tapHitsPhase). */
export function phaseTaps(s: number, k: number, p: number, d: number): number[][] {
  const taps = Array.from({ length: k }, (_, u) => u);
  return Array.from({ length: s }, (_, ph) => taps.filter((u) => tapHitsPhase(ph, s, p, u, d)));
}

/**
 * The spacing of a phase's taps: u*d = ph + p (mod s) holds for u in one residue class mod
 * s / gcd(s, d), so a phase's taps are u0, u0 + step, u0 + 2*step, ... (phaseTaps lists them).
 */
export function phaseTapStep(s: number, d: number): number {
  return s / gcd(s, d);
}

/** a mod b in [0, b) for b > 0 (JavaScript's % keeps the dividend's sign). */
function mod(a: number, b: number): number {
  return ((a % b) + b) % b;
}

function gcd(a: number, b: number): number {
  return b === 0 ? a : gcd(b, a % b);
}
