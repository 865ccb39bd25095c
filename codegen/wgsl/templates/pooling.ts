// Max pooling and its gather-form gradient.
//
// A window's maximum is PyTorch's (CPU and CUDA kernels alike): scanning the window in order,
// an element replaces the running maximum when `val > best || isnan(val)`. So the maximum is
// NaN when the window holds a NaN, the gradient goes to the window's last NaN, and otherwise
// to its first maximum (ties keep the earlier element). The first in-range element always
// seeds the scan, so a window of -Inf picks its first element, as PyTorch's initial index.

import { poolTapWgsl } from "../../../format/conv-geometry";
import { type Tensor, numel } from "../../../dsl/index";
import { type KernelPlan } from "../../fusion";
import { type KernelBuilder, isNanExpr, literal, unflatten } from "../expr";
import { type Stage, assemble, sig, storeRoot } from "../kernel";
import { type TemplateContext, bodyScope, builder, epilogueNote } from "./context";

/** Whether the window element `val` replaces the running maximum `best` (see above). */
function poolTakes(k: KernelBuilder, first: string): string {
  return `${first} || val > best || ${isNanExpr(k, "val")}`;
}

export function maxPool2d(plan: KernelPlan, ctx: TemplateContext): Stage[] {
  const a = plan.anchor!;
  if (a.node.op !== "maxPool2d") throw new Error("maxPool2d template");
  const x = a.node.inputs[0]!;
  const g = a.node.attrs;
  const [, , H, W] = x.shape as [number, number, number, number];
  const k = builder(ctx);
  const s = bodyScope();
  const xb = k.bind({ kind: "tensor", tensor: x }, "read", "f32");
  const idx = unflatten(a.shape, "gi");
  s.line(`let nc = gi / ${a.shape[2]! * a.shape[3]!}i;`);
  s.line(`let i = ${idx[2]};`);
  s.line(`let j = ${idx[3]};`);
  s.line(`var best = ${literal(-Infinity, "f32")};`);
  s.line(`var found = false;`);
  s.line(`for (var u = 0i; u < ${g.kernel[0]}i; u++) {`);
  s.line(`  let h = ${poolTapWgsl("i", g.stride[0], g.padding[0], "u")};`);
  s.line(`  if (h < 0i || h >= ${H}i) { continue; }`);
  s.line(`  for (var v = 0i; v < ${g.kernel[1]}i; v++) {`);
  s.line(`    let w = ${poolTapWgsl("j", g.stride[1], g.padding[1], "v")};`);
  s.line(`    if (w < 0i || w >= ${W}i) { continue; }`);
  s.line(`    let val = ${xb}[(nc * ${H}i + h) * ${W}i + w];`);
  s.line(`    if (${poolTakes(k, "!found")}) { best = val; found = true; }`);
  s.line(`  }`);
  s.line(`}`);
  storeRoot(k, s, plan.root, a, "best", [idx[0]!, idx[1]!, "i", "j"]);
  const n = numel(a.shape);
  return [
    assemble(k, {
      name: ctx.name,
      header: [`maxPool2d ${sig(x)}: kernel [${g.kernel}], stride [${g.stride}], padding [${g.padding}], ceil ${g.ceilMode}`, ...epilogueNote(plan)],
      body: s,
      threads: n,
      flops: n * g.kernel[0] * g.kernel[1],
    }),
  ];
}

/**
 * dx[n,c,h,w] = sum of dy over the windows whose maximum (scan order, as PyTorch: see above)
 * is (h, w). Each input position visits the windows that contain it and re-finds each
 * window's argmax.
 */
export function maxPool2dGrad(plan: KernelPlan, ctx: TemplateContext): Stage[] {
  const a = plan.anchor!;
  if (a.node.op !== "maxPool2dGrad") throw new Error("maxPool2dGrad template");
  const [x, dy] = a.node.inputs as [Tensor, Tensor];
  const g = a.node.attrs;
  const [, , H, W] = x.shape as [number, number, number, number];
  const [, , OH, OW] = dy.shape as [number, number, number, number];
  const [KH, KW] = g.kernel;
  const [SH, SW] = g.stride;
  const [PH, PW] = g.padding;
  const k = builder(ctx);
  const s = bodyScope();
  const xb = k.bind({ kind: "tensor", tensor: x }, "read", "f32");
  const db = k.bind({ kind: "tensor", tensor: dy }, "read", "f32");
  const idx = unflatten(x.shape, "gi");
  s.line(`let nc = gi / ${H * W}i;`);
  s.line(`let h = ${idx[2]};`);
  s.line(`let w = ${idx[3]};`);
  // Windows i with i*s - p <= h <= i*s - p + k - 1.
  s.line(`let i0 = max(0i, (h + ${PH}i - ${KH - 1}i + ${SH - 1}i + ${SH * KH}i) / ${SH}i - ${KH}i);`);
  s.line(`let i1 = min(${OH - 1}i, (h + ${PH}i) / ${SH}i);`);
  s.line(`let j0 = max(0i, (w + ${PW}i - ${KW - 1}i + ${SW - 1}i + ${SW * KW}i) / ${SW}i - ${KW}i);`);
  s.line(`let j1 = min(${OW - 1}i, (w + ${PW}i) / ${SW}i);`);
  s.line(`var acc = 0.0f;`);
  s.line(`for (var i = i0; i <= i1; i++) {`);
  s.line(`  for (var j = j0; j <= j1; j++) {`);
  s.line(`    var best = ${literal(-Infinity, "f32")};`);
  s.line(`    var arg = -1i;`);
  s.line(`    for (var u = 0i; u < ${KH}i; u++) {`);
  s.line(`      let hh = ${poolTapWgsl("i", SH, PH, "u")};`);
  s.line(`      if (hh < 0i || hh >= ${H}i) { continue; }`);
  s.line(`      for (var v = 0i; v < ${KW}i; v++) {`);
  s.line(`        let ww = ${poolTapWgsl("j", SW, PW, "v")};`);
  s.line(`        if (ww < 0i || ww >= ${W}i) { continue; }`);
  s.line(`        let val = ${xb}[(nc * ${H}i + hh) * ${W}i + ww];`);
  s.line(`        if (${poolTakes(k, "arg < 0i")}) { best = val; arg = hh * ${W}i + ww; }`);
  s.line(`      }`);
  s.line(`    }`);
  s.line(`    if (arg == h * ${W}i + w) { acc = acc + ${db}[(nc * ${OH}i + i) * ${OW}i + j]; }`);
  s.line(`  }`);
  s.line(`}`);
  storeRoot(k, s, plan.root, a, "acc", [idx[0]!, idx[1]!, "h", "w"]);
  const n = numel(x.shape);
  return [
    assemble(k, {
      name: ctx.name,
      header: [`maxPool2d gradient (gather) for ${sig(x)}: kernel [${g.kernel}], stride [${g.stride}], padding [${g.padding}]`, ...epilogueNote(plan)],
      body: s,
      threads: n,
      flops: n * KH * KW * 4,
    }),
  ];
}
