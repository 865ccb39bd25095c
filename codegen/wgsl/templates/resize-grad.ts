// Bilinear resize adjoint, gather form with constant tables.

import { numel } from "../../../dsl/index";
import { type KernelPlan } from "../../fusion";
import { resizeGatherTable, unflatten } from "../expr";
import { type Stage, assemble, sig, storeRoot } from "../kernel";
import { type TemplateContext, bodyScope, builder, epilogueNote } from "./context";

/**
 * dx[n,c,y,x] = sum over the high-resolution positions (Y, X) whose interpolation taps include
 * (y, x) of wy * wx * dy[n,c,Y,X]. The (Y, weight) lists per y (and per x) are baked into a
 * constant table at codegen time from the same f32 tap arithmetic as the forward pass.
 */
export function resizeGrad(plan: KernelPlan, ctx: TemplateContext): Stage[] {
  const a = plan.anchor!;
  if (a.node.op !== "resizeGrad") throw new Error("resizeGrad template");
  const dy = a.node.inputs[0]!;
  const align = a.node.attrs.alignCorners;
  const [, , h, w] = a.shape as [number, number, number, number];
  const [, , H, W] = dy.shape as [number, number, number, number];
  const ty = resizeGatherTable(h, H, align);
  const tx = resizeGatherTable(w, W, align);
  const k = builder(ctx);
  const s = bodyScope();
  const tyName = k.bind({ kind: "constant", name: `resize_${h}_${H}_${align ? "ac" : "hp"}`, words: ty }, "read", "u32");
  const txName = w === h && W === H ? tyName : k.bind({ kind: "constant", name: `resize_${w}_${W}_${align ? "ac" : "hp"}`, words: tx }, "read", "u32");
  const ey = ty[h]! - (h + 1); // number of (Y, weight) entries of the y table
  const ex = tx[w]! - (w + 1);
  const db = k.bind({ kind: "tensor", tensor: dy }, "read", "f32");
  const idx = unflatten(a.shape, "gi");
  s.line(`let nc = gi / ${h * w}i;`);
  s.line(`let y = ${idx[2]};`);
  s.line(`let x = ${idx[3]};`);
  s.line(`var acc = 0.0f;`);
  s.line(`for (var ey = i32(${tyName}[y]); ey < i32(${tyName}[y + 1i]); ey++) {`);
  s.line(`  let Y = i32(${tyName}[ey]);`);
  s.line(`  let wy = bitcast<f32>(${tyName}[ey + ${ey}i]);`);
  s.line(`  var rowsum = 0.0f;`);
  s.line(`  for (var ex = i32(${txName}[x]); ex < i32(${txName}[x + 1i]); ex++) {`);
  s.line(`    rowsum = fma(bitcast<f32>(${txName}[ex + ${ex}i]), ${db}[(nc * ${H}i + Y) * ${W}i + i32(${txName}[ex])], rowsum);`);
  s.line(`  }`);
  s.line(`  acc = fma(wy, rowsum, acc);`);
  s.line(`}`);
  storeRoot(k, s, plan.root, a, "acc", [idx[0]!, idx[1]!, "y", "x"]);
  return [
    assemble(k, {
      name: ctx.name,
      header: [`resize adjoint (gather) ${sig(dy)} -> [${a.shape.join(",")}], alignCorners ${align}`, ...epilogueNote(plan)],
      body: s,
      threads: numel(a.shape),
      flops: 4 * numel(dy.shape),
    }),
  ];
}
