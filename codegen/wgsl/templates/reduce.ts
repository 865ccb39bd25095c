// Reductions (sum, max) over axes with keepdims, two-stage when long; argmax along one axis.

import { numel } from "../../../dsl/index";
import { type KernelPlan } from "../../fusion";
import { type KernelBuilder, type Scope, isNanExpr, literal, maxExpr, unflatten, valueAt } from "../expr";
import { type Stage, CPU_SUBGROUP, assemble, assembleSubgroupVariant, bindOutput, sig, storeRoot } from "../kernel";
import { type TemplateContext, bodyScope, builder, ceilDiv, epilogueNote } from "./context";

/** Reductions at least this long get the CPU subgroup-per-output variant. */
const CPU_REDUCE_MIN = 64;

/**
 * Splits of a reduction of length K into partial sums: enough invocations to fill a device
 * (4096) while each still reduces at least 1024 elements. Fixed at codegen time, so the
 * summation order, and the result, never change between runs.
 */
export function reductionSplits(outputs: number, k: number): number {
  if (k < 4096) return 1;
  return Math.max(1, Math.min(256, Math.floor(k / 1024), Math.ceil(4096 / outputs)));
}

export function reduce(plan: KernelPlan, ctx: TemplateContext): Stage[] {
  const r = plan.anchor!;
  if (r.node.op !== "sum" && r.node.op !== "max") throw new Error("reduce: not a sum or max");
  const x = r.node.inputs[0]!;
  const axes = r.node.attrs.axes;
  const isMax = r.node.op === "max";
  const outShape = r.shape;
  const M = numel(outShape);
  const redShape = axes.map((a) => x.shape[a]!);
  const K = numel(redShape);
  const S = reductionSplits(M, K);
  // The accumulator has the reduced tensor's type (sums of i32 stay exact integers).
  const dt = x.dtype === "i32" ? "i32" : "f32";
  const init = isMax ? (dt === "i32" ? "(-2147483647i - 1i)" : literal(-Infinity, "f32")) : literal(0, dt);
  // An f32 max is NaN over a NaN (PyTorch's amax; WGSL's max may drop it).
  const combine = (k: KernelBuilder, acc: string, v: string) =>
    !isMax ? `${acc} = ${acc} + ${v};` : `${acc} = ${dt === "f32" ? maxExpr(k, acc, v) : `max(${acc}, ${v})`};`;
  const header = [`${r.node.op} over axes [${axes.join(",")}] of ${sig(x)}: ${M} outputs x ${K} elements, ${S} split(s)`, ...epilogueNote(plan)];

  /** Emits the loop over reduced elements [from, to) (every `step`-th) for output index `o` into acc. */
  // The loop body is generated first: values that do not depend on kk (a per-channel mean or
  // scale inside the summand) are hoisted before the loop (Scope: loop hoisting).
  const loop = (k: KernelBuilder, s: Scope, outIdx: readonly string[], from: string, to: string, acc: string, step = 1) => {
    const inner = s.child({ hoist: ["kk"] });
    const red = unflatten(redShape, "kk");
    const full = outIdx.map((e, a) => (axes.includes(a) ? red[axes.indexOf(a)]! : e));
    const v = valueAt(k, inner, x, full);
    inner.line(combine(k, acc, v));
    s.line(`var ${acc} = ${init};`);
    s.line(`for (var kk = ${from}; kk < ${to}; ${step === 1 ? "kk++" : `kk += ${step}i`}) {`);
    s.lines.push(...inner.lines);
    s.line(`}`);
  };

  if (S === 1) {
    const k = builder(ctx);
    const s = bodyScope();
    const outIdx = unflatten(outShape, "gi");
    loop(k, s, outIdx, "0i", `${K}i`, "acc");
    storeRoot(k, s, plan.root, r, "acc", outIdx);
    const main = assemble(k, { name: ctx.name, header, body: s, threads: M, flops: M * K });
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
    loop(kc, c, outIdxC, "lane", `${K}i`, "part", CPU_SUBGROUP);
    c.line(`var acc = part;`);
    for (const m of [4, 2, 1]) c.line(combine(kc, "acc", `subgroupShuffleXor(acc, ${m}u)`));
    c.line(`if (lane == 0i) {`);
    const st = c.child();
    storeRoot(kc, st, plan.root, r, "acc", outIdxC);
    c.lines.push(...st.lines);
    c.line(`}`);
    return [{ ...main, alternatives: [assembleSubgroupVariant(kc, main.bindings, { header: [...header, `one ${CPU_SUBGROUP}-lane subgroup per output`], body: c, workgroups: [M, 1, 1] })] }];
  }
  const partialName = `${ctx.name}_partial`;
  const partial = { kind: "temp" as const, name: partialName, bytes: M * S * 4 };
  const chunk = ceilDiv(K, S);
  // Stage 1: invocation (o, s) reduces elements [s*chunk, min(K, (s+1)*chunk)) of output o.
  const k1 = builder(ctx);
  const s1 = bodyScope();
  s1.line(`let o = gi / ${S}i;`);
  s1.line(`let sp = gi % ${S}i;`);
  const outIdx1 = unflatten(outShape, "o");
  loop(k1, s1, outIdx1, `sp * ${chunk}i`, `min(${K}i, (sp + 1i) * ${chunk}i)`, "acc");
  const p1 = bindOutput(k1, partial, dt);
  s1.line(`${p1}[gi] = acc;`);
  // Stage 2: each output combines its S partials in order, then applies the epilogue.
  const k2 = builder(ctx);
  const s2 = bodyScope();
  const p2 = k2.bind(partial, "read", dt);
  s2.line(`var acc = ${init};`);
  s2.line(`for (var sp = 0i; sp < ${S}i; sp++) { ${combine(k2, "acc", `${p2}[gi * ${S}i + sp]`)} }`);
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
