// Convolution input-gradient, gather form, stride phases without zero taps.
//
// dx[n,c,h,w] = sum_{o,u,v} dy[n,o,i,j] w[o,c,u,v] where h = i*s - p + u*d, i.e.
// i = (h + p - u*d) / s must be an integer in [0, OH). An invocation handles TC input
// channels at TP positions w = ph + s*(jb*TP + t) of one row h: all its positions share the
// phase w mod s, so the divisibility test of a tap is the same for the whole tile, and taps
// that hit no output are skipped, not multiplied by zero.

import { type Tensor } from "../../../dsl/index";
import { outputOfTapWgsl, phaseLength, phasePositionWgsl, phaseTapStep, phaseTaps, tapInverseWgsl, tapMissesPhaseWgsl } from "../../../format/conv-geometry";
import { type KernelPlan } from "../../fusion";
import { type Alternative, type Stage, CPU_SUBGROUP, assemble, assembleSubgroupVariant, sig, storeRoot } from "../kernel";
import { type TemplateContext, bodyScope, builder, ceilDiv, epilogueNote, range } from "./context";
import { channelOperand, packWeights } from "./packing";
import { CPU_MAX_ROWS, TILE, rowAccumulators, cpuTapStep, cpuTile, tileStores } from "./tiling";

export function conv2dInputGrad(plan: KernelPlan, ctx: TemplateContext): Stage[] {
  const a = plan.anchor!;
  if (a.node.op !== "conv2dInputGrad") throw new Error("conv2dInputGrad template");
  const [dy, w] = a.node.inputs as [Tensor, Tensor];
  const g = a.node.attrs;
  const [N, C, H, W] = a.shape as [number, number, number, number];
  const [, O, OH, OW] = dy.shape as [number, number, number, number];
  const [, , KH, KW] = w.shape as [number, number, number, number];
  const [sh, sw] = g.stride;
  const TC = Math.min(8, C);
  const CB = ceilDiv(C, TC);
  const perPhase = phaseLength(W, sw);
  const TP = Math.min(4, perPhase);
  const JB = ceilDiv(perPhase, TP);
  const { stage: packStage, ref: pack, cols4: C4 } = packWeights(ctx, w, true);
  const O4 = ceilDiv(O, 4);
  // Both variants read dy as vec4s of channels, packed (the packing shared with the
  // weight-gradient) or in place (channelOperand): the CPU variant reads each dy vec4 once per
  // tap that reaches it and per subgroup of input channels.
  const dyop = channelOperand(ctx, dy, ceilDiv(KH * KW, sh * sw) * ceilDiv(C4, CPU_SUBGROUP), true);
  const k = builder(ctx);
  const s = bodyScope();
  const dyb = k.bind(dyop.ref, "read", "f32");
  const wb = k.bind(pack, "read", "f32");
  s.line(`let jb = gi % ${JB}i;`);
  s.line(`let ph = (gi / ${JB}i) % ${sw}i;`);
  s.line(`let h = (gi / ${JB * sw}i) % ${H}i;`);
  s.line(`let cb = (gi / ${JB * sw * H}i) % ${CB}i;`);
  s.line(`let n = gi / ${JB * sw * H * CB}i;`);
  for (const p of range(TP)) {
    s.line(`let x${p} = ${phasePositionWgsl("ph", sw, `(jb * ${TP}i + ${p}i)`)};`);
    s.line(`let xok${p} = x${p} < ${W}i;`);
  }
  for (const c of range(TC)) s.line(`let c${c} = min(cb * ${TC}i + ${c}i, ${C - 1}i);`);
  for (const c of range(TC)) for (const p of range(TP)) s.line(`var a${c}_${p} = 0.0f;`);
  s.line(`for (var o = 0i; o < ${O}i; o++) {`);
  s.line(`  let wo = o * ${KH * KW * C4 * 4}i;`);
  s.line(`  for (var u = 0i; u < ${KH}i; u++) {`);
  // Rows are not split by phase: th = i*s (format/conv-geometry) is tested for divisibility.
  s.line(`    let th = ${tapInverseWgsl("h", g.padding[0], "u", g.dilation[0])};`);
  s.line(sh === 1 ? `    if (th < 0i || th >= ${OH}i) { continue; }` : `    if (th < 0i || th % ${sh}i != 0i || ${outputOfTapWgsl("th", sh)} >= ${OH}i) { continue; }`);
  s.line(`    let row = (${outputOfTapWgsl("th", sh)}) * ${OW}i;`);
  s.line(`    for (var v = 0i; v < ${KW}i; v++) {`);
  // Columns are split by phase: the tile's pixels share ph, so one test skips the taps that miss.
  if (sw > 1) s.line(`      if (${tapMissesPhaseWgsl("ph", sw, g.padding[1], "v", g.dilation[1])}) { continue; }`);
  for (const p of range(TP)) {
    s.line(`      let tw${p} = ${tapInverseWgsl(`x${p}`, g.padding[1], "v", g.dilation[1])};`);
    s.line(`      let j${p} = ${outputOfTapWgsl(`tw${p}`, sw)};`);
    s.line(`      let g${p} = select(0.0f, ${dyop.scalar(dyb, "n", "o", `row + clamp(j${p}, 0i, ${OW - 1}i)`)}, xok${p} && tw${p} >= 0i && j${p} < ${OW}i);`);
  }
  for (const c of range(TC)) s.line(`      let k${c} = ${wb}[wo + (u * ${KW}i + v) * ${C4 * 4}i + c${c}];`);
  for (const c of range(TC)) for (const p of range(TP)) s.line(`      a${c}_${p} = fma(k${c}, g${p}, a${c}_${p});`);
  s.line(`    }`);
  s.line(`  }`);
  s.line(`}`);
  tileStores(s, range(TC).flatMap((c) => range(TP).map((p) => `a${c}_${p}`)), false, (e, value, t) => {
    e.line(`let ch = cb * ${TC}i + ${t} / ${TP}i;`);
    e.line(`let x = ${phasePositionWgsl("ph", sw, `(jb * ${TP}i + ${t} % ${TP}i)`)};`);
    e.line(`if (ch >= ${C}i || x >= ${W}i) { continue; }`);
    storeRoot(k, e, plan.root, a, value, ["n", "ch", "h", "x"]);
  });
  const header = [
    `conv2d input-gradient: ${sig(dy)} through ${sig(w)} -> [${a.shape.join(",")}]`,
    `stride [${g.stride}], padding [${g.padding}], dilation [${g.dilation}]`,
    ...epilogueNote(plan),
  ];
  const flops = 2 * N * O * OH * OW * C * KH * KW;
  const main = assemble(k, { name: ctx.name, header: [...header, `tile ${TC} channels x ${TP} same-phase pixels`], body: s, threads: N * CB * H * sw * JB, flops });

  // CPU variant (the forward's pattern on the transposed problem): lanes own 4 input channels
  // (vec4s of the transposed packed weights), the subgroup R pixels of one stride phase
  // (workgroup z), each lane loading the 4 channels of dy at R/8 of them and broadcasting them;
  // one flat loop over (o4, u, v). Within a phase, whether a tap hits an output is the same for
  // every pixel, so the loop visits only the taps that hit one (tables below).
  const Hq = phaseLength(H, sh);
  const Wq = phaseLength(W, sw);
  const Q = N * Hq * Wq;
  const tile = cpuTile(Q, ceilDiv(C4, CPU_SUBGROUP) * sh * sw);
  const R = tile.rows;
  const J = CPU_MAX_ROWS / CPU_SUBGROUP;
  const grid: [number, number, number] = [ceilDiv(Q, R), ceilDiv(C4, CPU_SUBGROUP), sh * sw];
  const alternatives: Alternative[] = [];
  if (grid[0] <= 65535 && grid[1] <= 65535) {
    const kc = builder(ctx);
    const c = bodyScope();
    const dyc = kc.bind(dyop.ref, "read", dyop.vec4Elem);
    const wc = kc.bind(pack, "read", "vec4<f32>");
    c.line(`let c4 = i32(wid.y) * ${CPU_SUBGROUP}i + lane;`);
    c.line(`let cl = min(c4, ${C4 - 1}i);`);
    c.line(`let phh = i32(wid.z) / ${sw}i;`);
    c.line(`let phw = i32(wid.z) % ${sw}i;`);
    // Pixels of every block (the blocks past the tile are dead code once TILE is set).
    for (const j of range(J)) {
      c.line(`let q${j} = min(i32(wid.x) * ${TILE} + ${j * CPU_SUBGROUP}i + lane, ${Q - 1}i);`);
      c.line(`let n${j} = q${j} / ${Hq * Wq}i;`);
      c.line(`let h${j} = ${phasePositionWgsl("phh", sh, `((q${j} / ${Wq}i) % ${Hq}i)`)};`);
      c.line(`let x${j} = ${phasePositionWgsl("phw", sw, `(q${j} % ${Wq}i)`)};`);
      c.line(`let ok${j} = h${j} < ${H}i && x${j} < ${W}i;`);
    }
    const acc = rowAccumulators(c, kc, "a");
    // Taps that hit an output for this phase: u = u0 + m*step with step = s / gcd(s, d)
    // (and likewise v), listed per phase at generation time, so the loop visits no others
    // (phaseTaps, phaseTapStep: format/conv-geometry).
    const hu = phaseTaps(sh, KH, g.padding[0], g.dilation[0]);
    const hv = phaseTaps(sw, KW, g.padding[1], g.dilation[1]);
    /** The per-phase value as a select chain (phases are few). */
    const pick = (ph: string, values: readonly number[]) =>
      values.slice(1).reduce((e, val, idx) => `select(${e}, ${val}i, ${ph} == ${idx + 1}i)`, `${values[0]}i`);
    const stepH = phaseTapStep(sh, g.dilation[0]);
    const stepW = phaseTapStep(sw, g.dilation[1]);
    c.line(`let u0 = ${pick("phh", hu.map((l) => l[0] ?? 0))};`);
    c.line(`let nu = ${pick("phh", hu.map((l) => l.length))};`);
    c.line(`let v0 = ${pick("phw", hv.map((l) => l[0] ?? 0))};`);
    c.line(`let nv = ${pick("phw", hv.map((l) => l.length))};`);
    c.line(`for (var k = 0i; k < ${O4}i * nu * nv; k++) {`);
    const cv = c.child();
    cv.line(`let o4 = k / (nu * nv);`);
    cv.line(`let u = u0 + ((k / nv) % nu) * ${stepH}i;`);
    cv.line(`let v = v0 + (k % nv) * ${stepW}i;`);
    // transposed packed row of (4*o4 + q, u, v) is ((4*o4 + q)*KH + u)*KW + v
    cv.line(`let wr = (o4 * ${4 * KH * KW}i + u * ${KW}i + v) * ${C4}i + cl;`);
    cpuTapStep(cv, kc, wc, KH * KW * C4, "g", (l, j) => {
      l.line(`let th${j} = ${tapInverseWgsl(`h${j}`, g.padding[0], "u", g.dilation[0])};`);
      l.line(`let tw${j} = ${tapInverseWgsl(`x${j}`, g.padding[1], "v", g.dilation[1])};`);
      l.line(`let i${j} = ${outputOfTapWgsl(`th${j}`, sh)};`);
      l.line(`let jj${j} = ${outputOfTapWgsl(`tw${j}`, sw)};`);
      l.line(
        `let g${j} = select(vec4<f32>(0.0f), ${dyop.vec4(dyc, `n${j}`, "o4", `clamp(i${j}, 0i, ${OH - 1}i) * ${OW}i + clamp(jj${j}, 0i, ${OW - 1}i)`)}, ok${j} && th${j} >= 0i && i${j} < ${OH}i && tw${j} >= 0i && jj${j} < ${OW}i);`,
      );
    });
    c.lines.push(...cv.lines);
    c.line(`}`);
    tileStores(c, acc, true, (e, value, t, q) => {
      e.line(`let pix = i32(wid.x) * ${TILE} + ${t};`);
      e.line(`let n = pix / ${Hq * Wq}i;`);
      e.line(`let h = ${phasePositionWgsl("phh", sh, `((pix / ${Wq}i) % ${Hq}i)`)};`);
      e.line(`let x = ${phasePositionWgsl("phw", sw, `(pix % ${Wq}i)`)};`);
      e.line(`let ch = c4 * 4i + ${q};`);
      e.line(`if (pix >= ${Q}i || h >= ${H}i || x >= ${W}i || ch >= ${C}i) { continue; }`);
      storeRoot(kc, e, plan.root, a, value, ["n", "ch", "h", "x"]);
    }, TILE);
    alternatives.push(
      assembleSubgroupVariant(kc, main.bindings, { header: [...header, `${R} same-phase pixels x ${CPU_SUBGROUP * 4} channels per subgroup, 4 out-channels per step`], body: c, workgroups: grid, tile: { ...tile, axis: 0, extent: Q } }),
    );
  }
  return [packStage, ...dyop.stages, { ...main, alternatives }];
}
