// The kernel pool: literals lifted to overrides, kernels named by content, and generated
// program tables that expand to exactly the module the compiler built.

import { describe, expect, it } from "vitest";
import { modules } from "../generated/index";
import { configFor } from "../examples/adaptsegnet/presets";
import { buildTrainStep } from "../examples/adaptsegnet/train";
import { compileProgram } from "./compile";
import type { GeneratedModule } from "../format/module";
import { emitPool, parsePool } from "./emit";
import { KernelNames, templateOf } from "./names";
import { kernelId, liftLiterals } from "./pool";

const KERNEL = `
// pointwise f32[4096]
// threads 4096, workgroup 64; FLOPs 4096; bytes 32768
@group(0) @binding(0) var<storage, read_write> b0: array<f32>; // read only
@group(0) @binding(1) var<storage, read_write> b1: array<f32>;
@compute @workgroup_size(64)
fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let gi = i32((wid.y * nwg.x + wid.x) * 64u + lid.x);
  if (gi >= 4096i) { return; }
  let v_0 = select(0.0f, b0[(gi / 64i) % 4096i] * 2.5f, gi >= 1i) + bitcast<f32>(0x7fc00000u);
  b1[gi] = (-v_0) * (-2.5f) + 1e-8f;
}
`;

describe("liftLiterals", () => {
  const lifted = liftLiterals(KERNEL);

  it("turns each distinct typed literal into one override, in order of first appearance, with its value", () => {
    expect(lifted.overrides).toEqual(["u32", "i32", "i32", "f32", "f32"]);
    expect(lifted.values).toEqual([64, 4096, 64, Math.fround(2.5), Math.fround(1e-8)]);
    expect(lifted.text).toContain("override lit0: u32;");
    expect(lifted.text).toContain("let gi = i32((wid.y * nwg.x + wid.x) * lit0 + lid.x);");
    expect(lifted.text).toContain("if (gi >= lit1) { return; }");
    // 4096i is the same literal both times: one override; (-2.5f) keeps its sign outside.
    expect(lifted.text).toContain("b0[(gi / lit2) % lit1] * lit3");
    expect(lifted.text).toContain("(-v_0) * (-lit3) + lit4;");
  });

  it("keeps 0 and 1, untyped numbers, hex bit patterns and identifiers as they are", () => {
    expect(lifted.text).toContain("select(0.0f,");
    expect(lifted.text).toContain("gi >= 1i");
    expect(lifted.text).toContain("@workgroup_size(64)");
    expect(lifted.text).toContain("@binding(1)");
    expect(lifted.text).toContain("0x7fc00000u");
    expect(lifted.text).toContain("let v_0 =");
  });

  it("moves the header (a description of one use) out of the kernel and names the template", () => {
    expect(lifted.template).toBe("pointwise");
    expect(lifted.header).toEqual(["pointwise f32[4096]", "threads 4096, workgroup 64; FLOPs 4096; bytes 32768"]);
    expect(lifted.text).not.toContain("f32[4096]");
  });

  it("gives the same kernel, and the same id, to uses at other sizes", () => {
    const other = liftLiterals(KERNEL.replaceAll("4096", "300").replace("2.5f", "0.5f").replace("2.5f", "0.5f"));
    expect(other.text).toBe(lifted.text);
    expect(other.values).toEqual([64, 300, 64, 0.5, Math.fround(1e-8)]);
    expect(kernelId(other.template, other.text, ["read_write"])).toBe(kernelId(lifted.template, lifted.text, ["read_write"]));
    expect(kernelId(lifted.template, lifted.text + " ", ["read_write"])).not.toBe(kernelId(lifted.template, lifted.text, ["read_write"]));
  });

  it("refuses a kernel that already uses an identifier of the lifted-literal form", () => {
    expect(() => liftLiterals(KERNEL.replace("let v_0", "let lit0"))).toThrow(/lit<N>/);
  });
});

describe("generated program tables", () => {
  it("multi-level-cpu-demo's module.ts expands to exactly the module the compiler builds", async () => {
    const generated = await modules["multi-level-cpu-demo"]!();
    const compiled = compileProgram(buildTrainStep("multi-level-cpu-demo", configFor("multi-level", "cpu-demo"))).module;
    // Kernel names differ by design: the compiler's are content ids, the pool's come from the
    // first use over all programs (codegen/names.ts); everything else is equal.
    const unnamed = (m: GeneratedModule) => JSON.parse(JSON.stringify({ ...m, shaders: m.shaders.map((k) => ({ ...k, name: templateOf(k) })) }));
    expect(unnamed(generated)).toEqual(unnamed(compiled));
    const contentIds = compiled.shaders.map((k) => k.name);
    expect(new KernelNames().rename(compiled).shaders.map((k) => k.name)).not.toEqual(contentIds);
  });
});

describe("kernel names", () => {
  const program = () => compileProgram(buildTrainStep("small", configFor("source-only", "cpu-demo", { sourceSize: [16, 16], numClasses: 3, ndf: 2, network: { blocks: [1, 1, 1, 1], width: 2, asppBranches: 2 } }))).module;

  it("come from the first use: template, gradient, parameter or scope, op, part and adapter; unique", () => {
    const names = new KernelNames().rename(program()).shaders.map((k) => k.name);
    expect(new Set(names).size).toBe(names.length);
    for (const n of names) expect(n).toMatch(/^(conv2d|pointwise|sum|repack|final|softmax|resize|maxPool2d)_[A-Za-z0-9_]+$/);
    expect(names.some((n) => n.startsWith("conv2d_G_conv1"))).toBe(true);
    expect(names.some((n) => n.includes("_grad_"))).toBe(true);
  });

  it("do not change when a template changes the text of its kernels (a one-line edit)", () => {
    const before = program();
    // The same program with every kernel's text edited, as a template edit would: new content ids.
    const edited: GeneratedModule = { ...before, shaders: before.shaders.map((k) => ({ ...k, name: `${templateOf(k)}_edited${k.name.slice(k.name.indexOf("_"))}`, wgsl: `${k.wgsl}// edited\n` })) };
    expect(new KernelNames().rename(edited).shaders.map((k) => k.name)).toEqual(new KernelNames().rename(before).shaders.map((k) => k.name));
  });

  it("already in the pool are kept (codegen --only), and new ones do not take them", () => {
    const m = new KernelNames().rename(program());
    const again = new KernelNames(m.shaders).rename(program());
    expect(again.shaders.map((k) => k.name)).toEqual(m.shaders.map((k) => k.name));
  });
});

describe("pool files", () => {
  it("read back exactly the kernels they were written from (codegen --only keeps them)", () => {
    const kernels = new KernelNames().rename(compileProgram(buildTrainStep("small", configFor("source-only", "cpu-demo", { sourceSize: [16, 16], numClasses: 3, ndf: 2, network: { blocks: [1, 1, 1, 1], width: 2, asppBranches: 2 } }))).module).shaders.filter((k) => templateOf(k) === "sum");
    expect(kernels.length).toBeGreaterThan(1);
    const read = parsePool(emitPool("sum", kernels));
    const byName = (ks: readonly { name: string }[]) => [...ks].sort((a, b) => (a.name < b.name ? -1 : 1));
    expect(byName(read)).toEqual(byName(kernels));
  });
});
