// Depthwise convolution: forward, input-gradient and weight-gradient templates.
//
// One filter per channel, so an output costs KH*KW multiply-adds against KH*KW + 1 loads: the
// kernels are bound by memory, not arithmetic, and need no register tile or weight packing. The
// forward and input-gradient give each invocation one output (portable variant) or, on CPU
// adapters, give a subgroup one row of one channel with DW_COLUMNS outputs per lane; each output
// reads its window directly. The weight-gradient reduces over N*OH*OW positions per weight and
// splits that sum in two stages where it is long. Every output sums its taps in a fixed order
// (u, then v, ascending; rows then columns for the weight-gradient): results are deterministic.
//
// Index maps (format/conv-geometry.ts; s stride, p padding, d dilation, per axis):
//   forward       y[n,c,i,j]  += x[n,c,h,w] * k[c,u,v]     h = i*s - p + u*d   (tap index)
//   input-grad    dx[n,c,h,w] += dy[n,c,i,j] * k[c,u,v]    i*s = h + p - u*d   (tap inverse: a tap
//                 counts only where h + p - u*d is a multiple of s and i = (h + p - u*d)/s < OH)
//   weight-grad   dk[c,u,v]   += dy[n,c,i,j] * x[n,c,h,w]  h = i*s + (u*d - p) (tap offset, once per tap)
// with x read as zero outside the input (such taps are skipped, as the interpreter does).

import { type Tensor } from "../../../dsl/index";
import {
  outputOfTapWgsl,
  tapFromOffsetWgsl,
  tapFromOriginWgsl,
  tapInverseWgsl,
  tapOffsetWgsl,
  tapsInside,
  windowOriginWgsl,
} from "../../../format/conv-geometry";
import { type KernelPlan } from "../../fusion";
import { type BufferRef, type KernelBuilder, type Scope, unflatten } from "../expr";
import { type Alternative, type Stage, CPU_SUBGROUP, assemble, assembleSubgroupVariant, bindOutput, sig, storeRoot } from "../kernel";
import { weightGradSplits } from "./conv2d-weight-grad";
import { type TemplateContext, bodyScope, builder, ceilDiv, epilogueNote, range } from "./context";
import { fromLane, tileStores } from "./tiling";

/**
 * Outputs per lane along W in the CPU variants: 4 accumulators share each uniform weight load
 * and the row's bounds test, and lavapipe pays per invocation, so fewer invocations per output
 * run faster; 4 keeps a 32-wide row (8 lanes) close to the 33-65 pixel rows of MobileNetV2 at
 * 513x513 input, so the last workgroup of a row wastes little.
 */
const DW_COLUMNS = 4;
/** A workgroup grid dimension holds at most 65535 workgroups (WebGPU's default limit). */
const MAX_GRID = 65535;

/** Geometry shared by the three templates: sizes, kernel and the conv attributes per axis. */
interface Geometry {
  readonly N: number;
  readonly C: number;
  readonly H: number;
  readonly W: number;
  readonly OH: number;
  readonly OW: number;
  readonly KH: number;
  readonly KW: number;
  readonly s: readonly [number, number];
  readonly p: readonly [number, number];
  readonly d: readonly [number, number];
}

function geometry(x: readonly number[], y: readonly number[], kernel: readonly number[], a: { stride: readonly number[]; padding: readonly number[]; dilation: readonly number[] }): Geometry {
  const [N, C, H, W] = x as [number, number, number, number];
  const [, , OH, OW] = y as [number, number, number, number];
  const pair = (v: readonly number[]) => [v[0]!, v[1]!] as const;
  return { N, C, H, W, OH, OW, KH: kernel[0]!, KW: kernel[1]!, s: pair(a.stride), p: pair(a.padding), d: pair(a.dilation) };
}

const attrsLine = (g: Geometry) => `stride [${g.s}], padding [${g.p}], dilation [${g.d}]`;

/** Whether a CPU variant's grid fits: dimension limits. */
const gridFits = (grid: readonly number[]) => grid.every((v) => v <= MAX_GRID);

// ---------------------------------------------------------------------------------------------
// Forward

/**
 * The forward's tap loop for one output (or DW_COLUMNS of one row): y = sum_{u,v} x[h, w] k[u, v]
 * over in-range taps, h = hb + u*d, w = wb + v*d from the window origins (hb, wb) =
 * (i*s - p, j*s - p). `cols` names the column suffixes ("" for one output); the row test is shared.
 * Axes where every tap lands inside the input (tapsInside) get no test.
 */
function forwardTaps(s: Scope, g: Geometry, xb: string, wb: string, xo: string, c: string, cols: readonly string[]): void {
  const insideH = tapsInside(g.H, g.OH, g.KH, g.s[0], g.p[0], g.d[0]);
  const insideW = tapsInside(g.W, g.OW, g.KW, g.s[1], g.p[1], g.d[1]);
  s.line(`for (var u = 0i; u < ${g.KH}i; u++) {`);
  s.line(`  let h = ${tapFromOriginWgsl("hb", "u", g.d[0])};`);
  if (!insideH) s.line(`  if (h < 0i || h >= ${g.H}i) { continue; }`);
  s.line(`  let row = ${xo} + h * ${g.W}i;`);
  s.line(`  for (var v = 0i; v < ${g.KW}i; v++) {`);
  s.line(`    let k = ${wb}[${c} * ${g.KH * g.KW}i + u * ${g.KW}i + v];`);
  for (const t of cols) {
    s.line(`    let w${t} = ${tapFromOriginWgsl(`wb${t}`, "v", g.d[1])};`);
    if (insideW) s.line(`    a${t} = fma(${xb}[row + w${t}], k, a${t});`);
    else s.line(`    a${t} = select(a${t}, fma(${xb}[row + clamp(w${t}, 0i, ${g.W - 1}i)], k, a${t}), w${t} >= 0i && w${t} < ${g.W}i);`);
  }
  s.line(`  }`);
  s.line(`}`);
}

export function depthwiseConv2d(plan: KernelPlan, ctx: TemplateContext): Stage[] {
  const a = plan.anchor!;
  if (a.node.op !== "depthwiseConv2d") throw new Error("depthwiseConv2d template");
  const [x, w, b] = a.node.inputs as [Tensor, Tensor, Tensor | undefined];
  const g = geometry(x.shape, a.shape, w.shape.slice(2), a.node.attrs);
  const header = [`depthwiseConv2d ${sig(x)} * ${sig(w)}${b ? ` + ${sig(b)}` : ""} -> [${a.shape.join(",")}]`, attrsLine(g), ...epilogueNote(plan)];
  const flops = 2 * g.N * g.C * g.OH * g.OW * g.KH * g.KW;
  /** Binds x, the weight and the bias, in this order in both variants (their bindings must agree). */
  const operands = (k: KernelBuilder) => ({
    xb: k.bind({ kind: "tensor", tensor: x }, "read", "f32"),
    wb: k.bind({ kind: "tensor", tensor: w }, "read", "f32"),
    bb: b ? k.bind({ kind: "tensor", tensor: b }, "read", "f32") : undefined,
  });
  /** Adds the bias of channel c (inside the anchor), then stores through the epilogue. */
  const store = (k: KernelBuilder, e: Scope, bb: string | undefined, acc: string, idx: readonly string[]) => {
    const value = bb ? e.bind(`acc`, `y`, `${acc} + ${bb}[${idx[1]}]`) : acc;
    storeRoot(k, e, plan.root, a, value, idx);
  };

  // Portable variant: invocation gi is output (n, c, i, j), row-major, so neighbours read
  // neighbouring inputs (at stride s).
  const k = builder(ctx);
  const s = bodyScope();
  const { xb, wb, bb } = operands(k);
  s.line(`let j = gi % ${g.OW}i;`);
  s.line(`let i = (gi / ${g.OW}i) % ${g.OH}i;`);
  s.line(`let nc = gi / ${g.OH * g.OW}i;`);
  s.line(`let n = nc / ${g.C}i;`);
  s.line(`let c = nc % ${g.C}i;`);
  s.line(`let hb = ${windowOriginWgsl("i", g.s[0], g.p[0])};`);
  s.line(`let wb = ${windowOriginWgsl("j", g.s[1], g.p[1])};`);
  s.line(`var a = 0.0f;`);
  forwardTaps(s, g, xb, wb, `nc * ${g.H * g.W}i`, "c", [""]);
  store(k, s, bb, "a", ["n", "c", "i", "j"]);
  const main = assemble(k, { name: ctx.name, header: [...header, `one output per invocation`], body: s, threads: g.N * g.C * g.OH * g.OW, flops });

  // CPU variant: workgroup (jb, i, nc) is one subgroup on row i of channel c of image n; lane l
  // takes columns j_t = jb*8*V + t*8 + l (t < V), so each load of a SIMD row reads 8
  // neighbouring columns, while the row test and the weight load are uniform (scalar).
  const V = DW_COLUMNS;
  const grid: [number, number, number] = [ceilDiv(g.OW, CPU_SUBGROUP * V), g.OH, g.N * g.C];
  const alternatives: Alternative[] = [];
  if (gridFits(grid)) {
    const kc = builder(ctx);
    const c = bodyScope();
    const o = operands(kc);
    c.line(`let nc = i32(wid.z);`);
    c.line(`let n = nc / ${g.C}i;`);
    c.line(`let ch = nc % ${g.C}i;`);
    c.line(`let i = i32(wid.y);`);
    c.line(`let hb = ${windowOriginWgsl("i", g.s[0], g.p[0])};`);
    // Columns past OW compute a clamped column's value and are not stored.
    for (const t of range(V)) c.line(`let wb${t} = ${windowOriginWgsl(`min(i32(wid.x) * ${CPU_SUBGROUP * V}i + ${t * CPU_SUBGROUP}i + lane, ${g.OW - 1}i)`, g.s[1], g.p[1])};`);
    for (const t of range(V)) c.line(`var a${t} = 0.0f;`);
    forwardTaps(c, g, o.xb, o.wb, `nc * ${g.H * g.W}i`, "ch", range(V).map(String));
    tileStores(c, range(V).map((t) => `a${t}`), false, (e, value, t) => {
      e.line(`let j = i32(wid.x) * ${CPU_SUBGROUP * V}i + ${t} * ${CPU_SUBGROUP}i + lane;`);
      e.line(`if (j >= ${g.OW}i) { continue; }`);
      store(kc, e, o.bb, value, ["n", "ch", "i", "j"]);
    });
    alternatives.push(assembleSubgroupVariant(kc, main.bindings, { header: [...header, `one row x ${CPU_SUBGROUP * V} columns per subgroup, ${V} per lane`], body: c, workgroups: grid }));
  }
  return [{ ...main, alternatives }];
}

// ---------------------------------------------------------------------------------------------
// Input-gradient

/**
 * The input-gradient's tap loop for input column(s) `x${t}` of row h: tap (u, v) reaches output
 * (i, j) when th = h + p - u*d and tw = x + p - v*d are multiples of s with th/s < OH and
 * tw/s < OW. The row test is shared by the columns; at stride 1 the divisibility test vanishes.
 */
function inputGradTaps(s: Scope, g: Geometry, dyb: string, wb: string, dyo: string, c: string, cols: readonly string[]): void {
  const hits = (t: string, sv: number, n: number) => (sv === 1 ? `${t} >= 0i && ${t} < ${n}i` : `${t} >= 0i && ${t} % ${sv}i == 0i && ${outputOfTapWgsl(t, sv)} < ${n}i`);
  s.line(`for (var u = 0i; u < ${g.KH}i; u++) {`);
  s.line(`  let th = ${tapInverseWgsl("h", g.p[0], "u", g.d[0])};`);
  s.line(`  if (!(${hits("th", g.s[0], g.OH)})) { continue; }`);
  s.line(`  let row = ${dyo} + ${outputOfTapWgsl("th", g.s[0])} * ${g.OW}i;`);
  s.line(`  for (var v = 0i; v < ${g.KW}i; v++) {`);
  s.line(`    let k = ${wb}[${c} * ${g.KH * g.KW}i + u * ${g.KW}i + v];`);
  for (const t of cols) {
    s.line(`    let tw${t} = ${tapInverseWgsl(`x${t}`, g.p[1], "v", g.d[1])};`);
    const ld = `${dyb}[row + clamp(${outputOfTapWgsl(`tw${t}`, g.s[1])}, 0i, ${g.OW - 1}i)]`;
    s.line(`    a${t} = select(a${t}, fma(${ld}, k, a${t}), ${hits(`tw${t}`, g.s[1], g.OW)});`);
  }
  s.line(`  }`);
  s.line(`}`);
}

export function depthwiseConv2dInputGrad(plan: KernelPlan, ctx: TemplateContext): Stage[] {
  const a = plan.anchor!;
  if (a.node.op !== "depthwiseConv2dInputGrad") throw new Error("depthwiseConv2dInputGrad template");
  const [dy, w] = a.node.inputs as [Tensor, Tensor];
  const g = geometry(a.shape, dy.shape, w.shape.slice(2), a.node.attrs);
  const header = [`depthwiseConv2d input-gradient: ${sig(dy)} through ${sig(w)} -> [${a.shape.join(",")}]`, attrsLine(g), ...epilogueNote(plan)];
  const flops = 2 * g.N * g.C * g.OH * g.OW * g.KH * g.KW;
  const operands = (k: KernelBuilder) => ({
    dyb: k.bind({ kind: "tensor", tensor: dy }, "read", "f32"),
    wb: k.bind({ kind: "tensor", tensor: w }, "read", "f32"),
  });

  // Portable variant: invocation gi is input element (n, c, h, x), row-major.
  const k = builder(ctx);
  const s = bodyScope();
  const { dyb, wb } = operands(k);
  s.line(`let x = gi % ${g.W}i;`);
  s.line(`let h = (gi / ${g.W}i) % ${g.H}i;`);
  s.line(`let nc = gi / ${g.H * g.W}i;`);
  s.line(`let c = nc % ${g.C}i;`);
  s.line(`var a = 0.0f;`);
  inputGradTaps(s, g, dyb, wb, `nc * ${g.OH * g.OW}i`, "c", [""]);
  storeRoot(k, s, plan.root, a, "a", [`(nc / ${g.C}i)`, "c", "h", "x"]);
  const main = assemble(k, { name: ctx.name, header: [...header, `one input element per invocation`], body: s, threads: g.N * g.C * g.H * g.W, flops });

  // CPU variant: the forward's layout on the input: workgroup (xb, h, nc), lane l takes columns
  // x_t = xb*8*V + t*8 + l; the row's tap test is uniform.
  const V = DW_COLUMNS;
  const grid: [number, number, number] = [ceilDiv(g.W, CPU_SUBGROUP * V), g.H, g.N * g.C];
  const alternatives: Alternative[] = [];
  if (gridFits(grid)) {
    const kc = builder(ctx);
    const c = bodyScope();
    const o = operands(kc);
    c.line(`let nc = i32(wid.z);`);
    c.line(`let n = nc / ${g.C}i;`);
    c.line(`let ch = nc % ${g.C}i;`);
    c.line(`let h = i32(wid.y);`);
    for (const t of range(V)) c.line(`let x${t} = i32(wid.x) * ${CPU_SUBGROUP * V}i + ${t * CPU_SUBGROUP}i + lane;`);
    for (const t of range(V)) c.line(`var a${t} = 0.0f;`);
    inputGradTaps(c, g, o.dyb, o.wb, `nc * ${g.OH * g.OW}i`, "ch", range(V).map(String));
    tileStores(c, range(V).map((t) => `a${t}`), false, (e, value, t) => {
      e.line(`let x = i32(wid.x) * ${CPU_SUBGROUP * V}i + ${t} * ${CPU_SUBGROUP}i + lane;`);
      e.line(`if (x >= ${g.W}i) { continue; }`);
      storeRoot(kc, e, plan.root, a, value, ["n", "ch", "h", "x"]);
    });
    alternatives.push(assembleSubgroupVariant(kc, main.bindings, { header: [...header, `one row x ${CPU_SUBGROUP * V} columns per subgroup, ${V} per lane`], body: c, workgroups: grid }));
  }
  return [{ ...main, alternatives }];
}

// ---------------------------------------------------------------------------------------------
// Weight-gradient

/** The columns of a weight-gradient row: the loop header, the column j it declares, a test that j < OW. */
interface Columns {
  readonly loop: string;
  readonly declare?: string;
  readonly ok?: string;
}

/**
 * The weight-gradient's loop over the rows r = (n, i) in [from, to) of weight (c, u, v), and
 * the columns j of each: h = i*s + du, w = j*s + dv from the tap offsets du = u*d - p and
 * dv = v*d - p; rows whose h falls outside are skipped whole, columns by select.
 */
function weightGradRows(s: Scope, g: Geometry, xb: string, dyb: string, from: string, to: string, cols: Columns): void {
  s.line(`for (var r = ${from}; r < ${to}; r++) {`);
  s.line(`  let i = r % ${g.OH}i;`);
  s.line(`  let h = ${tapFromOffsetWgsl("i", g.s[0], "du")};`);
  s.line(`  if (h < 0i || h >= ${g.H}i) { continue; }`);
  s.line(`  let nc = (r / ${g.OH}i) * ${g.C}i + c;`);
  s.line(`  let xr = (nc * ${g.H}i + h) * ${g.W}i;`);
  s.line(`  let dr = (nc * ${g.OH}i + i) * ${g.OW}i;`);
  s.line(`  ${cols.loop} {`);
  if (cols.declare) s.line(`    ${cols.declare}`);
  s.line(`    let w = ${tapFromOffsetWgsl("j", g.s[1], "dv")};`);
  const term = `fma(${dyb}[dr + ${cols.ok ? `min(j, ${g.OW - 1}i)` : "j"}], ${xb}[xr + clamp(w, 0i, ${g.W - 1}i)], a)`;
  s.line(`    a = select(a, ${term}, ${cols.ok ? `${cols.ok} && ` : ""}w >= 0i && w < ${g.W}i);`);
  s.line(`  }`);
  s.line(`}`);
}

export function depthwiseConv2dWeightGrad(plan: KernelPlan, ctx: TemplateContext): Stage[] {
  const a = plan.anchor!;
  if (a.node.op !== "depthwiseConv2dWeightGrad") throw new Error("depthwiseConv2dWeightGrad template");
  const [x, dy] = a.node.inputs as [Tensor, Tensor];
  const g = geometry(x.shape, dy.shape, a.node.attrs.kernel, a.node.attrs);
  const taps = g.KH * g.KW;
  const outN = g.C * taps;
  // The sum over positions runs over rows r = (n, i) of OW columns: split into S chunks of whole
  // rows (the conv weight-gradient's split count, never more splits than rows), each chunk
  // summed in order, the partials combined in split order by a second stage.
  const rows = g.N * g.OH;
  const chunk = ceilDiv(rows, Math.min(rows, weightGradSplits(rows * g.OW, outN)));
  const S = ceilDiv(rows, chunk);
  const partial: BufferRef = { kind: "temp", name: `${ctx.name}_partial`, bytes: S * outN * 4 };
  const header = [
    `depthwiseConv2d weight-gradient: ${sig(x)} with ${sig(dy)} -> [${a.shape.join(",")}]`,
    `${attrsLine(g)}; ${S} split(s) of ${chunk} rows of ${g.OW}`,
    ...epilogueNote(plan),
  ];
  const flops = 2 * rows * g.OW * outN;
  /** Declares c, the tap's (u, v) and its offsets du, dv from the weight index `e`. */
  const weightIndex = (l: Scope, e: string) => {
    l.line(`let c = ${e} / ${taps}i;`);
    l.line(`let u = (${e} / ${g.KW}i) % ${g.KH}i;`);
    l.line(`let v = ${e} % ${g.KW}i;`);
    l.line(`let du = ${tapOffsetWgsl("u", g.d[0], g.p[0])};`);
    l.line(`let dv = ${tapOffsetWgsl("v", g.d[1], g.p[1])};`);
  };
  const rowRange = (sp: string): [string, string] => (S === 1 ? ["0i", `${rows}i`] : [`${sp} * ${chunk}i`, `min(${rows}i, (${sp} + 1i) * ${chunk}i)`]);

  // Portable variant: invocation gi = sp*outN + e sums chunk sp of weight e = (c*KH + u)*KW + v
  // (neighbours: neighbouring taps of one channel, reading the same dy row), columns in order.
  const k1 = builder(ctx);
  const s1 = bodyScope();
  const xb = k1.bind({ kind: "tensor", tensor: x }, "read", "f32");
  const dyb = k1.bind({ kind: "tensor", tensor: dy }, "read", "f32");
  s1.line(`let e = gi % ${outN}i;`);
  s1.line(`let sp = gi / ${outN}i;`);
  weightIndex(s1, "e");
  s1.line(`var a = 0.0f;`);
  const [from1, to1] = rowRange("sp");
  weightGradRows(s1, g, xb, dyb, from1, to1, { loop: `for (var j = 0i; j < ${g.OW}i; j++)` });
  const p1 = S === 1 ? undefined : bindOutput(k1, partial, "f32");
  if (p1) s1.line(`${p1}[gi] = a;`);
  else storeRoot(k1, s1, plan.root, a, "a", ["c", "0i", "u", "v"]);
  const stage1 = assemble(k1, { name: S === 1 ? ctx.name : `${ctx.name}_stage1`, header: [...header, `one weight x one split per invocation`], body: s1, threads: outN * S, flops });

  // CPU variant: workgroup (e, sp) is one subgroup summing chunk sp of weight e; lane l takes
  // columns j = jb*8 + l of each row (neighbouring loads, a uniform row test), and the 8 lane
  // sums are combined in lane order 0..7 by shuffles (a fixed order: deterministic).
  const grid: [number, number, number] = [outN, S, 1];
  const alternatives: Alternative[] = [];
  if (gridFits(grid)) {
    const kc = builder(ctx);
    const c = bodyScope();
    const xc = kc.bind({ kind: "tensor", tensor: x }, "read", "f32");
    const dyc = kc.bind({ kind: "tensor", tensor: dy }, "read", "f32");
    weightIndex(c, "i32(wid.x)");
    c.line(`var a = 0.0f;`);
    const [fromc, toc] = rowRange("i32(wid.y)");
    weightGradRows(c, g, xc, dyc, fromc, toc, {
      loop: `for (var jb = 0i; jb < ${ceilDiv(g.OW, CPU_SUBGROUP)}i; jb++)`,
      declare: `let j = jb * ${CPU_SUBGROUP}i + lane;`,
      ok: `j < ${g.OW}i`,
    });
    c.line(`let total = ${range(CPU_SUBGROUP).map((l) => fromLane("a", l)).join(" + ")};`);
    c.line(`if (lane == 0i) {`);
    const e = c.child();
    const pc = S === 1 ? undefined : kc.bind(partial, "read_write", "f32");
    if (pc) e.line(`${pc}[i32(wid.y) * ${outN}i + i32(wid.x)] = total;`);
    else storeRoot(kc, e, plan.root, a, "total", ["c", "0i", "u", "v"]);
    c.lines.push(...e.lines);
    c.line(`}`);
    alternatives.push(assembleSubgroupVariant(kc, stage1.bindings, { header: [...header, `one weight x one split per subgroup, lanes over columns`], body: c, workgroups: grid }));
  }
  if (S === 1) return [{ ...stage1, alternatives }];

  // Stage 2: dk[e] = sum over sp = 0, 1, ..., S-1 of partial[sp][e], in that order.
  const k2 = builder(ctx);
  const s2 = bodyScope();
  const p2 = k2.bind(partial, "read", "f32");
  s2.line(`var acc = 0.0f;`);
  s2.line(`for (var sp = 0i; sp < ${S}i; sp++) { acc = acc + ${p2}[sp * ${outN}i + gi]; }`);
  storeRoot(k2, s2, plan.root, a, "acc", unflatten(a.shape, "gi"));
  return [
    { ...stage1, alternatives },
    assemble(k2, { name: `${ctx.name}_stage2`, header: [`final ${S}-way combine of the partials`, ...epilogueNote(plan)], body: s2, threads: outN, flops: outN * S }),
  ];
}
