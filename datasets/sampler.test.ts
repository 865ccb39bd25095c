import { describe, expect, test } from "vitest";
import { createRng, mixSeed } from "./prng";
import { cursorAt, repeatedShuffle, sampleAt, sequentialOrder, take } from "./sampler";

describe("repeatedShuffle (docs §3.3)", () => {
  test("repeats the list ceil(maxIters / length) times: GTA5 gives 11 x 24966 = 274626 draws", () => {
    const s = repeatedShuffle(24966, 250000, 1);
    expect(s.repeats).toBe(11);
    expect(s.order.length).toBe(274626);
  });

  test("every index appears exactly `repeats` times", () => {
    const s = repeatedShuffle(7, 20, 3);
    expect(s.repeats).toBe(3);
    const counts = new Array<number>(7).fill(0);
    for (const i of s.order) counts[i]!++;
    expect(counts).toEqual(new Array(7).fill(3));
  });

  test("is shuffled, not the identity repeated", () => {
    const s = repeatedShuffle(100, 100, 5);
    expect(Array.from(s.order)).not.toEqual([...Array(100).keys()]);
  });

  test("the same seed gives the same order; another seed another order", () => {
    const a = repeatedShuffle(50, 500, 42);
    const b = repeatedShuffle(50, 500, 42);
    const c = repeatedShuffle(50, 500, 43);
    expect(Array.from(a.order)).toEqual(Array.from(b.order));
    expect(Array.from(a.order)).not.toEqual(Array.from(c.order));
  });

  test("resuming at position i continues the same sequence", () => {
    const s = repeatedShuffle(13, 100, 9);
    const all = take(cursorAt(s, 0), 30).indices;
    const first = take(cursorAt(s, 0), 12);
    const rest = take(first.next, 18);
    expect([...first.indices, ...rest.indices]).toEqual(all);
    expect(rest.next.position).toBe(30);
    expect(take(cursorAt(s, 17), 5).indices).toEqual(all.slice(17, 22));
  });

  test("sampleAt wraps past the end", () => {
    const s = repeatedShuffle(4, 4, 1);
    expect(sampleAt(s, 5)).toBe(sampleAt(s, 1));
  });

  test("sequentialOrder is the identity", () => {
    expect(Array.from(sequentialOrder(4).order)).toEqual([0, 1, 2, 3]);
  });
});

describe("prng", () => {
  test("is deterministic for a seed and differs between seeds", () => {
    const a = createRng(7);
    const b = createRng(7);
    const c = createRng(8);
    const xs = Array.from({ length: 5 }, () => a.nextU32());
    expect(Array.from({ length: 5 }, () => b.nextU32())).toEqual(xs);
    expect(Array.from({ length: 5 }, () => c.nextU32())).not.toEqual(xs);
  });

  test("next() is in [0, 1) with a mean near 1/2", () => {
    const r = createRng(1);
    let sum = 0;
    for (let i = 0; i < 20000; i++) {
      const v = r.next();
      expect(v >= 0 && v < 1).toBe(true);
      sum += v;
    }
    expect(sum / 20000).toBeCloseTo(0.5, 1);
  });

  test("normal() has mean ~0 and variance ~1", () => {
    const r = createRng(2);
    const xs = Array.from({ length: 20000 }, () => r.normal());
    const mean = xs.reduce((s, v) => s + v, 0) / xs.length;
    const variance = xs.reduce((s, v) => s + (v - mean) ** 2, 0) / xs.length;
    expect(Math.abs(mean)).toBeLessThan(0.03);
    expect(Math.abs(variance - 1)).toBeLessThan(0.05);
  });

  test("mixSeed separates its parts", () => {
    expect(mixSeed(1, 2)).not.toBe(mixSeed(2, 1));
    expect(mixSeed(1, 2)).toBe(mixSeed(1, 2));
  });
});
