// Convolution forward: direct convolution with a TO x TP register tile.
//
// Invocation (ob, pb) computes output channels [ob*TO, ob*TO+TO) at the TP output pixels
// [pb*TP, pb*TP+TP) of the flattened (n, i, j) space. For each (c, u, v) it loads TP inputs and
// TO weights and does TO*TP FMAs. Consecutive invocations take consecutive pixels, so input
// loads of a SIMD row are neighbours.

import { type Tensor } from "../../../dsl/index";
import { tapFromOriginWgsl, tapsInside, windowOriginWgsl } from "../../../format/conv-geometry";
import { type KernelPlan } from "../../fusion";
import { type Scope } from "../expr";
import { type Alternative, type Stage, CPU_SUBGROUP, assemble, assembleSubgroupVariant, sig, storeRoot } from "../kernel";
import { type TemplateContext, bodyScope, builder, ceilDiv, epilogueNote, range } from "./context";
import { channelOperand, packWeights } from "./packing";
import { CPU_MAX_ROWS, TILE, rowAccumulators, convTile, cpuTapStep, cpuTile, tileStores } from "./tiling";

export function conv2d(plan: KernelPlan, ctx: TemplateContext): Stage[] {
  const a = plan.anchor!;
  if (a.node.op !== "conv2d") throw new Error("conv2d template");
  const [x, w, b] = a.node.inputs as [Tensor, Tensor, Tensor | undefined];
  const g = a.node.attrs;
  const [N, C, H, W] = x.shape as [number, number, number, number];
  const [O, , KH, KW] = w.shape as [number, number, number, number];
  const [, , OH, OW] = a.shape as [number, number, number, number];
  const P = N * OH * OW;
  const K = C * KH * KW;
  const { stage: packStage, ref: pack, cols4: O4 } = packWeights(ctx, w, false);
  const C4 = ceilDiv(C, 4);
  // Both variants read the input as vec4s of channels, packed or in place (channelOperand): the
  // CPU variant reads each input vec4 once per tap (fewer with a stride) and per subgroup of
  // output channels.
  const xop = channelOperand(ctx, x, ceilDiv(KH * KW, g.stride[0] * g.stride[1]) * ceilDiv(O4, CPU_SUBGROUP));
  // Axes along which every tap lands inside the input need no bounds test.
  const insideH = tapsInside(H, OH, KH, g.stride[0], g.padding[0], g.dilation[0]);
  const insideW = tapsInside(W, OW, KW, g.stride[1], g.padding[1], g.dilation[1]);
  const header = [
    `conv2d ${sig(x)} * ${sig(w)}${b ? ` + ${sig(b)}` : ""} -> [${a.shape.join(",")}]`,
    `stride [${g.stride}], padding [${g.padding}], dilation [${g.dilation}]`,
    ...epilogueNote(plan),
  ];
  const flops = 2 * N * O * OH * OW * C * KH * KW;

  // Pixel (i, j) at tap (u, v) reads input (h, w) = (i*s - p + u*d, j*s - p + v*d): the
  // window origin (hb, wb) once per pixel, then + u*d and + v*d per tap (format/conv-geometry).
  /** Declares p, n, i, j, and the window origin of output pixel `p` (an expression). */
  const pixel = (s: Scope, t: string, p: string) => {
    s.line(`let p${t} = min(${p}, ${P - 1}i);`);
    s.line(`let n${t} = p${t} / ${OH * OW}i;`);
    s.line(`let i${t} = (p${t} / ${OW}i) % ${OH}i;`);
    s.line(`let j${t} = p${t} % ${OW}i;`);
    s.line(`let hb${t} = ${windowOriginWgsl(`i${t}`, g.stride[0], g.padding[0])};`);
    s.line(`let wb${t} = ${windowOriginWgsl(`j${t}`, g.stride[1], g.padding[1])};`);
  };
  /** The input value at tap (c, u, v) for pixel t, zero outside the input. */
  const tapRow = (s: Scope, t: string) => {
    s.line(`let h${t} = ${tapFromOriginWgsl(`hb${t}`, "u", g.dilation[0])};`);
    if (!insideH) s.line(`let hok${t} = h${t} >= 0i && h${t} < ${H}i;`);
    s.line(`let xr${t} = ${insideH ? `h${t}` : `clamp(h${t}, 0i, ${H - 1}i)`} * ${W}i;`);
  };
  const tapValue = (s: Scope, xb: string, t: string) => {
    s.line(`let w${t} = ${tapFromOriginWgsl(`wb${t}`, "v", g.dilation[1])};`);
    const ld = xop.scalar(xb, `n${t}`, "c", `xr${t} + ${insideW ? `w${t}` : `clamp(w${t}, 0i, ${W - 1}i)`}`);
    const conds = [...(insideH ? [] : [`hok${t}`]), ...(insideW ? [] : [`w${t} >= 0i && w${t} < ${W}i`])];
    s.line(`let x${t} = ${conds.length ? `select(0.0f, ${ld}, ${conds.join(" && ")})` : ld};`);
  };

  // Default (portable, GPU) variant: each invocation a TO x TP register tile, direct loops.
  const { to: TO, tp: TP } = convTile(O, P);
  const OB = ceilDiv(O, TO);
  const PB = ceilDiv(P, TP);
  const k = builder(ctx);
  const s = bodyScope();
  const xb = k.bind(xop.ref, "read", "f32");
  const wb = k.bind(pack, "read", "f32");
  const bb = b ? k.bind({ kind: "tensor", tensor: b }, "read", "f32") : undefined;
  s.line(`let pb = gi % ${PB}i;`);
  s.line(`let ob = gi / ${PB}i;`);
  for (const p of range(TP)) pixel(s, `${p}`, `pb * ${TP}i + ${p}i`);
  for (const o of range(TO)) s.line(`let o${o} = min(ob * ${TO}i + ${o}i, ${O - 1}i);`);
  for (const o of range(TO)) for (const p of range(TP)) s.line(`var a${o}_${p} = 0.0f;`);
  s.line(`for (var c = 0i; c < ${C}i; c++) {`);
  s.line(`  for (var u = 0i; u < ${KH}i; u++) {`);
  const su = s.child().child();
  for (const p of range(TP)) tapRow(su, `${p}`);
  s.lines.push(...su.lines);
  s.line(`    for (var v = 0i; v < ${KW}i; v++) {`);
  s.line(`      let tap = ((c * ${KH}i + u) * ${KW}i + v) * ${O4 * 4}i;`);
  const sv = s.child().child().child();
  for (const p of range(TP)) tapValue(sv, xb, `${p}`);
  for (const o of range(TO)) sv.line(`let k${o} = ${wb}[tap + o${o}];`);
  for (const o of range(TO)) for (const p of range(TP)) sv.line(`a${o}_${p} = fma(k${o}, x${p}, a${o}_${p});`);
  s.lines.push(...sv.lines);
  s.line(`    }`);
  s.line(`  }`);
  s.line(`}`);
  tileStores(s, range(TO).flatMap((o) => range(TP).map((p) => `a${o}_${p}`)), false, (e, value, t) => {
    e.line(`let o = ob * ${TO}i + ${t} / ${TP}i;`);
    e.line(`let p = pb * ${TP}i + ${t} % ${TP}i;`);
    e.line(`if (o >= ${O}i || p >= ${P}i) { continue; }`);
    e.line(`let n = p / ${OH * OW}i;`);
    e.line(`let i = (p / ${OW}i) % ${OH}i;`);
    e.line(`let j = p % ${OW}i;`);
    const acc = bb ? e.bind(`acc`, `y`, `${value} + ${bb}[o]`) : value;
    storeRoot(k, e, plan.root, a, acc, ["n", "o", "i", "j"]);
  });
  const main = assemble(k, { name: ctx.name, header: [...header, `tile ${TO} out-channels x ${TP} pixels`], body: s, threads: OB * PB, flops });

  // CPU variant (the matmul pattern, K = (c, u, v) stepped 4 channels at a time): lanes own 4
  // output channels (vec4s of packed weights); the subgroup owns R pixels, each lane loading
  // the 4 channels of R/8 of them (one vec4 each, channel-packed) and broadcasting them. Per
  // tap and 4 channels a lane does R/8 + 4 loads and R*4 vec4 FMAs. Padded channels past C
  // are zero in the packing, and their weights are zero rows.
  const tile = cpuTile(P, ceilDiv(O4, CPU_SUBGROUP));
  const R = tile.rows;
  const J = CPU_MAX_ROWS / CPU_SUBGROUP;
  const grid: [number, number, number] = [ceilDiv(P, R), ceilDiv(O4, CPU_SUBGROUP), 1];
  const alternatives: Alternative[] = [];
  if (grid[0] <= 65535 && grid[1] <= 65535) {
    const kc = builder(ctx);
    const c = bodyScope();
    const xc = kc.bind(xop.ref, "read", xop.vec4Elem);
    const wc = kc.bind(pack, "read", "vec4<f32>");
    const bc = b ? kc.bind({ kind: "tensor", tensor: b }, "read", "f32") : undefined;
    c.line(`let o4 = i32(wid.y) * ${CPU_SUBGROUP}i + lane;`);
    c.line(`let ol = min(o4, ${O4 - 1}i);`);
    // Pixels of every block (the blocks past the tile are dead code once TILE is set).
    for (const t of range(J)) pixel(c, `${t}`, `i32(wid.x) * ${TILE} + ${t * CPU_SUBGROUP}i + lane`);
    const accs = rowAccumulators(c, kc, "a");
    // One flat loop over (c4, u, v): lavapipe pays for every loop level and for long unrolled
    // bodies (register pressure), so the body is one tap of 4 channels. (Measured: R = 32
    // beats 16; 8 channels per iteration, or unrolled taps, are slower.)
    c.line(`for (var k = 0i; k < ${C4 * KH * KW}i; k++) {`);
    const cv = c.child();
    cv.line(`let c4 = k / ${KH * KW}i;`);
    cv.line(`let u = (k / ${KW}i) % ${KH}i;`);
    cv.line(`let v = k % ${KW}i;`);
    // packed row of (4*c4 + q, u, v) is ((4*c4 + q)*KH + u)*KW + v
    cv.line(`let wr = (c4 * ${4 * KH * KW}i + u * ${KW}i + v) * ${O4}i + ol;`);
    cpuTapStep(cv, kc, wc, KH * KW * O4, "x", (l, t) => {
      l.line(`let h${t} = ${tapFromOriginWgsl(`hb${t}`, "u", g.dilation[0])};`);
      l.line(`let w${t} = ${tapFromOriginWgsl(`wb${t}`, "v", g.dilation[1])};`);
      const conds = [...(insideH ? [] : [`h${t} >= 0i && h${t} < ${H}i`]), ...(insideW ? [] : [`w${t} >= 0i && w${t} < ${W}i`])];
      const ld = xop.vec4(xc, `n${t}`, "c4", `${insideH ? `h${t}` : `clamp(h${t}, 0i, ${H - 1}i)`} * ${W}i + ${insideW ? `w${t}` : `clamp(w${t}, 0i, ${W - 1}i)`}`);
      l.line(`let x${t} = ${conds.length ? `select(vec4<f32>(0.0f), ${ld}, ${conds.join(" && ")})` : ld};`);
    });
    c.lines.push(...cv.lines);
    c.line(`}`);
    tileStores(
      c,
      accs,
      true,
      (e, value, t, q) => {
        e.line(`let p = i32(wid.x) * ${TILE} + ${t};`);
        e.line(`let o = o4 * 4i + ${q};`);
        e.line(`if (p >= ${P}i || o >= ${O}i) { continue; }`);
        e.line(`let n = p / ${OH * OW}i;`);
        e.line(`let i = (p / ${OW}i) % ${OH}i;`);
        e.line(`let j = p % ${OW}i;`);
        const acc = bc ? e.bind(`acc`, `y`, `${value} + ${bc}[o]`) : value;
        storeRoot(kc, e, plan.root, a, acc, ["n", "o", "i", "j"]);
      },
      TILE,
    );
    alternatives.push(
      assembleSubgroupVariant(kc, main.bindings, {
        header: [...header, `${R} pixels x ${CPU_SUBGROUP * 4} out-channels per subgroup, 4 in-channels per step`],
        body: c,
        workgroups: grid,
        tile: { ...tile, axis: 0, extent: P },
      }),
    );
  }
  return [packStage, ...xop.stages, { ...main, alternatives }];
}
