// Run-time hyperparameters (dsl/hyper.ts) through codegen: the vector gets a slot of role "hyper"
// (never "input": tests and the bench fill every input with random data), the module records
// names and defaults, and each scalar is inlined into its readers as one load of that slot, not
// a kernel of its own and not a literal.

import { describe, expect, it } from "vitest";
import * as d from "../dsl/index";
import type { F32 } from "../dsl/index";
import { compileProgram } from "./compile";
import { emitModule } from "./emit";

/** w <- w - lr momentum (x w + wd w): three hyperparameters read by one pointwise kernel. */
function program() {
  const h = d.hyperparameters({ lr: 0.1, momentum: 0.9, weightDecay: 5e-4 });
  const m = d.declareModel("G", { w: d.param([64], { init: d.constant(1) }) });
  const x = d.input("x", [64], "f32") as F32<1>;
  const g = d.mul(x, m.p.w);
  const step = d.mul(d.add(g, d.mul(m.p.w, h.values.weightDecay)), d.mul(h.values.lr, h.values.momentum));
  return d.defineProgram({ name: "hyper-sgd", params: m.entries, phases: [{ name: "step", outputs: {}, updates: { "G/w": d.sub(m.p.w, step) } }], hyperparameters: h });
}

describe("hyperparameters in generated modules", () => {
  const compiled = compileProgram(program());
  const m = compiled.module;

  it("the vector is a persistent slot of role hyper, f32 [K]; data inputs keep role input", () => {
    expect(m.tensors.filter((t) => t.role === "hyper").map((t) => [t.name, t.shape, t.dtype])).toEqual([["hyperparameters", [3], "f32"]]);
    expect(m.tensors.filter((t) => t.role === "input").map((t) => t.name)).toEqual(["x"]);
  });

  it("the module records names and defaults in vector order", () => {
    expect(m.hyperparameters).toEqual([
      { name: "lr", value: 0.1 },
      { name: "momentum", value: 0.9 },
      { name: "weightDecay", value: 5e-4 },
    ]);
    expect(emitModule(compiled, "test")).toContain(`  hyperparameters: [{"name":"lr","value":0.1},{"name":"momentum","value":0.9},{"name":"weightDecay","value":0.0005}],`);
  });

  it("every scalar is one load of the vector's binding inside the one update kernel, never a literal", () => {
    expect(m.shaders).toHaveLength(1);
    const dispatch = m.phases[0]!.dispatches[0]!;
    const slot = m.tensors.find((t) => t.role === "hyper")!;
    const binding = dispatch.bindings.findIndex((b) => b.arena === slot.arena && b.offset === slot.offset);
    expect(binding).toBeGreaterThanOrEqual(0);
    // The template's text of the use (before the pool lifts its literals): the loads by index.
    const written = compiled.kernels[0]!.stage.wgsl;
    const b = `b${binding}`;
    expect(written).toContain(`${b}[0i]`);
    expect(written).toContain(`${b}[(0i + 1i)]`);
    expect(written).toContain(`${b}[(0i + 2i)]`);
    // Neither the pooled kernel nor the override values of its use hold a default.
    const texts = [written, m.shaders[0]!.wgsl, JSON.stringify(dispatch.variants.map((v) => v.constants ?? []))];
    for (const text of texts) for (const literal of ["0.1", "0.9", "0.0005", "0.100000", "0.899999", "0.000500"]) expect(text).not.toContain(literal);
  });
});
