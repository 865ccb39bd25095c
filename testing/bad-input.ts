// Shared by the bad-input suite (bad-input*.test.ts): what every refusal must satisfy, and the
// count of cases run, printed at the end so the suite says how much it tried.

import { expect } from "vitest";

let cases = 0;

/** One more case; returns the running count. */
export function countCase(): number {
  return ++cases;
}

export function caseCount(): number {
  return cases;
}

/** External memory (array buffers) grown by `f`: a refusal must not allocate what the input claims. */
export function growthOf<T>(f: () => T): { readonly value: T; readonly grew: number } {
  const before = process.memoryUsage().arrayBuffers;
  const value = f();
  return { value, grew: process.memoryUsage().arrayBuffers - before };
}

export const MiB = 1024 * 1024;

/** A refusal: the message names `names` (file, tensor, option) and nothing threw. Not counted: the caller counts its case. */
export function expectRefusal(message: string | undefined, names: readonly string[], what: string): void {
  expect(message, `${what} was accepted`).toBeDefined();
  for (const n of names) expect(message, what).toContain(n);
  expect(message, what).not.toMatch(/\n\s+at /); // no stack trace
}

/** Flips bit `bit` of byte `at` in a copy of `bytes`. */
export function flip(bytes: Uint8Array, at: number, bit: number): Uint8Array {
  const out = bytes.slice();
  out[at % out.length] = out[at % out.length]! ^ (1 << bit);
  return out;
}

/** Where the central-directory record of zip entry `name` starts. */
export function centralRecord(zip: Uint8Array, name: string): number {
  const dv = new DataView(zip.buffer, zip.byteOffset, zip.byteLength);
  const encoded = new TextEncoder().encode(name);
  for (let at = zip.length - 46; at >= 0; at--) {
    if (dv.getUint32(at, true) !== 0x02014b50 || dv.getUint16(at + 28, true) !== encoded.length) continue;
    if (encoded.every((b, i) => zip[at + 46 + i] === b)) return at;
  }
  throw new Error(`no central record for ${name}`);
}

/** A copy of `zip` whose directory claims `size` uncompressed bytes for entry `name`. */
export function claimSize(zip: Uint8Array, name: string, size: number): Uint8Array {
  const out = zip.slice();
  new DataView(out.buffer).setUint32(centralRecord(out, name) + 24, size, true);
  return out;
}
