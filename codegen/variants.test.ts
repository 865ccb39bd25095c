// Kernel variants (format/module.ts: a dispatch may carry one shader per adapter class):
// compareAdapterClasses runs a module with the "cpu" and the "gpu" variants of every dispatch
// and compares everything the step produces. These tests check the helper can fail, then use
// it on a program whose convolutions have CPU variants.

import { describe, expect, it } from "vitest";
import * as d from "../dsl/index";
import type { F32 } from "../dsl/index";
import type { Dispatch } from "../format/module";
import { compileProgram, type Compiled } from "./compile";
import { program } from "./testing/cases";
import { compareAdapterClasses, deviceFeatures, rng, uniformF32 } from "./testing/differential";

/** A copy of `compiled` with the variants of dispatch `index` of the first phase replaced. */
function withVariants(compiled: Compiled, index: number, variants: Dispatch["variants"]): Compiled {
  const [phase, ...rest] = compiled.module.phases;
  const dispatches = phase!.dispatches.map((dispatch, i) => (i === index ? { ...dispatch, variants } : dispatch));
  return { ...compiled, module: { ...compiled.module, phases: [{ ...phase!, dispatches }, ...rest] } };
}

/** Two pointwise kernels with the same bindings (read x, write the result): p = x + 1, q = 2x. */
function twoKernels() {
  const x = d.input("x", [3, 5], "f32") as F32<2>;
  // q is x transposed (another shape), so the two stay separate kernels (no sibling fusion)
  // with the same bindings: x in, 15 floats out.
  const compiled = compileProgram(program({ p: d.add(x, 1), q: d.mul(d.permute(x, [1, 0]), 2) }));
  const [dp, dq] = compiled.module.phases[0]!.dispatches as [Dispatch, Dispatch];
  return { compiled, dp, dq, data: new Map([["x", uniformF32(15, rng(71))]]) };
}

const EXACT = { rtol: 0, atol: 0 };

describe("compareAdapterClasses", () => {
  it("reports the outputs on which a dispatch's cpu and gpu variants disagree", async () => {
    const { compiled, dp, dq, data } = twoKernels();
    const [vp, vq] = [dp.variants[0]!, dq.variants[0]!];
    // p's "gpu" variant runs q's shader: it writes 2x where the cpu variant writes x + 1.
    const doctored = withVariants(compiled, 0, [{ ...vp, adapter: "cpu" }, { ...vq, adapter: "gpu" }]);
    const r = await compareAdapterClasses(doctored, new Map(), data, EXACT);
    expect(r.distinctDispatches).toEqual([`p/${dp.name}`]);
    expect(r.mismatches).toHaveLength(1);
    expect(r.mismatches[0]).toMatch(/^output p \(cpu variant vs gpu variant\)/);
  });

  it("reports dispatches with no variant for one adapter class, without running them", async () => {
    const { compiled, dp, data } = twoKernels();
    const doctored = withVariants(compiled, 0, [{ ...dp.variants[0]!, adapter: "gpu" }]);
    const r = await compareAdapterClasses(doctored, new Map(), data, EXACT);
    expect(r.unresolved).toEqual([`p/${dp.name}`]);
  });

  it("finds no difference between the variants codegen emits for a conv + bias + ReLU and its gradients", async () => {
    const x = d.input("x", [1, 6, 9, 11], "f32") as F32<4>;
    const w = d.input("w", [10, 6, 3, 3], "f32") as F32<4>;
    const b = d.input("b", [10], "f32") as F32<1>;
    const y = d.relu(d.conv2d(x, w, b, { padding: 1 }));
    const dy = d.input("dy", y.shape, "f32") as F32<4>;
    const [dx, dw, db] = d.vjp([y], [dy], [x, w, b]);
    const compiled = compileProgram(program({ y, dx: dx!, dw: dw!, db: db! }));
    const r0 = rng(72);
    const data = new Map([
      ["x", uniformF32(6 * 9 * 11, r0)],
      ["w", uniformF32(10 * 6 * 9, r0)],
      ["b", uniformF32(10, r0)],
      ["dy", uniformF32(10 * 9 * 11, r0)],
    ]);
    // Variants may sum in different orders: the convolution tolerance of the differential tests.
    const r = await compareAdapterClasses(compiled, new Map(), data, { rtol: 1e-4, atol: 1e-5 });
    expect(r.unresolved).toEqual([]);
    expect(r.mismatches).toEqual([]);
    // Codegen emits CPU variants of the convolution templates for devices with subgroups:
    // then the comparison is between different shaders, not a shader and itself.
    if ((await deviceFeatures()).has("subgroups")) expect(r.distinctDispatches.length).toBeGreaterThan(0);
  });
});
