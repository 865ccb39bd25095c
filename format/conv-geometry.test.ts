// The convolution geometry as a specification: the output length, the tap index and its
// inverse, and the stride phases of the input-gradient; the WGSL builders compute what the
// number functions compute.

import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  convOutSize,
  outputOfTapWgsl,
  phaseLength,
  phasePositionWgsl,
  phaseTapStep,
  phaseTaps,
  tapFromOffsetWgsl,
  tapHitsPhase,
  tapIndex,
  tapIndexWgsl,
  poolTapWgsl,
  tapInverseWgsl,
  tapMissesPhaseWgsl,
  tapOffsetWgsl,
  tapsInside,
} from "./conv-geometry";

/** Evaluates a builder's WGSL i32 expression in JavaScript (same +, -, *, truncating / and %). */
function evalWgsl(expr: string, vars: Readonly<Record<string, number>>): number | boolean {
  const js = expr.replace(/\b(\d+)i\b/g, "$1").replace(/(\S+) \/ (\d+)/g, "Math.trunc($1 / $2)");
  return new Function(...Object.keys(vars), `return ${js};`)(...Object.values(vars)) as number | boolean;
}

/** One axis of a convolution: input length, taps, stride, padding, dilation. */
const axis = fc.record({
  n: fc.integer({ min: 1, max: 40 }),
  k: fc.integer({ min: 1, max: 5 }),
  s: fc.integer({ min: 1, max: 4 }),
  p: fc.integer({ min: 0, max: 6 }),
  d: fc.integer({ min: 1, max: 4 }),
});
const range = (n: number) => Array.from({ length: n }, (_, i) => i);

describe("convolution geometry", () => {
  it("convOutSize keeps the last output's last tap inside the padded input, and no more outputs", () => {
    fc.assert(
      fc.property(axis, ({ n, k, s, p, d }) => {
        const out = convOutSize(n, k, s, p, d);
        fc.pre(out >= 1);
        expect(tapIndex(out - 1, s, p, k - 1, d)).toBeLessThan(n + p);
        expect(tapIndex(out, s, p, k - 1, d)).toBeGreaterThanOrEqual(n + p);
      }),
    );
  });

  it("tapsInside holds exactly when every (output, tap) reads inside the input", () => {
    fc.assert(
      fc.property(axis, ({ n, k, s, p, d }) => {
        const out = convOutSize(n, k, s, p, d);
        fc.pre(out >= 1);
        const all = range(out).every((i) => range(k).every((u) => tapIndex(i, s, p, u, d) >= 0 && tapIndex(i, s, p, u, d) < n));
        expect(tapsInside(n, out, k, s, p, d)).toBe(all);
      }),
    );
  });

  it("the WGSL tap index, offset and inverse compute h = i*s - p + u*d and i*s = h + p - u*d", () => {
    fc.assert(
      fc.property(axis, fc.nat(30), fc.nat(4), ({ s, p, d }, i, u) => {
        const h = tapIndex(i, s, p, u, d);
        expect(evalWgsl(tapIndexWgsl("i", s, p, "u", d), { i, u })).toBe(h);
        expect(evalWgsl(poolTapWgsl("i", s, p, "u"), { i, u })).toBe(tapIndex(i, s, p, u, 1));
        expect(evalWgsl(tapFromOffsetWgsl("i", s, `(${tapOffsetWgsl("u", d, p)})`), { i, u })).toBe(h);
        expect(evalWgsl(tapInverseWgsl("h", p, "u", d), { h, u })).toBe(i * s);
        expect(evalWgsl(outputOfTapWgsl("m", s), { m: i * s })).toBe(i);
      }),
    );
  });

  it("keeps today's generated text", () => {
    expect(tapIndexWgsl("i", 2, 1, "u", 3)).toBe("i * 2i - 1i + u * 3i");
    expect(poolTapWgsl("j", 2, 1, "v")).toBe("j * 2i - 1i + v");
    expect(tapMissesPhaseWgsl("ph", 2, 1, "v", 1)).toBe("((ph + 1i - v * 1i) % 2i + 2i) % 2i != 0i");
    expect(phasePositionWgsl("ph", 2, "(jb * 4i + 0i)")).toBe("ph + 2i * (jb * 4i + 0i)");
  });

  it("a phase's taps are those reaching an output, spaced by s / gcd(s, d)", () => {
    fc.assert(
      fc.property(axis, ({ n, k, s, p, d }) => {
        const taps = phaseTaps(s, k, p, d);
        const step = phaseTapStep(s, d);
        for (const ph of range(s)) {
          // Every input of the phase (h = ph + s*m) has an integer i*s = h + p - u*d (an output
          // where i is in range) at exactly these taps.
          for (const m of range(phaseLength(n, s))) {
            const h = ph + s * m;
            expect(range(k).filter((u) => (h + p - u * d) % s === 0)).toEqual(taps[ph]);
          }
          const us = taps[ph]!;
          us.forEach((u, j) => expect(u).toBe(us[0]! + j * step));
          for (const u of range(k)) expect(evalWgsl(tapMissesPhaseWgsl("ph", s, p, "u", d), { ph, u })).toBe(!tapHitsPhase(ph, s, p, u, d));
        }
      }),
    );
  });
});
