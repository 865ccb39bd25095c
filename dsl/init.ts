// Deterministic initial values for declared tensors.
//
// Each tensor draws from its own stream, seeded by (seed, tensor name), so a value never
// depends on declaration order and any tool can reproduce it (scripts/ has the same generator
// in Python for the PyTorch parity fixtures). The generator is mulberry32: 32-bit state, one
// 32-bit output per step, easy to write exactly in any language.

import { numel } from "./ir";
import { type Init, type ParamEntry } from "./params";

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

/** The stream of one tensor: seed mixed with the hash of its name. */
export function streamFor(seed: number, name: string): () => number {
  return mulberry32((fnv1a32(name) ^ Math.imul(seed >>> 0, 0x9e3779b9)) >>> 0);
}

/** Draws `n` values of an init distribution from `next` (uniform in (0,1) is (u + 0.5) / 2^32). */
export function drawInit(init: Init, n: number, next: () => number): Float64Array {
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
      const bound = 1 / Math.sqrt(init.fanIn);
      for (let i = 0; i < n; i++) out[i] = -bound + 2 * bound * u01();
      return out;
    }
    case "normal":
      // Box-Muller, the cosine branch only: one normal per two uniforms.
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

/** The initial value of every entry, as float32 (what the GPU stores). */
export function initialValues(entries: readonly ParamEntry[], seed: number): Map<string, Float32Array> {
  const out = new Map<string, Float32Array>();
  for (const e of entries) {
    out.set(e.name, Float32Array.from(drawInit(e.spec.init, numel(e.spec.shape), streamFor(seed, e.name))));
  }
  return out;
}
