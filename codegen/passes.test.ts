// Each pass of the compiler (codegen/passes/) run alone on a tiny program, checked by the
// invariants its output promises; then the chain's errors as values.

import * as E from "fp-ts/lib/Either.js";
import { describe, expect, it } from "vitest";
import * as d from "../dsl/index";
import type { F32, Tensor } from "../dsl/index";
import { type CompileError, compileProgram, renderCompileError, tryCompileExport, tryCompileProgram } from "./compile";
import { alignUp } from "./memory";
import { assembleModule } from "./passes/assemble";
import { type CanonicalPhase, canonicalisePhase } from "./passes/canonicalise";
import { fusePhase } from "./passes/fuse";
import { type ResidentPhase, phaseLifetimes } from "./passes/lifetimes";
import { linkPhases } from "./passes/link";
import { type LoweredPhase, lowerPhase } from "./passes/lower";
import { type MemoryLayout, planLayout } from "./passes/plan";
import { schedulePhase } from "./passes/schedule";
import { declareSlots } from "./passes/slots";

const LIMITS = { maxBindings: 16, maxBindingBytes: 1 << 30 };

/**
 * A conv + bias + ReLU under scope `block.conv`, its mean (mean and stopGradient, which
 * canonicalisation removes), and an SGD-like update of the bias.
 */
function tiny(opts: { outputs?: (y: F32<4>, x: F32<4>) => Record<string, Tensor> } = {}) {
  const m = d.declareModel("G", { w: d.param([4, 3, 3, 3], { init: d.constant(0.5) }), b: d.param([4], { init: d.constant(0) }) });
  const x = d.input("x", [1, 3, 8, 8], "f32") as F32<4>;
  const y = d.withScope("block", () => d.withScope("conv", () => d.relu(d.conv2d(x, m.p.w, m.p.b, { padding: 1 }))));
  const loss = d.mean(d.stopGradient(y));
  const outputs = opts.outputs?.(y, x) ?? { loss, y };
  return d.defineProgram({ name: "tiny", params: m.entries, phases: [{ name: "step", outputs, updates: { "G/b": d.sub(m.p.b, d.mul(loss, 0.1)) } }] });
}

/** Every node the phase's values reach. */
const reachable = (p: CanonicalPhase): Tensor[] => d.topoSort([...p.outputs, ...p.updates].map((v) => v.value));

const right = <A>(e: E.Either<CompileError, A>): A => {
  if (E.isLeft(e)) throw new Error(renderCompileError(e.left));
  return e.right;
};
const left = <A>(e: E.Either<CompileError, A>): CompileError => {
  if (E.isRight(e)) throw new Error("expected a compile error");
  return e.left;
};

const lowered = (program = tiny(), limits = LIMITS): LoweredPhase =>
  right(lowerPhase(program.name, limits)(fusePhase(schedulePhase(canonicalisePhase(program.phases[0]!)))));

function resident(program = tiny()): { program: d.Program; phase: ResidentPhase } {
  return { program, phase: right(phaseLifetimes(program.name, declareSlots(program))(lowered(program))) };
}

function layoutOf(arenaBytes = 1 << 30): { program: d.Program; phase: ResidentPhase; layout: MemoryLayout } {
  const { program, phase } = resident();
  const slots = [...declareSlots(program), ...phase.outputSlots];
  return { program, phase, layout: right(planLayout(program.name, arenaBytes)(slots, [phase])) };
}

describe("canonicalise", () => {
  it("keeps output and update names in declaration order", () => {
    const p = canonicalisePhase(tiny().phases[0]!);
    expect(p.outputs.map((o) => o.name)).toEqual(["loss", "y"]);
    expect(p.updates.map((u) => u.name)).toEqual(["G/b"]);
  });

  it("leaves no mean or stopGradient, and no input among the roots", () => {
    const p = canonicalisePhase(tiny().phases[0]!);
    expect(reachable(p).filter((t) => t.node.op === "mean" || t.node.op === "stopGradient")).toEqual([]);
    expect(p.roots.some((t) => t.node.op === "input")).toBe(false);
  });

  it("merges equal values (hash-consing): two outputs of one expression are one root", () => {
    const p = canonicalisePhase(tiny({ outputs: (y) => ({ a: d.add(y, 1), b: d.add(y, 1) }) }).phases[0]!);
    expect(p.outputs[0]!.value).toBe(p.outputs[1]!.value);
    expect(new Set(p.roots).size).toBe(p.roots.length);
  });
});

describe("schedule", () => {
  it("orders every reachable node once, each after its inputs", () => {
    const canonical = canonicalisePhase(tiny().phases[0]!);
    const { order } = schedulePhase(canonical);
    const at = new Map(order.map((t, i) => [t.id, i]));
    expect(at.size).toBe(order.length);
    expect(order.length).toBe(d.topoSort(canonical.roots).length);
    for (const t of order) for (const i of t.node.inputs) expect(at.get(i.id)!).toBeLessThan(at.get(t.id)!);
  });
});

describe("fuse", () => {
  it("plans over the scheduled order and stores every root", () => {
    const scheduled = schedulePhase(canonicalisePhase(tiny().phases[0]!));
    const { fusion } = fusePhase(scheduled);
    expect(fusion.order).toBe(scheduled.order);
    const stored = new Set(fusion.kernels.flatMap((k) => [k.root, ...(k.siblings ?? [])]).map((t) => t.id));
    for (const r of scheduled.roots) expect(stored.has(r.id)).toBe(true);
  });

  it("fuses the bias and ReLU into the convolution (rule E1)", () => {
    const { fusion } = fusePhase(schedulePhase(canonicalisePhase(tiny().phases[0]!)));
    expect(fusion.kernels.filter((k) => k.anchor?.node.op === "conv2d").map((k) => k.root.node.op)).toEqual(["relu"]);
  });
});

describe("lower", () => {
  it("gives every kernel plan at least one dispatch, in plan order, named by phase and provenance", () => {
    const phase = lowered();
    const plans = [...new Set(phase.dispatches.map((x) => x.plan))];
    expect(plans).toEqual(phase.fusion.kernels);
    expect(phase.dispatches[0]!.stage.name.startsWith("step_000_conv2d_G_w")).toBe(true);
    expect(phase.dispatches[0]!.provenance).toMatchObject({ scope: "block.conv", pass: "forward", op: "conv2d", param: "G/w" });
  });

  it("keeps every dispatch within the binding limits", () => {
    for (const { stage } of lowered().dispatches) expect(stage.bindings.length).toBeLessThanOrEqual(LIMITS.maxBindings);
  });

  it("a kernel over the binding count is a limit error naming its node and scope", () => {
    const e = left(lowerPhase("tiny", { ...LIMITS, maxBindings: 2 })(fusePhase(schedulePhase(canonicalisePhase(tiny().phases[0]!)))));
    expect(e).toMatchObject({ kind: "limit", program: "tiny", phase: "step", node: { op: "conv2d", scope: "block.conv" } });
  });
});

describe("lifetimes", () => {
  it("puts params, inputs and outputs in slots, and only other buffers in scratch", () => {
    const { phase } = resident();
    const homes = phase.dispatches.flatMap((x) => x.homes);
    const slots = new Set(homes.flatMap((h) => (h.kind === "slot" ? [h.slot] : [])));
    expect([...slots].sort()).toEqual(["G/b", "G/w", "loss", "x", "y"]);
    const scratch = new Set(homes.flatMap((h) => (h.kind === "scratch" ? [h.id] : [])));
    expect(new Set(phase.lifetimes.map((l) => l.id))).toEqual(scratch);
  });

  it("makes each scratch lifetime span its first to last binding, and the state copy's source live to the end", () => {
    const { phase } = resident();
    for (const l of phase.lifetimes) {
      const uses = phase.dispatches.flatMap((x, s) => (x.homes.some((h) => h.kind === "scratch" && h.id === l.id) ? [s] : []));
      expect(l.first).toBe(uses[0]);
      const copied = phase.copies.some((c) => c.from.kind === "scratch" && c.from.id === l.id);
      expect(l.last).toBe(copied ? phase.dispatches.length : uses[uses.length - 1]);
    }
    expect(phase.copies.map((c) => c.to)).toEqual(["G/b"]);
  });

  it("gives each output its own slot; an output that is an input, or another output, shares that slot", () => {
    const { phase } = resident(tiny({ outputs: (y, x) => ({ y, same: x }) }));
    expect(phase.outputSlots.map((s) => s.placement)).toEqual([{ kind: "own" }, { kind: "alias", of: "x" }]);
    const aliased = resident(tiny({ outputs: (y) => ({ y, again: y }) })).phase.outputSlots;
    expect(aliased.map((s) => s.placement)).toEqual([{ kind: "own" }, { kind: "alias", of: "y" }]);
  });

  it("an output named like a parameter is a slot error", () => {
    const program = tiny({ outputs: (y) => ({ "G/w": y }) });
    const e = left(phaseLifetimes(program.name, declareSlots(program))(lowered(program)));
    expect(e).toMatchObject({ kind: "slot", phase: "step", node: { op: "relu", scope: "block.conv" } });
  });
});

describe("plan", () => {
  it("places slots and constants without overlap, aligned, inside their arena", () => {
    const { layout } = layoutOf();
    const ranges = [...layout.slots.values(), ...layout.constants].map((p) => [p.arena, p.offset, p.offset + alignUp(p.bytes)] as const);
    const distinct = [...new Map(ranges.map((r) => [r.join(","), r])).values()];
    for (const [arena, from, to] of distinct) {
      expect(from % 256).toBe(0);
      expect(to).toBeLessThanOrEqual(layout.arenas[arena]!.bytes + 255);
      for (const [a2, f2, t2] of distinct) if (a2 === arena && f2 !== from) expect(t2 <= from || to <= f2).toBe(true);
    }
  });

  it("never lets scratch buffers live at the same step share bytes", () => {
    const { layout } = layoutOf();
    const buffers = [...layout.scratch[0]!.plan.buffers.values()];
    for (const a of buffers) {
      for (const b of buffers) {
        if (a === b || a.last < b.first || b.last < a.first) continue;
        expect(a.offset + alignUp(a.bytes) <= b.offset || b.offset + alignUp(b.bytes) <= a.offset).toBe(true);
      }
    }
  });

  it("a tensor larger than an arena is an arena error", () => {
    const { program, phase } = resident();
    const e = left(planLayout(program.name, 256)([...declareSlots(program), ...phase.outputSlots], [phase]));
    expect(e).toMatchObject({ kind: "arena", program: "tiny", arenaBytes: 256 });
  });
});

describe("link", () => {
  it("makes one record per dispatch, naming the shader of its portable variant", () => {
    const { phase, layout } = layoutOf();
    const linked = linkPhases([phase], layout);
    const dispatches = linked.phases[0]!.dispatches;
    expect(linked.kernels).toHaveLength(dispatches.length);
    dispatches.forEach((x, i) => expect(x.variants[x.variants.length - 1]!.shader).toBe(linked.kernels[i]!.shader));
  });

  it("binds every buffer at a placement of the layout, and pools each kernel text once", () => {
    const { phase, layout } = layoutOf();
    const linked = linkPhases([phase], layout);
    linked.phases[0]!.dispatches.forEach((x, i) => {
      expect(x.bindings).toHaveLength(phase.dispatches[i]!.homes.length);
      for (const v of x.variants) expect(linked.shaders[v.shader]).toBeDefined();
    });
    expect(new Set(linked.shaders.map((s) => s.name)).size).toBe(linked.shaders.length);
  });
});

describe("assemble", () => {
  it("lists every slot placed, and limits that cover every dispatch", () => {
    const { program, phase, layout } = layoutOf();
    const slots = [...declareSlots(program), ...phase.outputSlots];
    const m = assembleModule(program, slots, layout, linkPhases([phase], layout));
    expect(m.tensors.map((t) => t.name)).toEqual(slots.map((s) => s.spec.name));
    expect(m.tensors.map((t) => t.name)).toEqual(["x", "G/w", "G/b", "loss", "y"]);
    const bindings = m.phases.flatMap((p) => p.dispatches.flatMap((x) => x.bindings));
    expect(Math.max(...bindings.map((b) => b.bytes))).toBeLessThanOrEqual(m.limits.maxStorageBufferBindingSize);
    expect(Math.max(...m.phases.flatMap((p) => p.dispatches.map((x) => x.bindings.length)))).toBe(m.limits.maxStorageBuffersPerShaderStage);
  });
});

describe("the chain", () => {
  it("compileProgram is tryCompileProgram's value", () => {
    const a = compileProgram(tiny());
    const b = right(tryCompileProgram(tiny()));
    expect(b.module.phases.map((p) => p.dispatches.map((x) => x.name))).toEqual(a.module.phases.map((p) => p.dispatches.map((x) => x.name)));
    expect(b.persistentBytes).toBe(a.persistentBytes);
  });

  it("compileProgram throws the rendered error when the chain fails", () => {
    expect(() => compileProgram(tiny(), { maxBindings: 2 })).toThrow(/^codegen: program tiny, phase step: conv2d#\d+ in block\.conv: kernel step_000_conv2d_G_w\S* needs \d+ storage bindings, more than 2$/);
  });

  it("a value WGSL cannot write is a lowering error naming the node", () => {
    const x = d.input("x", [4], "f32") as F32<1>;
    const program = d.defineProgram({ name: "nan", params: [], phases: [{ name: "f", outputs: { y: d.withScope("head", () => d.add(x, Number.NaN)) }, updates: {} }] });
    const e = left(tryCompileProgram(program));
    expect(e).toMatchObject({ kind: "lowering", program: "nan", phase: "f", node: { op: "add", scope: "head" } });
    expect(renderCompileError(e, "examples/nan.ts#nan")).toMatch(/^codegen: program nan \(examples\/nan\.ts#nan\), phase f: add#\d+ in head cannot be compiled: NaN constants cannot be written in WGSL$/);
  });

  it("a ShapeError thrown while building is a build error naming the op", () => {
    const exported = d.exportProgram("bad-shapes", "", () => {
      const x = d.input("x", [1, 3, 8, 8], "f32") as F32<4>;
      const w = d.input("w", [4, 5, 3, 3], "f32", "param") as F32<4>;
      return d.defineProgram({ name: "bad-shapes", params: [], phases: [{ name: "f", outputs: { y: d.conv2d(x, w) }, updates: {} }] });
    });
    const e = left(tryCompileExport(exported));
    expect(e).toMatchObject({ kind: "build", program: "bad-shapes", op: "conv2d" });
    expect(renderCompileError(e, "examples/bad.ts#bad")).toMatch(/^codegen: program bad-shapes \(examples\/bad\.ts#bad\) does not build: conv2d: /);
  });
});
