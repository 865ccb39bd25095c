// Deterministic initial values of parameters and state, from the InitSpec each tensor carries.
//
// One generator for every stage: the DSL's reference runs (dsl/init.ts), the trainer's first
// step (train/slots.ts) and gradcheck draw from it, so a run started on the GPU and a DSL-side
// reference begin from the same parameters. It lives in format/ because the runtime side must
// not import the DSL. scripts/parity/generator.py is the same generator in numpy.
//
//   stream(seed, name) = mulberry32(fnv1a32(utf8(name)) ^ imul(seed, 0x9e3779b9))
//
// Each tensor draws from its own stream, so a value never depends on declaration order. The
// generator is mulberry32: 32-bit state, one 32-bit output per step, easy to write exactly in
// any language. Values are drawn in double and rounded once to the tensor's dtype, as the GPU
// stores them.

import type { InitSpec, TensorSlot } from "./module.js";

/** FNV-1a over the UTF-8 bytes of `s`: a stable 32-bit hash of a tensor name. */
export function fnv1a32(s: string): number {
  let h = 0x811c9dc5;
  for (const byte of new TextEncoder().encode(s)) {
    h ^= byte;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

/** mulberry32: returns a function giving the next uint32 of the stream. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  };
}

/**
 * The stream of one tensor: the run's seed mixed with the hash of the tensor's name. The seed is
 * multiplied by the odd golden-ratio constant 0x9e3779b9 (Fibonacci hashing), which spreads a
 * small seed over all 32 bits before it meets the name's hash.
 */
export function streamFor(seed: number, name: string): () => number {
  return mulberry32((fnv1a32(name) ^ Math.imul(seed >>> 0, 0x9e3779b9)) >>> 0);
}

/**
 * `n` draws of `init` from `next`, in double precision. A uniform in (0, 1) is
 * (u + 0.5) / 2^32: never exactly 0, so log(u) below is finite.
 */
export function drawInit(init: InitSpec, n: number, next: () => number): Float64Array {
  const out = new Float64Array(n);
  const u01 = () => (next() + 0.5) / 4294967296;
  switch (init.kind) {
    case "constant":
      out.fill(init.value);
      return out;
    case "uniform":
      for (let i = 0; i < n; i++) out[i] = init.low + (init.high - init.low) * u01();
      return out;
    case "convDefault": {
      // PyTorch's Conv2d default: U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
      const bound = 1 / Math.sqrt(init.fanIn);
      for (let i = 0; i < n; i++) out[i] = -bound + 2 * bound * u01();
      return out;
    }
    case "normal":
      // Box-Muller, the cosine branch only: one normal per two uniforms,
      // mean + std * sqrt(-2 ln u1) * cos(2 pi u2).
      for (let i = 0; i < n; i++) {
        const u1 = u01();
        const u2 = u01();
        out[i] = init.mean + init.std * Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
      }
      return out;
    default: {
      const never: never = init;
      throw new Error(`unknown init ${JSON.stringify(never)}`);
    }
  }
}

const count = (shape: readonly number[]) => shape.reduce((n, d) => n * d, 1);

/**
 * The first value of a param or state slot under `seed`, typed for the slot's dtype: f32 slots
 * round each draw to float32, integer slots to the nearest integer. A slot without an init
 * spec starts at zero (integer state such as a step counter).
 */
export function initialValue(slot: TensorSlot, seed: number): Float32Array | Int32Array {
  const n = count(slot.shape);
  if (slot.init === undefined) return slot.dtype === "f32" ? new Float32Array(n) : new Int32Array(n);
  const values = drawInit(slot.init, n, streamFor(seed, slot.name));
  return slot.dtype === "f32" ? Float32Array.from(values) : Int32Array.from(values, (v) => Math.round(v));
}
