// Softmax and log-softmax: one invocation per row along the axis. Softmax cross-entropy loss:
// per-pixel NLL, two-stage deterministic mean over valid pixels.

import { type Tensor, numel } from "../../../dsl/index";
import { type KernelPlan } from "../../fusion";
import { literal, unflatten, valueAt } from "../expr";
import { type Stage, assemble, bindOutput, sig, storeRoot } from "../kernel";
import { type TemplateContext, bodyScope, builder, ceilDiv, epilogueNote } from "./context";

export function softmax(plan: KernelPlan, ctx: TemplateContext): Stage[] {
  const r = plan.anchor!;
  if (r.node.op !== "softmax" && r.node.op !== "logSoftmax") throw new Error("softmax template");
  const x = r.node.inputs[0]!;
  const axis = r.node.attrs.axis;
  const L = x.shape[axis]!;
  const rowShape = x.shape.map((d, a) => (a === axis ? 1 : d));
  const rows = numel(rowShape);
  const k = builder(ctx);
  const s = bodyScope();
  const base = unflatten(rowShape, "gi");
  const at = (e: string) => base.map((b, a) => (a === axis ? e : b));
  // The row is evaluated once into registers (rows are short: classes), then reused. The
  // plain max is enough for NaN: a NaN element makes its exp(row[c] - m), so the total and
  // every output NaN, as PyTorch (and +Inf makes m = Inf and Inf - Inf = NaN, as PyTorch).
  // The loop body first: what does not depend on the class (an inlined resize's taps and
  // weights) is hoisted before the loop (Scope: loop hoisting), computed once per row.
  const load = s.child({ hoist: ["c"] });
  const v = valueAt(k, load, x, at("c"));
  load.line(`row[c] = ${v};`);
  load.line(`m = max(m, row[c]);`);
  s.line(`var row: array<f32, ${L}>;`);
  s.line(`var m = ${literal(-Infinity, "f32")};`);
  s.line(`for (var c = 0i; c < ${L}i; c++) {`);
  s.lines.push(...load.lines, `  }`);
  s.line(`var total = 0.0f;`);
  s.line(`for (var c = 0i; c < ${L}i; c++) { total = total + exp(row[c] - m); }`);
  s.line(`for (var c = 0i; c < ${L}i; c++) {`);
  const write = s.child();
  const value = r.node.op === "softmax" ? `exp(row[c] - m) / total` : `row[c] - m - log(total)`;
  const y = write.bind(`y`, "y", value);
  storeRoot(k, write, plan.root, r, y, at("c"));
  s.lines.push(...write.lines, `  }`);
  return [
    assemble(k, {
      name: ctx.name,
      header: [`${r.node.op} along axis ${axis} (${L}) of ${sig(x)}`, ...epilogueNote(plan)],
      body: s,
      threads: rows,
      flops: rows * L * 4,
    }),
  ];
}

export function crossEntropyLoss(plan: KernelPlan, ctx: TemplateContext): Stage[] {
  const r = plan.anchor!;
  if (r.node.op !== "softmaxCrossEntropy") throw new Error("crossEntropyLoss template");
  const [x, labels] = r.node.inputs as [Tensor, Tensor];
  const C = x.shape[1]!;
  const pixels = numel(labels.shape);
  // Partial sums of 64 pixels each (at most 4096 of them): 2048 pixels each left the demo's
  // 128x128 loss to 8 invocations, one SIMD row of one core, while each pixel costs a class
  // loop over the (often upsampled) logits. Fixed at codegen time, so the summation order, and
  // the loss, never change between runs.
  const S = Math.max(1, Math.min(4096, Math.ceil(pixels / 64)));
  const chunk = ceilDiv(pixels, S);
  const partial = { kind: "temp" as const, name: `${ctx.name}_partial`, bytes: S * 2 * 4 };
  // Stage 1: invocation sp sums NLL and counts valid pixels over its chunk.
  const k1 = builder(ctx);
  const s1 = bodyScope();
  s1.line(`var loss = 0.0f;`);
  s1.line(`var count = 0.0f;`);
  s1.line(`var row: array<f32, ${C}>;`);
  s1.line(`for (var p = gi * ${chunk}i; p < min(${pixels}i, (gi + 1i) * ${chunk}i); p++) {`);
  const px = s1.child();
  const lidx = unflatten(labels.shape, "p");
  const label = px.bind("label", "label", valueAt(k1, px, labels, lidx));
  px.line(`if (${label} == ${r.node.attrs.ignoreIndex}i || ${label} < 0i || ${label} >= ${C}i) { continue; }`);
  // The class loop's body first, so that the pixel's resize taps are hoisted out of it.
  const cls = px.child({ hoist: ["c"] });
  const xi = [lidx[0]!, "c", ...lidx.slice(1)];
  cls.line(`row[c] = ${valueAt(k1, cls, x, xi)};`);
  cls.line(`m = max(m, row[c]);`);
  px.line(`var m = ${literal(-Infinity, "f32")};`);
  px.line(`for (var c = 0i; c < ${C}i; c++) {`);
  px.lines.push(...cls.lines, `    }`);
  px.line(`var total = 0.0f;`);
  px.line(`for (var c = 0i; c < ${C}i; c++) { total = total + exp(row[c] - m); }`);
  // -log softmax(x)[label] = log sum exp(x - m) + m - x[label]; NaN over a NaN (or +Inf)
  // logit of a valid pixel through the total, as in the softmax template.
  px.line(`loss = loss + log(total) + m - row[${label}];`);
  px.line(`count = count + 1.0f;`);
  s1.lines.push(...px.lines, `  }`);
  const p1 = bindOutput(k1, partial, "f32");
  s1.line(`${p1}[2i * gi] = loss;`);
  s1.line(`${p1}[2i * gi + 1i] = count;`);
  // Stage 2: one invocation combines the partials in order; no valid pixel gives 0, not NaN.
  const k2 = builder(ctx);
  const s2 = bodyScope();
  const p2 = k2.bind(partial, "read", "f32");
  s2.line(`var loss = 0.0f;`);
  s2.line(`var count = 0.0f;`);
  s2.line(`for (var sp = 0i; sp < ${S}i; sp++) { loss = loss + ${p2}[2i * sp]; count = count + ${p2}[2i * sp + 1i]; }`);
  s2.line(`let mean = select(0.0f, loss / count, count > 0.0f);`);
  storeRoot(k2, s2, plan.root, r, "mean", []);
  const header = [`softmax cross-entropy of ${sig(x)} with labels ${sig(labels)}, ignore ${r.node.attrs.ignoreIndex}, ${S} split(s)`];
  return [
    assemble(k1, { name: `${ctx.name}_stage1`, header, body: s1, threads: S, flops: pixels * C * 4 }),
    assemble(k2, { name: `${ctx.name}_stage2`, header: [`final combine of the partials`, ...epilogueNote(plan)], body: s2, threads: 1, flops: S * 2 }),
  ];
}
