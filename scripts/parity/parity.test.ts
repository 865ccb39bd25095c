// The fast part of the PyTorch parity suite (docs/parity.md), so that `npm test` covers it:
// both discriminators against their fixture on the WebGPU adapter, and the comparison rules.
// `npm run parity` runs every case (the ResNet-101 forward and the training iterations).

import { describe, expect, it } from "vitest";
import { type Fixture, type TensorRecord, compareRecord, renderCheck, runCase, sampleIndices } from "./check";

const record = (over: Partial<TensorRecord>): TensorRecord => ({
  id: "t",
  name: "t",
  group: "g",
  tol: 1e-3,
  shape: [4],
  stored: "full",
  offset: 0,
  count: 4,
  maxAbs: 4,
  l2: Math.sqrt(30),
  ...over,
});

const fixture = (values: number[]): Fixture => ({
  case: "c",
  program: "p",
  seed: 1,
  samples: 2,
  config: {},
  initsFrom: "spec",
  inits: {},
  steps: [],
  values: Float32Array.from(values),
});

describe("comparison rules", () => {
  it("a whole tensor's error is max |a - b| / max |b|", () => {
    const r = compareRecord(fixture([1, 2, 3, 4]), record({}), [1, 2, 3.002, 4]);
    expect(r.error).toBeCloseTo(0.002 / 4, 8);
  });

  it("NaN anywhere is an infinite error, not a pass", () => {
    expect(compareRecord(fixture([1, 2, 3, 4]), record({}), [1, NaN, 3, 4]).error).toBe(Infinity);
  });

  it("a sampled tensor also compares its max |x| and L2 norm over every element", () => {
    const n = 1000;
    const actual = Float64Array.from({ length: n }, (_, i) => Math.sin(i));
    const idx = sampleIndices(1, "t", n, 2);
    const rec = record({ shape: [n], stored: "sampled", count: 2, maxAbs: Math.max(...actual.map(Math.abs)), l2: Math.hypot(...actual) });
    const fx = fixture([actual[idx[0]!]!, actual[idx[1]!]!]);
    expect(compareRecord(fx, rec, actual).error).toBeLessThan(1e-6); // the stored values are float32
    // An element that is not sampled still moves the norm.
    const broken = Float64Array.from(actual);
    const unsampled = [...Array(n).keys()].find((i) => !idx.includes(i))!;
    broken[unsampled] = broken[unsampled]! + 1;
    expect(compareRecord(fx, rec, broken).error).toBeGreaterThan(1e-3);
  });

  it("a parameter's update error is relative to max |p - p0|", () => {
    const r = compareRecord(fixture([1, 2, 3, 4]), record({ maxAbsDelta: 0.01 }), [1, 2, 3.0001, 4]);
    expect(r.updateError).toBeCloseTo(0.01, 6);
  });
});

describe("PyTorch parity on the WebGPU adapter", () => {
  it("D1 and D2: outputs, input gradients and weight gradients match PyTorch", { timeout: 600_000 }, async () => {
    const { checks } = await runCase("discriminators");
    const failed = checks.filter((c) => !c.passed).map(renderCheck);
    expect(failed).toEqual([]);
    expect(checks.length).toBeGreaterThanOrEqual(8);
  });
});
