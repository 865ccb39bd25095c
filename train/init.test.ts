// The runtime's initializer must give the DSL's values exactly: a run started from the runtime
// and a DSL-side reference (interpreter, parity fixtures) begin from the same parameters.

import { describe, expect, it } from "vitest";
import * as dslInit from "../dsl/init";
import type { InitSpec, TensorSlot } from "../format/module";
import { fnv1a32, initialValue, mulberry32, streamFor } from "./init";

const slot = (name: string, shape: number[], init: InitSpec): TensorSlot => ({
  name,
  role: "param",
  shape,
  dtype: "f32",
  init,
  arena: 0,
  offset: 0,
  bytes: 4 * shape.reduce((n, d) => n * d, 1),
});

const CASES: readonly TensorSlot[] = [
  slot("G/conv1.weight", [8, 3, 7, 7], { kind: "normal", mean: 0, std: 0.01 }),
  slot("G/layer6.conv2d_list.0.bias", [19], { kind: "convDefault", fanIn: 256 * 9 }),
  slot("D1/conv1.weight", [16, 19, 4, 4], { kind: "convDefault", fanIn: 19 * 16 }),
  slot("G/bn1.running_var", [8], { kind: "constant", value: 1 }),
  slot("x/uniform", [33], { kind: "uniform", low: -2, high: 3 }),
  slot("ünïcode/name", [5], { kind: "normal", mean: 1, std: 2 }),
];

describe("runtime init equals dsl/init.ts", () => {
  it("hashes and streams agree", () => {
    for (const name of ["", "a", "G/conv1.weight", "ünïcode"]) expect(fnv1a32(name)).toBe(dslInit.fnv1a32(name));
    const a = mulberry32(12345);
    const b = dslInit.mulberry32(12345);
    for (let i = 0; i < 100; i++) expect(a()).toBe(b());
  });

  for (const seed of [0, 1234, 0xffffffff]) {
    it(`every spec kind gives the DSL's float32 values (seed ${seed})`, () => {
      for (const s of CASES) {
        const n = s.shape.reduce((k, d) => k * d, 1);
        const expected = Float32Array.from(dslInit.drawInit(s.init!, n, dslInit.streamFor(seed, s.name)));
        const got = initialValue(s, seed);
        expect(got).toBeInstanceOf(Float32Array);
        expect(Array.from(got)).toEqual(Array.from(expected));
      }
    });
  }

  it("a tensor's stream depends on its name and the seed", () => {
    expect(streamFor(1, "a")()).not.toBe(streamFor(1, "b")());
    expect(streamFor(1, "a")()).not.toBe(streamFor(2, "a")());
  });
});
