// Initial values of a declared model: deterministic per (seed, tensor name), stored as float32,
// and the same values the trainer writes into a generated module's slots. The generator and
// its distributions are tested in format/init.test.ts.

import { describe, expect, it } from "vitest";
import { initialValue } from "../format/init";
import { initialValues } from "./init";
import { convDefault, declareModel, normal, param } from "./params";

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

  // A run started on the GPU (train/slots.ts writes initialValue of every slot) and a DSL-side
  // reference (interpreter, parity fixtures) must begin from the same parameters.
  it("gives the values the trainer writes into the entry's module slot", () => {
    const { entries } = declareModel("net", spec());
    for (const seed of [0, 1234, 0xffffffff]) {
      const values = initialValues(entries, seed);
      for (const e of entries) {
        const slot = { name: e.name, role: "param", shape: e.spec.shape, dtype: e.spec.dtype, init: e.spec.init, arena: 0, offset: 0, bytes: 0 } as const;
        expect(Array.from(values.get(e.name)!)).toEqual(Array.from(initialValue(slot, seed)));
      }
    }
  });
});
