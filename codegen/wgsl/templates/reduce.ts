// Reductions (sum, max) over axes with keepdims, two-stage when long; argmax along one axis.

import { type Tensor, numel } from "../../../dsl/index";
import { type KernelPlan } from "../../fusion";
import { type KernelBuilder, type Scope, flatIndex, isNanExpr, literal, maxExpr, toStorage, unflatten, valueAt } from "../expr";
import { type Stage, CPU_SUBGROUP, assemble, assembleSubgroupVariant, bindOutput, describe, sig, storeRoot } from "../kernel";
import { type TemplateContext, bodyScope, builder, ceilDiv, epilogueNote } from "./context";

/** Reductions at least this long get the CPU subgroup-per-output variant. */
const CPU_REDUCE_MIN = 64;

/**
 * Splits of a reduction of length K into partial sums: enough invocations to fill a device
 * (4096) while each still reduces at least 1024 elements. Fixed at codegen time, so the
 * summation order, and the result, never change between runs.
 */
/**
 * The initial value and the combine step of reduction `r`'s accumulator, which has the reduced
 * tensor's type (sums of i32 stay exact integers). An f32 max is NaN over a NaN (PyTorch's amax;
 * WGSL's max may drop it).
 */
function accumulator(k: KernelBuilder, r: Tensor): { readonly init: string; readonly combine: (acc: string, v: string) => string } {
  const isMax = r.node.op === "max";
  const dt = r.node.inputs[0]!.dtype === "i32" ? "i32" : "f32";
  const init = isMax ? (dt === "i32" ? "(-2147483647i - 1i)" : literal(-Infinity, "f32")) : literal(0, dt);
  const combine = (acc: string, v: string) => (!isMax ? `${acc} = ${acc} + ${v};` : `${acc} = ${dt === "f32" ? maxExpr(k, acc, v) : `max(${acc}, ${v})`};`);
  return { init, combine };
}

export function reductionSplits(outputs: number, k: number): number {
  if (k < 4096) return 1;
  return Math.max(1, Math.min(256, Math.floor(k / 1024), Math.ceil(4096 / outputs)));
}

export function reduce(plan: KernelPlan, ctx: TemplateContext): Stage[] {
  const r = plan.anchor!;
  if (r.node.op !== "sum" && r.node.op !== "max") throw new Error("reduce: not a sum or max");
  const x = r.node.inputs[0]!;
  const axes = r.node.attrs.axes;
  const outShape = r.shape;
  const M = numel(outShape);
  const redShape = axes.map((a) => x.shape[a]!);
  const K = numel(redShape);
  const S = reductionSplits(M, K);
  // Every reduction the kernel computes (rule R1 of fusion.ts): the anchor's, then the group's.
  const members = [{ root: plan.root, anchor: r }, ...(plan.reductions ?? [])];
  const header = [
    `${r.node.op} over axes [${axes.join(",")}] of ${sig(x)}: ${M} outputs x ${K} elements, ${S} split(s)`,
    ...epilogueNote(plan),
    ...(plan.reductions ?? []).map((m) => `then ${m.anchor.node.op} over the same axes${m.root !== m.anchor ? " with a fused epilogue" : ""}, in the same kernel`),
  ];

  /** Emits the loop over reduced elements [from, to) (every `step`-th) of member m's input for output `outIdx` into acc. */
  const loop = (k: KernelBuilder, s: Scope, m: Tensor, outIdx: readonly string[], from: string, to: string, acc: string, step = 1) => {
    const { init, combine } = accumulator(k, m);
    // The loop body is generated first: values that do not depend on kk (a per-channel mean or
    // scale inside the summand) are hoisted before the loop (Scope: loop hoisting).
    const inner = s.child({ hoist: ["kk"] });
    const red = unflatten(redShape, "kk");
    const full = outIdx.map((e, a) => (axes.includes(a) ? red[axes.indexOf(a)]! : e));
    const v = valueAt(k, inner, m.node.inputs[0]!, full);
    inner.line(combine(acc, v));
    s.line(`var ${acc} = ${init};`);
    s.line(`for (var kk = ${from}; kk < ${to}; ${step === 1 ? "kk++" : `kk += ${step}i`}) {`);
    s.lines.push(...inner.lines);
    s.line(`}`);
  };

  /**
   * The member reductions one after the other for the output at outIdx: `reduceOne` leaves
   * member i's result in `acc${i}` (in every lane), then its root is stored (by `store`), and
   * later members read it from the register it was stored from (rule R1: only at outIdx).
   */
  const computeAll = (k: KernelBuilder, s: Scope, outIdx: readonly string[], reduceOne: (m: Tensor, acc: string) => void, guard?: string) => {
    const own = outIdx.join(",");
    members.forEach((m, i) => {
      const acc = members.length === 1 ? "acc" : `acc${i}`;
      reduceOne(m.anchor, acc);
      k.substitutions.set(m.anchor.id, () => acc);
      const value = valueAt(k, s, m.root, outIdx, true);
      k.substitutions.delete(m.anchor.id);
      const out = bindOutput(k, { kind: "tensor", tensor: m.root }, m.root.dtype === "bool" ? "u32" : m.root.dtype);
      const store = `${out}[${flatIndex(m.root.shape, outIdx)}] = ${toStorage(value, m.root.dtype)};`;
      s.line(guard ? `if (${guard}) { ${store} }` : store);
      k.substitutions.set(m.root.id, (at) => {
        if (at.join(",") !== own) throw new Error(`codegen: reduction ${describe(m.root)} read at another index (fusion rule R1)`);
        return value;
      });
    });
    for (const m of members) k.substitutions.delete(m.root.id);
  };

  if (S === 1) {
    const k = builder(ctx);
    const s = bodyScope();
    const outIdx = unflatten(outShape, "gi");
    computeAll(k, s, outIdx, (m, acc) => loop(k, s, m, outIdx, "0i", `${K}i`, acc));
    const main = assemble(k, { name: ctx.name, header, body: s, threads: M, flops: M * K * members.length });
    // CPU variant for few long reductions (per-channel statistics): an invocation per output
    // leaves most of lavapipe's lanes and one of its cores idle and loads at a stride. A
    // subgroup per output instead: lane l takes elements l, l+8, ... (neighbouring lanes read
    // neighbouring elements), then three shuffle-xor steps combine the lanes. Addition is
    // commutative, so every lane ends with the same bits, whatever the lane: deterministic.
    if (K < CPU_REDUCE_MIN || M > 65535) return [main];
    const kc = builder(ctx);
    const c = bodyScope();
    c.line(`let o = i32(wid.x);`);
    const outIdxC = unflatten(outShape, "o");
    computeAll(
      kc,
      c,
      outIdxC,
      (m, acc) => {
        const part = members.length === 1 ? "part" : `part${acc.slice(3)}`;
        loop(kc, c, m, outIdxC, "lane", `${K}i`, part, CPU_SUBGROUP);
        const { combine } = accumulator(kc, m);
        c.line(`var ${acc} = ${part};`);
        for (const step of [4, 2, 1]) c.line(combine(acc, `subgroupShuffleXor(${acc}, ${step}u)`));
      },
      "lane == 0i",
    );
    return [{ ...main, alternatives: [assembleSubgroupVariant(kc, main.bindings, { header: [...header, `one ${CPU_SUBGROUP}-lane subgroup per output`], body: c, workgroups: [M, 1, 1] })] }];
  }
  if (members.length > 1) throw new Error("codegen: a reduction group of a two-stage reduction (fusion rule R1 groups one-pass reductions only)");
  const dt = x.dtype === "i32" ? "i32" : "f32";
  const partialName = `${ctx.name}_partial`;
  const partial = { kind: "temp" as const, name: partialName, bytes: M * S * 4 };
  const chunk = ceilDiv(K, S);
  // Stage 1: invocation (o, s) reduces elements [s*chunk, min(K, (s+1)*chunk)) of output o.
  const k1 = builder(ctx);
  const s1 = bodyScope();
  s1.line(`let o = gi / ${S}i;`);
  s1.line(`let sp = gi % ${S}i;`);
  const outIdx1 = unflatten(outShape, "o");
  loop(k1, s1, r, outIdx1, `sp * ${chunk}i`, `min(${K}i, (sp + 1i) * ${chunk}i)`, "acc");
  const p1 = bindOutput(k1, partial, dt);
  s1.line(`${p1}[gi] = acc;`);
  // Stage 2: each output combines its S partials in order, then applies the epilogue.
  const k2 = builder(ctx);
  const s2 = bodyScope();
  const p2 = k2.bind(partial, "read", dt);
  const { init, combine } = accumulator(k2, r);
  s2.line(`var acc = ${init};`);
  s2.line(`for (var sp = 0i; sp < ${S}i; sp++) { ${combine("acc", `${p2}[gi * ${S}i + sp]`)} }`);
  storeRoot(k2, s2, plan.root, r, "acc", unflatten(outShape, "gi"));
  return [
    assemble(k1, { name: `${ctx.name}_stage1`, header, body: s1, threads: M * S, flops: M * K }),
    assemble(k2, { name: `${ctx.name}_stage2`, header: [`final ${S}-way combine of the partials`], body: s2, threads: M, flops: M * S }),
  ];
}

/** argmax along one axis (keepdims): ties to the first index; a NaN beats any number (PyTorch: the first NaN). */
export function argmax(plan: KernelPlan, ctx: TemplateContext): Stage[] {
  const r = plan.anchor!;
  if (r.node.op !== "argmax") throw new Error("argmax template");
  const x = r.node.inputs[0]!;
  const axis = r.node.attrs.axis;
  const k = builder(ctx);
  const s = bodyScope();
  const outIdx = unflatten(r.shape, "gi");
  // The first element seeds the search, so any value (an i32, -Infinity) compares correctly.
  s.line(`var best = ${valueAt(k, s, x, outIdx.map((e, a) => (a === axis ? "0i" : e)))};`);
  s.line(`var arg = 0i;`);
  s.line(`for (var kk = 1i; kk < ${x.shape[axis]}i; kk++) {`);
  const inner = s.child();
  const v = valueAt(k, inner, x, outIdx.map((e, a) => (a === axis ? "kk" : e)));
  const better = x.dtype === "f32" ? `${v} > best || (${isNanExpr(k, v)} && !${isNanExpr(k, "best")})` : `${v} > best`;
  inner.line(`if (${better}) { best = ${v}; arg = kk; }`);
  s.lines.push(...inner.lines, `  }`);
  storeRoot(k, s, plan.root, r, "arg", outIdx);
  const n = numel(r.shape);
  return [assemble(k, { name: ctx.name, header: [`argmax along axis ${axis} of ${sig(x)}`], body: s, threads: n, flops: n * x.shape[axis]! })];
}
