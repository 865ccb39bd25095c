// The differential-testing harness itself (codegen/testing/differential.ts): it must be able
// to fail, or the differential tests prove nothing.

import { describe, expect, it } from "vitest";
import * as d from "../dsl/index";
import type { F32 } from "../dsl/index";
import type { Dispatch } from "../format/module";
import { compileProgram } from "./compile";
import { program } from "./testing/cases";
import { bitMismatch, differential, mismatch, rng, uniformF32 } from "./testing/differential";

describe("the differential harness", () => {
  it("reports the output of a kernel that computes the wrong thing", async () => {
    const x = d.input("x", [3, 5], "f32") as F32<2>;
    // q is x transposed (another shape), so the two stay separate kernels (no sibling fusion).
    const p = program({ p: d.add(x, 1), q: d.mul(d.permute(x, [1, 0]), 2) });
    const compiled = compileProgram(p);
    // Both kernels read x and write their result: give p's dispatch q's shader.
    const [phase] = compiled.module.phases;
    const [dp, dq] = phase!.dispatches as [Dispatch, Dispatch];
    const broken = { ...compiled, module: { ...compiled.module, phases: [{ ...phase!, dispatches: [{ ...dp, variants: dq.variants }, dq] }] } };
    const res = await differential(p, new Map(), new Map([["x", uniformF32(15, rng(1))]]), { rtol: 1e-4, atol: 1e-5 }, { compiled: broken });
    expect(res.mismatches).toHaveLength(1);
    expect(res.mismatches[0]).toMatch(/^output p: 15\/15 elements differ/);
  });

  it("mismatch: equal infinities match, NaN never does, and the worst element is named", () => {
    const tol = { rtol: 1e-4, atol: 0 };
    expect(mismatch("a", [Infinity, -Infinity, 1], [Infinity, -Infinity, 1], tol)).toBeUndefined();
    expect(mismatch("b", [NaN], [NaN], tol)).toMatch(/^b: 1\/1 elements differ/);
    expect(mismatch("c", [1, 2.5, 3], [1, 2, 3], tol)).toMatch(/worst at \[1\]: got 2.5, expected 2/);
    expect(mismatch("d", [1, 2], [1], tol)).toBe("d: 2 values, expected 1");
  });

  it("bitMismatch compares f32 data by bit pattern: -0 is not 0", () => {
    expect(bitMismatch("a", Float32Array.of(1, -0), Float32Array.of(1, -0))).toBeUndefined();
    expect(bitMismatch("b", Float32Array.of(1, -0), Float32Array.of(1, 0))).toBe("b: differs at [1]: 0 (0x80000000) vs 0 (0x00000000)");
    expect(bitMismatch("c", Int32Array.of(3), Int32Array.of(4))).toBe("c: differs at [0]: 3 vs 4");
  });
});
