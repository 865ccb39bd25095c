// Deterministic pseudo-random numbers: xoshiro128** (Blackman & Vigna) seeded through splitmix32.
//
// Why not Math.random: the sampler order, the augmentation draws and every synthetic image must be
// the same for the same seed, on any machine, so that a run can be resumed and a benchmark rebuilt
// byte for byte. All arithmetic is on uint32 with Math.imul, which is exact in JS.

export interface Rng {
  /** Uniform uint32. */
  nextU32(): number;
  /** Uniform in [0, 1), 32 bits of resolution. */
  next(): number;
  /** Uniform integer in [0, n). */
  int(n: number): number;
  /** Uniform in [lo, hi). */
  uniform(lo: number, hi: number): number;
  /** Standard normal (Box-Muller; one draw per call keeps the stream simple to reason about). */
  normal(): number;
}

/** splitmix32 step: a good mixer to turn one seed into well-spread state words. */
function splitmix32(state: { s: number }): number {
  state.s = (state.s + 0x9e3779b9) >>> 0;
  let z = state.s;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
  return (z ^ (z >>> 16)) >>> 0;
}

/** Mix several integers into one 32-bit seed, e.g. (run seed, image index, purpose). */
export function mixSeed(...parts: readonly number[]): number {
  const st = { s: 0x243f6a88 };
  let h = 0;
  for (const p of parts) {
    st.s = (st.s ^ (p >>> 0) ^ Math.imul(h, 0x27d4eb2d)) >>> 0;
    h = splitmix32(st);
  }
  return h;
}

const rotl = (x: number, k: number): number => ((x << k) | (x >>> (32 - k))) >>> 0;

export function createRng(seed: number): Rng {
  const st = { s: seed >>> 0 };
  let a = splitmix32(st);
  let b = splitmix32(st);
  let c = splitmix32(st);
  let d = splitmix32(st);
  if ((a | b | c | d) === 0) a = 1; // the all-zero state is a fixed point of xoshiro
  const nextU32 = (): number => {
    const result = Math.imul(rotl(Math.imul(b, 5) >>> 0, 7), 9) >>> 0;
    const t = (b << 9) >>> 0;
    c ^= a;
    d ^= b;
    b ^= c;
    a ^= d;
    c ^= t;
    d = rotl(d >>> 0, 11);
    a >>>= 0;
    b >>>= 0;
    c >>>= 0;
    return result;
  };
  const next = (): number => nextU32() / 4294967296;
  return {
    nextU32,
    next,
    // Multiply-shift keeps the bias below 2^-32 * n, irrelevant for list lengths and pixel counts.
    int: (n) => Math.floor(next() * n),
    uniform: (lo, hi) => lo + (hi - lo) * next(),
    normal: () => {
      const u = 1 - next(); // in (0, 1], so the log is finite
      const v = next();
      return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
    },
  };
}
