// Initial values: deterministic per (seed, tensor name), and drawn from the stated
// distributions.

import { describe, expect, it } from "vitest";
import { drawInit, fnv1a32, initialValues, mulberry32, streamFor } from "./init";
import { constant, convDefault, declareModel, normal, param, uniform } from "./params";

const mean = (xs: ArrayLike<number>) => Array.from(xs).reduce((s, v) => s + v, 0) / xs.length;
const std = (xs: ArrayLike<number>) => {
  const m = mean(xs);
  return Math.sqrt(Array.from(xs).reduce((s, v) => s + (v - m) ** 2, 0) / xs.length);
};

describe("determinism", () => {
  const spec = () => ({
    conv: param([8, 3, 3, 3], { init: convDefault(27) }),
    fc: param([16], { init: normal(0.01) }),
  });

  it("the same seed gives the same values; another seed, others", () => {
    const { entries } = declareModel("net", spec());
    const a = initialValues(entries, 1234);
    const b = initialValues(entries, 1234);
    const c = initialValues(entries, 1235);
    expect(a).toEqual(b);
    expect(a.get("net/conv")).not.toEqual(c.get("net/conv"));
  });

  it("a tensor's values depend on its name, not on the declaration order", () => {
    const forward = declareModel("net", spec()).entries;
    const backward = [...forward].reverse();
    const a = initialValues(forward, 7);
    const b = initialValues(backward, 7);
    for (const e of forward) expect(b.get(e.name)).toEqual(a.get(e.name));
    expect(a.get("net/conv")!.slice(0, 16)).not.toEqual(a.get("net/fc"));
  });

  it("stores float32, as the GPU does", () => {
    const values = initialValues(declareModel("net", spec()).entries, 1).get("net/fc")!;
    expect(values).toBeInstanceOf(Float32Array);
  });

  it("hashes names with FNV-1a (the published 32-bit test vectors)", () => {
    expect(fnv1a32("")).toBe(0x811c9dc5);
    expect(fnv1a32("a")).toBe(0xe40c292c);
    expect(fnv1a32("foobar")).toBe(0xbf9cf968);
  });

  it("mulberry32 streams are reproducible uint32s", () => {
    const a = mulberry32(42);
    const b = mulberry32(42);
    const xs = Array.from({ length: 100 }, () => a());
    expect(Array.from({ length: 100 }, () => b())).toEqual(xs);
    expect(xs.every((v) => Number.isInteger(v) && v >= 0 && v < 2 ** 32)).toBe(true);
    expect(new Set(xs).size).toBe(100);
  });
});

describe("distributions", () => {
  const draw = (init: Parameters<typeof drawInit>[0], n: number) => drawInit(init, n, streamFor(99, "t"));

  it("convDefault stays within +-1/sqrt(fan_in) and fills that range", () => {
    const bound = 1 / Math.sqrt(27);
    const xs = draw(convDefault(27), 10_000);
    expect(xs.every((v) => Math.abs(v) <= bound)).toBe(true);
    expect(Math.max(...xs)).toBeGreaterThan(0.99 * bound);
    expect(Math.min(...xs)).toBeLessThan(-0.99 * bound);
    expect(Math.abs(mean(xs))).toBeLessThan(0.05 * bound);
  });

  it("normal has the requested mean and standard deviation (10k samples)", () => {
    const xs = draw(normal(0.01, 0.5), 10_000);
    // The sample mean's standard error is std / 100: allow 4 of them. The sample std is
    // within a few percent of the true one at this size.
    expect(Math.abs(mean(xs) - 0.5)).toBeLessThan(4 * 0.0001);
    expect(std(xs) / 0.01).toBeGreaterThan(0.97);
    expect(std(xs) / 0.01).toBeLessThan(1.03);
  });

  it("uniform stays in [low, high) with the right mean", () => {
    const xs = draw(uniform(-2, 6), 10_000);
    expect(xs.every((v) => v >= -2 && v < 6)).toBe(true);
    expect(Math.abs(mean(xs) - 2)).toBeLessThan(0.1);
  });

  it("constant fills one value", () => {
    expect([...draw(constant(0.25), 3)]).toEqual([0.25, 0.25, 0.25]);
  });
});
