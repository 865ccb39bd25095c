// The seeded initializer: reproducible streams, the stated distributions, and a slot's first
// value typed and rounded as the GPU stores it.

import { describe, expect, it } from "vitest";
import { drawInit, fnv1a32, initialValue, mulberry32, streamFor } from "./init";
import type { InitSpec, TensorSlot } from "./module";

const mean = (xs: ArrayLike<number>) => Array.from(xs).reduce((s, v) => s + v, 0) / xs.length;
const std = (xs: ArrayLike<number>) => {
  const m = mean(xs);
  return Math.sqrt(Array.from(xs).reduce((s, v) => s + (v - m) ** 2, 0) / xs.length);
};

const slot = (name: string, shape: number[], init: InitSpec | undefined, dtype: TensorSlot["dtype"] = "f32"): TensorSlot => ({
  name,
  role: init === undefined ? "state" : "param",
  shape,
  dtype,
  ...(init === undefined ? {} : { init }),
  arena: 0,
  offset: 0,
  bytes: 4 * shape.reduce((n, d) => n * d, 1),
});

describe("streams", () => {
  it("hashes names with FNV-1a (the published 32-bit test vectors)", () => {
    expect(fnv1a32("")).toBe(0x811c9dc5);
    expect(fnv1a32("a")).toBe(0xe40c292c);
    expect(fnv1a32("foobar")).toBe(0xbf9cf968);
  });

  // Pinned from scripts/parity/generator.py, the numpy copy the parity fixtures are made with:
  // if these move, every fixture and every seeded run changes with them.
  it("hashes, streams and seeds agree with the numpy generator of the parity fixtures", () => {
    expect(fnv1a32("G/conv1.weight")).toBe(0xb3138b0e);
    expect(fnv1a32("ünïcode")).toBe(0x45f2402b);
    const next = mulberry32(12345);
    expect(Array.from({ length: 5 }, next)).toEqual([4207900869, 1317490944, 2079646450, 3513001552, 2187978186]);
    expect([0, 1234, 0xffffffff].map((seed) => streamFor(seed, "G/conv1.weight")())).toEqual([280392877, 1809942561, 1068448567]);
  });

  it("mulberry32 streams are reproducible uint32s", () => {
    const a = mulberry32(42);
    const b = mulberry32(42);
    const xs = Array.from({ length: 100 }, () => a());
    expect(Array.from({ length: 100 }, () => b())).toEqual(xs);
    expect(xs.every((v) => Number.isInteger(v) && v >= 0 && v < 2 ** 32)).toBe(true);
    expect(new Set(xs).size).toBe(100);
  });

  it("a tensor's stream depends on its name and the seed", () => {
    expect(streamFor(1, "a")()).not.toBe(streamFor(1, "b")());
    expect(streamFor(1, "a")()).not.toBe(streamFor(2, "a")());
  });
});

describe("distributions", () => {
  const draw = (init: InitSpec, n: number) => drawInit(init, n, streamFor(99, "t"));

  it("convDefault stays within +-1/sqrt(fan_in) and fills that range", () => {
    const bound = 1 / Math.sqrt(27);
    const xs = draw({ kind: "convDefault", fanIn: 27 }, 10_000);
    expect(xs.every((v) => Math.abs(v) <= bound)).toBe(true);
    expect(Math.max(...xs)).toBeGreaterThan(0.99 * bound);
    expect(Math.min(...xs)).toBeLessThan(-0.99 * bound);
    expect(Math.abs(mean(xs))).toBeLessThan(0.05 * bound);
  });

  it("normal has the requested mean and standard deviation (10k samples)", () => {
    const xs = draw({ kind: "normal", mean: 0.5, std: 0.01 }, 10_000);
    // The sample mean's standard error is std / 100: allow 4 of them. The sample std is
    // within a few percent of the true one at this size.
    expect(Math.abs(mean(xs) - 0.5)).toBeLessThan(4 * 0.0001);
    expect(std(xs) / 0.01).toBeGreaterThan(0.97);
    expect(std(xs) / 0.01).toBeLessThan(1.03);
  });

  it("uniform stays in [low, high) with the right mean", () => {
    const xs = draw({ kind: "uniform", low: -2, high: 6 }, 10_000);
    expect(xs.every((v) => v >= -2 && v < 6)).toBe(true);
    expect(Math.abs(mean(xs) - 2)).toBeLessThan(0.1);
  });

  it("constant fills one value", () => {
    expect([...draw({ kind: "constant", value: 0.25 }, 3)]).toEqual([0.25, 0.25, 0.25]);
  });
});

describe("initialValue of a slot", () => {
  const CASES: readonly TensorSlot[] = [
    slot("G/conv1.weight", [8, 3, 7, 7], { kind: "normal", mean: 0, std: 0.01 }),
    slot("G/layer6.conv2d_list.0.bias", [19], { kind: "convDefault", fanIn: 256 * 9 }),
    slot("D1/conv1.weight", [16, 19, 4, 4], { kind: "convDefault", fanIn: 19 * 16 }),
    slot("G/bn1.running_var", [8], { kind: "constant", value: 1 }),
    slot("x/uniform", [33], { kind: "uniform", low: -2, high: 3 }),
    slot("ünïcode/name", [5], { kind: "normal", mean: 1, std: 2 }),
  ];

  for (const seed of [0, 1234, 0xffffffff]) {
    it(`is the slot's own stream rounded once to float32, for every spec kind (seed ${seed})`, () => {
      for (const s of CASES) {
        const n = s.shape.reduce((k, d) => k * d, 1);
        const expected = Float32Array.from(drawInit(s.init!, n, streamFor(seed, s.name)));
        const got = initialValue(s, seed);
        expect(got).toBeInstanceOf(Float32Array);
        expect(Array.from(got)).toEqual(Array.from(expected));
      }
    });
  }

  it("starts a slot without an init spec at zero, typed for its dtype", () => {
    expect(initialValue(slot("sgd_G/step", [2], undefined, "i32"), 1)).toEqual(new Int32Array(2));
    expect(initialValue(slot("G/bn1.num_batches", [3], undefined), 1)).toEqual(new Float32Array(3));
  });

  it("rounds the draws of an integer slot to the nearest integer", () => {
    const got = initialValue(slot("i/uniform", [64], { kind: "uniform", low: -5, high: 5 }, "i32"), 3);
    const draws = drawInit({ kind: "uniform", low: -5, high: 5 }, 64, streamFor(3, "i/uniform"));
    expect(got).toBeInstanceOf(Int32Array);
    // `+ 0` turns Math.round's -0 (draws in (-0.5, 0)) into the 0 an Int32Array holds.
    expect(Array.from(got)).toEqual(Array.from(draws, (v) => Math.round(v) + 0));
  });
});
