// Convolution weight-gradient: split-K over output positions, deterministic reduce.
//
// dw[o,c,u,v] = sum over q = (n,i,j) of dy[n,o,i,j] x[n,c,i*s-p+u*d, j*s-p+v*d]. The sum over
// q is long and the output small, so q is split into S chunks whose partial tiles (TO x TC per
// invocation, for one tap (u,v)) are written to a buffer and combined in a fixed order.

import { type Tensor } from "../../../dsl/index";
import { tapFromOffsetWgsl, tapIndexWgsl, tapOffsetWgsl } from "../../../format/conv-geometry";
import { type KernelPlan } from "../../fusion";
import { type Binding, type BufferRef, type Scope, unflatten } from "../expr";
import { type Alternative, type Stage, CPU_SUBGROUP, assemble, assembleSubgroupVariant, bindOutput, sig, storeRoot } from "../kernel";
import { type TemplateContext, bodyScope, builder, ceilDiv, epilogueNote, range } from "./context";
import { type ChannelOperand, channelOperand } from "./packing";
import { TILE, fromLane, tileStores } from "./tiling";

/** The weight-gradient CPU variant's vec4s of out-channels per lane and positions per iteration. */
const DW_OV = 2;
const DW_UNROLL = 4;

/**
 * K-splits of a weight-gradient: enough partial tiles to fill the device (8192 invocations)
 * while each split still sums at least 512 positions. Fixed at codegen time (determinism).
 */
export function weightGradSplits(positions: number, tiles: number): number {
  return positions < 2048 ? 1 : Math.max(1, Math.min(64, Math.floor(positions / 512), Math.ceil(8192 / tiles)));
}

/**
 * CPU variant of the weight-gradient (or its first stage), the matmul pattern with K = output
 * positions: lanes own V vec4s of output channels (vec4s of channel-packed dy; V = DW_OV, or 1
 * where there are at most 8 vec4s of them), and each lane loads 4 input channels at one tap
 * (one vec4 of channel-packed x) and broadcasts them, so a subgroup owns 32*V out-channels by 8
 * (channel-group, tap) columns of 4 channels. Per position a lane does 1 + V loads, 8 broadcasts
 * and 32*V vec4 FMAs, in one flat loop over DW_UNROLL positions at a time. Positions are summed in order within a split
 * (deterministic).
 */
function weightGradCpuVariant(
  plan: KernelPlan,
  ctx: TemplateContext,
  expected: readonly Binding[],
  header: readonly string[],
  ops: { readonly x: ChannelOperand; readonly dy: ChannelOperand },
  split: { partial: BufferRef; S: number; chunk: number } | undefined,
): Alternative[] {
  const a = plan.anchor!;
  if (a.node.op !== "conv2dWeightGrad") throw new Error("conv2dWeightGrad template");
  const [x, dy] = a.node.inputs as [Tensor, Tensor];
  const g = a.node.attrs;
  const [N, C, H, W] = x.shape as [number, number, number, number];
  const [, O, OH, OW] = dy.shape as [number, number, number, number];
  const [KH, KW] = g.kernel;
  const Q = N * OH * OW;
  const C4 = ceilDiv(C, 4);
  const O4 = ceilDiv(O, 4);
  const groups = C4 * KH * KW;
  const ROWS = CPU_SUBGROUP * 4;
  // V vec4s of out-channels per lane (at stride 8 vec4s): V*32 accumulators. Up to 8 vec4s of
  // out-channels one per lane covers them all, and a second would be clamped, wasted work (the
  // ASPP classifiers' 19 channels: 1.7x faster with V = 1).
  // Where there are more, V is a tile candidate (format/module.ts, TileSpec): the text holds
  // DW_OV vec4s per lane, those past the first guarded by TILE (out-channels per subgroup, 32*V),
  // and the tuner may run 32 or 64 out-channels per subgroup; each accumulator sums the same
  // positions in the same order either way.
  const V = O4 <= CPU_SUBGROUP ? 1 : DW_OV;
  const tiled = V > 1;
  const tile = { rows: ROWS * V, candidates: [ROWS, ROWS * DW_OV], axis: 1 as const, extent: 4 * O4 };
  const grid: [number, number, number] = [ceilDiv(groups, CPU_SUBGROUP), ceilDiv(O4, CPU_SUBGROUP * V), split?.S ?? 1];
  if (grid[0] > 65535 || grid[1] > 65535) return [];
  // Lanes' vec4 blocks of out-channels per subgroup (CPU_SUBGROUP * V), the tile's where tuned.
  const perGroup = tiled ? `(${TILE} / 4)` : `${CPU_SUBGROUP * V}i`;
  const k = builder(ctx);
  const c = bodyScope();
  const xb = k.bind(ops.x.ref, "read", ops.x.vec4Elem);
  const db = k.bind(ops.dy.ref, "read", ops.dy.vec4Elem);
  for (const v of range(V)) {
    c.line(`let o4_${v} = i32(wid.y) * ${perGroup} + ${v * CPU_SUBGROUP}i + lane;`);
    c.line(`let ol${v} = min(o4_${v}, ${O4 - 1}i);`);
  }
  c.line(`let grp = min(i32(wid.x) * ${CPU_SUBGROUP}i + lane, ${groups - 1}i);`);
  // group = tap * C4 + c4
  c.line(`let c4 = grp % ${C4}i;`);
  c.line(`let tap = grp / ${C4}i;`);
  // A lane keeps its tap: the tap offsets u*d - p and v*d - p once, then h = i*s + du per
  // position (format/conv-geometry).
  c.line(`let du = ${tapOffsetWgsl(`(tap / ${KW}i)`, g.dilation[0], g.padding[0])};`);
  c.line(`let dv = ${tapOffsetWgsl(`(tap % ${KW}i)`, g.dilation[1], g.padding[1])};`);
  for (const v of range(V)) for (const r of range(ROWS)) c.line(`var a${v}_${r} = vec4<f32>(0.0f);`);
  const from = split ? `i32(wid.z) * ${split.chunk}i` : "0i";
  const to = split ? `min(${Q}i, (i32(wid.z) + 1i) * ${split.chunk}i)` : `${Q}i`;
  // U positions per iteration, each accumulator taking their U products as one chain of FMAs:
  // the 32*V accumulators live in memory (spilled), so a chain loads and stores each once per
  // iteration instead of once per product. Index arithmetic is kept short (lavapipe runs it 8
  // lanes wide although it is uniform): one division, bounds as one unsigned comparison.
  const position = (l: Scope, q: string, t: string) => {
    l.line(N === 1 ? `let img${t} = 0i;` : `let img${t} = ${q} / ${OH * OW}i;`);
    l.line(`let iq${t} = ${q} / ${OW}i;`);
    l.line(`let h${t} = ${tapFromOffsetWgsl(N === 1 ? `iq${t}` : `(iq${t} - img${t} * ${OH}i)`, g.stride[0], "du")};`);
    l.line(`let w${t} = ${tapFromOffsetWgsl(`(${q} - iq${t} * ${OW}i)`, g.stride[1], "dv")};`);
    l.line(
      `let xv${t} = select(vec4<f32>(0.0f), ${ops.x.vec4(xb, `img${t}`, "c4", `i32(min(u32(h${t}), ${H - 1}u)) * ${W}i + i32(min(u32(w${t}), ${W - 1}u))`)}, u32(h${t}) < ${H}u && u32(w${t}) < ${W}u);`,
    );
    // dy at (img, o4, position within the image q - img*OH*OW)
    for (const v of range(V)) l.line(`let dv${t}_${v} = ${ops.dy.vec4(db, `img${t}`, `ol${v}`, N === 1 ? q : `${q} - img${t} * ${OH * OW}i`)};`);
    for (const src of range(CPU_SUBGROUP)) l.line(`let s${t}_${src} = ${fromLane(`xv${t}`, src)};`);
  };
  const accumulate = (l: Scope, ts: readonly string[]) => {
    if (ts.length === 4) k.helpers.add("mac4");
    for (const v of range(V)) {
      // vec4 v > 0 of a tiled use only where the tile has it (dead code once TILE is set).
      const guarded = tiled && v > 0;
      if (guarded) l.line(`if (${TILE} > ${v * ROWS}) {`);
      const b = guarded ? l.child() : l;
      for (const src of range(CPU_SUBGROUP)) {
        for (const q of range(4)) {
          const acc = `a${v}_${src * 4 + q}`;
          const c = "xyzw"[q];
          b.line(
            ts.length === 4
              ? `${acc} = mac4(vec4<f32>(${ts.map((t) => `s${t}_${src}.${c}`).join(", ")}), ${ts.map((t) => `dv${t}_${v}`).join(", ")}, ${acc});`
              : `${acc} = ${ts.reduce((e, t) => `fma(vec4<f32>(s${t}_${src}.${c}), dv${t}_${v}, ${e})`, acc)};`,
          );
        }
      }
      if (guarded) {
        l.lines.push(...b.lines);
        l.line(`}`);
      }
    }
  };
  const U = DW_UNROLL;
  c.line(`let qend = ${to};`);
  c.line(`var q = ${from};`);
  c.line(`for (; q + ${U - 1}i < qend; q += ${U}i) {`);
  const l = c.child();
  for (const t of range(U)) position(l, `(q + ${t}i)`, `${t}`);
  accumulate(l, range(U).map(String));
  c.lines.push(...l.lines);
  c.line(`}`);
  if (U > 1) {
    c.line(`for (; q < qend; q++) {`);
    const lt = c.child();
    position(lt, "q", "0");
    accumulate(lt, ["0"]);
    c.lines.push(...lt.lines);
    c.line(`}`);
  }
  const out = split ? k.bind(split.partial, "read_write", "f32") : undefined;
  // Row t: channel t % 4 of the column group loaded by lane t / 4; component q: out-channel.
  const accs = range(V).flatMap((v) => range(ROWS).map((r) => `a${v}_${r}`));
  tileStores(c, accs, true, (e, value, t, q) => {
    e.line(`let row = ${t} % ${ROWS}i;`);
    e.line(`let gq = i32(wid.x) * ${CPU_SUBGROUP}i + row / 4i;`);
    e.line(`let ci = (gq % ${C4}i) * 4i + row % 4i;`);
    e.line(`let tap = gq / ${C4}i;`);
    e.line(`let o = (i32(wid.y) * ${perGroup} + (${t} / ${ROWS}i) * ${CPU_SUBGROUP}i + lane) * 4i + ${q};`);
    e.line(`if (gq >= ${groups}i || ci >= ${C}i || o >= ${O}i) { continue; }`);
    if (out) {
      e.line(`${out}[i32(wid.z) * ${O * C * KH * KW}i + (o * ${C}i + ci) * ${KH * KW}i + tap] = ${value};`);
    } else {
      e.line(`let u = tap / ${KW}i;`);
      e.line(`let v = tap % ${KW}i;`);
      storeRoot(k, e, plan.root, a, value, ["o", "ci", "u", "v"]);
    }
  }, tiled ? TILE : `${accs.length}i`);
  return [
    assembleSubgroupVariant(k, expected, {
      header: [...header, `${CPU_SUBGROUP * 4 * V} out-channels x ${CPU_SUBGROUP} (4 channels, tap) columns per subgroup`],
      body: c,
      workgroups: grid,
      ...(tiled ? { tile } : {}),
    }),
  ];
}

export function conv2dWeightGrad(plan: KernelPlan, ctx: TemplateContext): Stage[] {
  const a = plan.anchor!;
  if (a.node.op !== "conv2dWeightGrad") throw new Error("conv2dWeightGrad template");
  const [x, dy] = a.node.inputs as [Tensor, Tensor];
  const g = a.node.attrs;
  const [N, C, H, W] = x.shape as [number, number, number, number];
  const [, O, OH, OW] = dy.shape as [number, number, number, number];
  const [KH, KW] = g.kernel;
  const Q = N * OH * OW;
  const TO = Math.min(4, O);
  const TC = Math.min(4, C);
  const OB = ceilDiv(O, TO);
  const CB = ceilDiv(C, TC);
  const tiles = OB * CB * KH * KW;
  const S = weightGradSplits(Q, tiles);
  const chunk = ceilDiv(Q, S);
  const outN = O * C * KH * KW;
  const partial = { kind: "temp" as const, name: `${ctx.name}_partial`, bytes: S * outN * 4 };
  const C4 = ceilDiv(C, 4);
  const O4 = ceilDiv(O, 4);
  // Both variants read x and dy as vec4s of channels, packed (dy's packing shared with the
  // input-gradient, which reads the same dy) or in place (channelOperand). The CPU variant
  // reads each x vec4 once per tap (fewer with a stride) and per subgroup of output channels,
  // each dy vec4 once per subgroup of (channel group, tap) columns.
  const V = O4 <= CPU_SUBGROUP ? 1 : DW_OV;
  const ops = {
    x: channelOperand(ctx, x, ceilDiv(KH * KW, g.stride[0] * g.stride[1]) * ceilDiv(O4, CPU_SUBGROUP * V)),
    dy: channelOperand(ctx, dy, ceilDiv(C4 * KH * KW, CPU_SUBGROUP), true),
  };
  const k1 = builder(ctx);
  const s1 = bodyScope();
  const xb = k1.bind(ops.x.ref, "read", "f32");
  const dyb = k1.bind(ops.dy.ref, "read", "f32");
  s1.line(`let sp = gi % ${S}i;`);
  s1.line(`let tap = (gi / ${S}i) % ${KH * KW}i;`);
  s1.line(`let u = tap / ${KW}i;`);
  s1.line(`let v = tap % ${KW}i;`);
  s1.line(`let cb = (gi / ${S * KH * KW}i) % ${CB}i;`);
  s1.line(`let ob = gi / ${S * KH * KW * CB}i;`);
  for (const o of range(TO)) s1.line(`let o${o} = min(ob * ${TO}i + ${o}i, ${O - 1}i);`);
  for (const c of range(TC)) s1.line(`let c${c} = min(cb * ${TC}i + ${c}i, ${C - 1}i);`);
  for (const o of range(TO)) for (const c of range(TC)) s1.line(`var a${o}_${c} = 0.0f;`);
  s1.line(`for (var q = sp * ${chunk}i; q < min(${Q}i, (sp + 1i) * ${chunk}i); q++) {`);
  s1.line(`  let n = q / ${OH * OW}i;`);
  s1.line(`  let i = (q / ${OW}i) % ${OH}i;`);
  s1.line(`  let j = q % ${OW}i;`);
  s1.line(`  let h = ${tapIndexWgsl("i", g.stride[0], g.padding[0], "u", g.dilation[0])};`);
  s1.line(`  let w = ${tapIndexWgsl("j", g.stride[1], g.padding[1], "v", g.dilation[1])};`);
  s1.line(`  let ok = h >= 0i && h < ${H}i && w >= 0i && w < ${W}i;`);
  s1.line(`  let xhw = clamp(h, 0i, ${H - 1}i) * ${W}i + clamp(w, 0i, ${W - 1}i);`);
  s1.line(`  let dhw = i * ${OW}i + j;`);
  for (const o of range(TO)) s1.line(`  let d${o} = ${ops.dy.scalar(dyb, "n", `o${o}`, "dhw")};`);
  for (const c of range(TC)) s1.line(`  let x${c} = select(0.0f, ${ops.x.scalar(xb, "n", `c${c}`, "xhw")}, ok);`);
  for (const o of range(TO)) for (const c of range(TC)) s1.line(`  a${o}_${c} = fma(d${o}, x${c}, a${o}_${c});`);
  s1.line(`}`);
  const header = [
    `conv2d weight-gradient: ${sig(x)} with ${sig(dy)} -> [${a.shape.join(",")}]`,
    `stride [${g.stride}], padding [${g.padding}], dilation [${g.dilation}]; tile ${TO} out x ${TC} in channels per tap; ${S} K-split(s) of ${chunk}`,
    ...epilogueNote(plan),
  ];
  const flops = 2 * Q * O * C * KH * KW;
  const tileNames = range(TO).flatMap((o) => range(TC).map((c) => `a${o}_${c}`));
  /** Declares the tile element's (o, ci) and skips it when outside the weight. */
  const element = (e: Scope, t: string) => {
    e.line(`let o = ob * ${TO}i + ${t} / ${TC}i;`);
    e.line(`let ci = cb * ${TC}i + ${t} % ${TC}i;`);
    e.line(`if (o >= ${O}i || ci >= ${C}i) { continue; }`);
  };
  if (S === 1) {
    tileStores(s1, tileNames, false, (e, value, t) => {
      element(e, t);
      storeRoot(k1, e, plan.root, a, value, ["o", "ci", "u", "v"]);
    });
    const main = assemble(k1, { name: ctx.name, header, body: s1, threads: tiles, flops });
    return [...ops.x.stages, ...ops.dy.stages, { ...main, alternatives: weightGradCpuVariant(plan, ctx, main.bindings, header, ops, undefined) }];
  }
  const p1 = bindOutput(k1, partial, "f32");
  tileStores(s1, tileNames, false, (e, value, t) => {
    element(e, t);
    e.line(`${p1}[sp * ${outN}i + ((o * ${C}i + ci) * ${KH * KW}i + tap)] = ${value};`);
  });
  const k2 = builder(ctx);
  const s2 = bodyScope();
  const p2 = k2.bind(partial, "read", "f32");
  s2.line(`var acc = 0.0f;`);
  s2.line(`for (var sp = 0i; sp < ${S}i; sp++) { acc = acc + ${p2}[sp * ${outN}i + gi]; }`);
  storeRoot(k2, s2, plan.root, a, "acc", unflatten(a.shape, "gi"));
  const stage1 = assemble(k1, { name: `${ctx.name}_stage1`, header, body: s1, threads: tiles * S, flops });
  return [
    ...ops.x.stages,
    ...ops.dy.stages,
    { ...stage1, alternatives: weightGradCpuVariant(plan, ctx, stage1.bindings, header, ops, { partial, S, chunk }) },
    assemble(k2, { name: `${ctx.name}_stage2`, header: [`final ${S}-way combine of the partials`, ...epilogueNote(plan)], body: s2, threads: outN, flops: outN * S }),
  ];
}
