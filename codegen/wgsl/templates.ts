// Kernel templates: one function per anchor op, producing one or more dispatches.
//
// Shapes are baked in as constants, so index arithmetic folds. Every template handles sizes
// that do not divide its tiles: indices are clamped for loads and stores are guarded.
// Register tiles are unrolled in the generated code (named accumulators, not arrays), which
// keeps them in registers on GPUs and in vector registers on lavapipe, where loads - not
// arithmetic - are the cost: each tile multiplies TO weights by TP inputs per TO + TP loads.

import { type Tensor, numel } from "../../dsl/index";
import { type FusionResult, type KernelPlan } from "../fusion";
import { type Binding, type BufferRef, KernelBuilder, Scope, isNanExpr, literal, maxExpr, resizeGatherTable, unflatten, valueAt } from "./expr";
import { type Alternative, type Stage, CPU_SUBGROUP, WORKGROUP, assemble, assembleSubgroupVariant, bindOutput, describe, sig, storeRoot } from "./kernel";

export interface TemplateContext {
  readonly fusion: FusionResult;
  /** A stable, readable kernel name. */
  readonly name: string;
}

const ceilDiv = (a: number, b: number) => Math.ceil(a / b);
const range = (n: number) => Array.from({ length: n }, (_, i) => i);
const gcd = (a: number, b: number): number => (b === 0 ? a : gcd(b, a % b));

function builder(ctx: TemplateContext): KernelBuilder {
  const m = ctx.fusion.materialized;
  return new KernelBuilder((t) => m.has(t.id));
}

function bodyScope(): Scope {
  return new Scope(undefined, "  ");
}

function epilogueNote(plan: KernelPlan): string[] {
  return plan.anchor && plan.root !== plan.anchor ? [`with a fused elementwise epilogue producing ${sig(plan.root)}`] : [];
}

// ---------------------------------------------------------------------------------------------
// Pointwise: one invocation per element of the root, everything inlined.

/** Elements per invocation of large pointwise kernels (measured: 1 -> 8 doubles lavapipe's rate). */
const POINTWISE_PER_INVOCATION = 8;

export function pointwise(plan: KernelPlan, ctx: TemplateContext): Stage[] {
  const k = builder(ctx);
  const s = bodyScope();
  const root = plan.root;
  const n = numel(root.shape);
  const idx = unflatten(root.shape, "gi").map((e, a) => (root.shape[a] === 1 ? e : s.bind(`idx${a}`, `i${a}`, e)));
  // Sibling roots (fusion rule S1) at the same index; common subexpressions are loaded once,
  // and a sibling reading an earlier root (only ever at this index, S1 checks) gets it from
  // the register it was stored from.
  const own = idx.join(",");
  const roots = [root, ...(plan.siblings ?? [])];
  for (const t of roots) {
    const value = storeRoot(k, s, t, undefined, undefined, idx);
    k.substitutions.set(t.id, (at) => {
      if (at.join(",") !== own) throw new Error(`codegen: sibling ${describe(t)} read at another index (fusion rule S1)`);
      return value;
    });
  }
  for (const t of roots) k.substitutions.delete(t.id);
  // Several elements per invocation once there are enough of them (see KernelText).
  const perInvocation = n >= POINTWISE_PER_INVOCATION * WORKGROUP * 8 ? POINTWISE_PER_INVOCATION : 1;
  const stores = plan.siblings?.length ? ` and ${plan.siblings.length} sibling(s)` : "";
  return [assemble(k, { name: ctx.name, header: [`pointwise ${sig(root)}${stores}`], body: s, threads: n, flops: n * (1 + (plan.siblings?.length ?? 0)), perInvocation })];
}

// ---------------------------------------------------------------------------------------------
// Reductions (sum, max) over axes with keepdims, two-stage when long.

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
  const loop = (k: KernelBuilder, s: Scope, outIdx: readonly string[], from: string, to: string, acc: string, step = 1) => {
    s.line(`var ${acc} = ${init};`);
    s.line(`for (var kk = ${from}; kk < ${to}; ${step === 1 ? "kk++" : `kk += ${step}i`}) {`);
    const inner = s.child();
    const red = unflatten(redShape, "kk");
    const full = outIdx.map((e, a) => (axes.includes(a) ? red[axes.indexOf(a)]! : e));
    const v = valueAt(k, inner, x, full);
    inner.line(combine(k, acc, v));
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

// ---------------------------------------------------------------------------------------------
// Softmax and log-softmax: one invocation per row along the axis.

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
  s.line(`var row: array<f32, ${L}>;`);
  s.line(`var m = ${literal(-Infinity, "f32")};`);
  s.line(`for (var c = 0i; c < ${L}i; c++) {`);
  const load = s.child();
  const v = valueAt(k, load, x, at("c"));
  load.line(`row[c] = ${v};`);
  load.line(`m = max(m, row[c]);`);
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

// ---------------------------------------------------------------------------------------------
// Softmax cross-entropy loss: per-pixel NLL, two-stage deterministic mean over valid pixels.

export function crossEntropyLoss(plan: KernelPlan, ctx: TemplateContext): Stage[] {
  const r = plan.anchor!;
  if (r.node.op !== "softmaxCrossEntropy") throw new Error("crossEntropyLoss template");
  const [x, labels] = r.node.inputs as [Tensor, Tensor];
  const C = x.shape[1]!;
  const pixels = numel(labels.shape);
  const S = Math.max(1, Math.min(256, Math.ceil(pixels / 2048)));
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
  px.line(`var m = ${literal(-Infinity, "f32")};`);
  px.line(`for (var c = 0i; c < ${C}i; c++) {`);
  const cls = px.child();
  const xi = [lidx[0]!, "c", ...lidx.slice(1)];
  cls.line(`row[c] = ${valueAt(k1, cls, x, xi)};`);
  cls.line(`m = max(m, row[c]);`);
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

/**
 * The store loop of a register tile. The accumulators are copied into an array and the
 * (possibly long) fused epilogue is emitted once, inside a loop over the tile, instead of
 * once per tile element: lavapipe compiles every shader with LLVM, and shader size is what
 * that costs. `vec4` tiles loop over their 4 components too. `body` gets the loop scope and
 * the accumulator expression; it declares the indices and guards the store.
 */
function tileStores(s: Scope, names: readonly string[], vec4: boolean, body: (e: Scope, value: string, t: string, q: string) => void): void {
  const type = vec4 ? "vec4<f32>" : "f32";
  s.line(`var tile = array<${type}, ${names.length}>(${names.join(", ")});`);
  s.line(`for (var t = 0i; t < ${names.length}i; t++) {`);
  if (vec4) {
    s.line(`  for (var q = 0i; q < 4i; q++) {`);
    const e = s.child().child();
    body(e, "tile[t][q]", "t", "q");
    s.lines.push(...e.lines);
    s.line(`  }`);
  } else {
    const e = s.child();
    body(e, "tile[t]", "t", "");
    s.lines.push(...e.lines);
  }
  s.line(`}`);
}

// ---------------------------------------------------------------------------------------------
// Convolution forward: direct convolution with a TO x TP register tile.
//
// Invocation (ob, pb) computes output channels [ob*TO, ob*TO+TO) at the TP output pixels
// [pb*TP, pb*TP+TP) of the flattened (n, i, j) space. For each (c, u, v) it loads TP inputs and
// TO weights and does TO*TP FMAs. Consecutive invocations take consecutive pixels, so input
// loads of a SIMD row are neighbours.

interface ConvGeometry {
  readonly stride: readonly [number, number];
  readonly padding: readonly [number, number];
  readonly dilation: readonly [number, number];
}

/** Whether every tap of every output along an axis lands inside the input (no bounds test). */
function alwaysInside(n: number, outN: number, k: number, g: ConvGeometry, axis: 0 | 1): boolean {
  return g.padding[axis] === 0 && (outN - 1) * g.stride[axis] + (k - 1) * g.dilation[axis] < n;
}

/** Tile sizes of the conv templates: the register tile is TO x TP accumulators. */
export function convTile(outChannels: number, pixels: number): { to: number; tp: number } {
  return { to: Math.min(8, outChannels), tp: Math.min(4, pixels) };
}

/**
 * Weights repacked for the convolution templates: packed[k][o] with o padded to a multiple of 4,
 * so a vec4 load reads 4 output channels of one tap. k runs over (c, u, v) for the forward
 * pass (packed[k][o] = w[o][k]) and over (o, u, v) for the input-gradient (the transpose).
 * One small pass per convolution; weights are tiny next to activations.
 */
function packWeights(ctx: TemplateContext, w: Tensor, transpose: boolean): { stage: Stage; ref: BufferRef; cols4: number } {
  const [O, C, KH, KW] = w.shape as [number, number, number, number];
  // Rows run over (c, u, v) (or (o, u, v)) with c padded to a multiple of 4 by zero rows, so
  // the CPU variants can step 4 channels at a time; the padded rows come last, so the
  // portable variant's indexing does not see them.
  const chans = transpose ? O : C;
  const rows = ceilDiv(chans, 4) * 4 * KH * KW;
  const realRows = chans * KH * KW;
  const cols = transpose ? C : O;
  const cols4 = ceilDiv(cols, 4);
  // Named after the weight, so every convolution of the same parameter shares one packing.
  const source = w.node.op === "input" ? w.node.attrs.name.replace(/[^A-Za-z0-9]+/g, "_") : `node${w.id}`;
  const ref = { kind: "temp" as const, name: `pack_${transpose ? "t_" : ""}${source}`, bytes: rows * cols4 * 16 };
  const k = builder(ctx);
  const s = bodyScope();
  const wb = k.bind({ kind: "tensor", tensor: w }, "read", "f32");
  const out = bindOutput(k, ref, "f32");
  s.line(`let q = gi % ${cols4 * 4}i;`);
  s.line(`let r = min(gi / ${cols4 * 4}i, ${realRows - 1}i);`);
  const inside = `q < ${cols}i && gi / ${cols4 * 4}i < ${realRows}i`;
  if (transpose) {
    // row r = (o, u, v), column q = c: w[o][c][u][v]
    s.line(`let o = r / ${KH * KW}i;`);
    s.line(`let tap = r % ${KH * KW}i;`);
    s.line(`${out}[gi] = select(0.0f, ${wb}[(o * ${C}i + min(q, ${C - 1}i)) * ${KH * KW}i + tap], ${inside});`);
  } else {
    // row r = (c, u, v), column q = o: w[o][r]
    s.line(`${out}[gi] = select(0.0f, ${wb}[min(q, ${O - 1}i) * ${realRows}i + r], ${inside});`);
  }
  const packed = assemble(k, {
    name: `${ctx.name}_pack`,
    header: [`repack conv weights ${sig(w)} as [${rows}][${cols4 * 4}]${transpose ? " (transposed)" : ""}`],
    body: s,
    threads: rows * cols4 * 4,
    flops: 0,
  });
  // Only parameters are certain to hold the same value wherever they are read in a phase.
  const stage = w.node.op === "input" ? { ...packed, memoKey: ref.name } : packed;
  return { stage, ref, cols4 };
}

/**
 * Activations repacked for the CPU conv variants: packed[n][c4][h][w] is a vec4 of channels
 * 4*c4 .. 4*c4+3 (zero past C), so one vec4 load gives a lane 4 channels of a pixel and the 8
 * lanes of a subgroup taking neighbouring pixels read 128 contiguous bytes (four scalar loads
 * at a stride of H*W cost lavapipe a gather each). Each convolution packs its own copy, right
 * before it, so the copy dies with it: sharing the forward's packing with the backward pass
 * would keep a second copy of every saved activation alive across the step. (Program inputs
 * are packed once per phase, and `share` packs a gradient once for the input- and
 * weight-gradients that both read it.)
 * One memory-bound pass, which GPU adapters run too since stages are shared by the variants.
 */
function packChannels(ctx: TemplateContext, x: Tensor, share = false): { stage: Stage; ref: BufferRef } {
  const [N, C, H, W] = x.shape as [number, number, number, number];
  const C4 = ceilDiv(C, 4);
  const HW = H * W;
  const shared = share || x.node.op === "input";
  // Buffer names: an input's own name; a shared packing by node; else by kernel and node (a
  // weight-gradient packs two tensors).
  const source = x.node.op === "input" ? x.node.attrs.name.replace(/[^A-Za-z0-9]+/g, "_") : shared ? `node${x.id}` : `${ctx.name}_node${x.id}`;
  const ref = { kind: "temp" as const, name: `packc_${source}`, bytes: N * C4 * HW * 16 };
  const k = builder(ctx);
  const s = bodyScope();
  const xb = k.bind({ kind: "tensor", tensor: x }, "read", "f32");
  const out = bindOutput(k, ref, "vec4<f32>");
  s.line(`let hw = gi % ${HW}i;`);
  s.line(`let c4 = (gi / ${HW}i) % ${C4}i;`);
  s.line(`let n = gi / ${C4 * HW}i;`);
  s.line(`let base = n * ${C * HW}i + hw;`);
  const lane = (q: number) => (C % 4 === 0 || q === 0 ? `${xb}[base + (c4 * 4i + ${q}i) * ${HW}i]` : `select(0.0f, ${xb}[base + min(c4 * 4i + ${q}i, ${C - 1}i) * ${HW}i], c4 * 4i + ${q}i < ${C}i)`);
  s.line(`${out}[gi] = vec4<f32>(${range(4).map(lane).join(", ")});`);
  const packed = assemble(k, {
    name: `${ctx.name}_packc`,
    header: [`repack ${sig(x)} as [${N}][${C4}][${H}][${W}] x vec4 (4 channels per element)`],
    body: s,
    threads: N * C4 * HW,
    flops: 0,
  });
  return { stage: shared ? { ...packed, memoKey: ref.name } : packed, ref };
}

/**
 * `value` of lane `lane` (a constant below CPU_SUBGROUP) in every lane of a CPU variant's
 * subgroup. subgroupShuffle with a constant lane, not subgroupBroadcast: lavapipe lowers the
 * shuffle to one permute per component and the broadcast to a permute plus a masked move, which
 * measured 3-7% of a whole matmul or convolution (docs/benchmarks.md). Every lane is active where
 * the CPU variants call it, so the two agree.
 */
function fromLane(value: string, lane: number): string {
  return `subgroupShuffle(${value}, ${lane}u)`;
}

/**
 * Rows of the CPU variants' subgroup tile (matmul rows, convolution pixels): each lane owns one
 * vec4 accumulator per row. Every element a lane loads costs lavapipe about 8 instructions (a
 * bounds check and an insert per lane), so the taller the tile, the fewer loads per FMA: 64 rows
 * measured 4-7% faster than 32 on the 1024^3 matmul and the 256->256 and dilation-4 convolutions
 * (16: a third slower than 32). Past 64 accumulators per lane (80 or 96 rows, or 48 rows by two
 * vec4s of columns) LLVM stops unrolling lavapipe's per-lane load loops: 10-40% slower. A tall
 * tile leaves fewer workgroups, so small problems keep 32 rows: lavapipe spreads workgroups over
 * its threads, and MIN_CPU_WORKGROUPS keeps every thread of a many-core host busy with several.
 */
const CPU_TALL_ROWS = 64;
const CPU_ROWS = 32;
const MIN_CPU_WORKGROUPS = 64;

/** Rows per subgroup for `rows` rows of output spread over `others` workgroups besides. */
function cpuTileRows(rows: number, others: number): number {
  const r = ceilDiv(rows, CPU_TALL_ROWS) * others >= MIN_CPU_WORKGROUPS ? CPU_TALL_ROWS : CPU_ROWS;
  return Math.min(r, ceilDiv(rows, CPU_SUBGROUP) * CPU_SUBGROUP);
}

/** The weight-gradient CPU variant's vec4s of out-channels per lane and positions per iteration. */
const DW_OV = 2;
const DW_UNROLL = 4;

/**
 * The inner step of the forward and input-gradient CPU variants, for one tap of 4 channels:
 * the 4 weight vec4s of packed rows wr, wr + rowStride, ... (`wr` declared by the caller),
 * then each of the R accumulators a0.. takes its pixel's 4 channel values, broadcast from the
 * lane that loaded them (`${src}0`, `${src}1`, ..., R/8 per lane), as one mac4 chain.
 */
function cpuTapStep(s: Scope, k: KernelBuilder, wc: string, rowStride: number, R: number, src: string): void {
  for (const q of range(4)) s.line(`let y${q} = ${wc}[wr + ${q * rowStride}i];`);
  k.helpers.add("mac4");
  for (const r of range(R)) s.line(`a${r} = mac4(${fromLane(`${src}${Math.floor(r / CPU_SUBGROUP)}`, r % CPU_SUBGROUP)}, y0, y1, y2, y3, a${r});`);
}

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
  // Both variants read the input channel-packed (see packChannels).
  const xpack = packChannels(ctx, x);
  const insideH = alwaysInside(H, OH, KH, g, 0);
  const insideW = alwaysInside(W, OW, KW, g, 1);
  const header = [
    `conv2d ${sig(x)} * ${sig(w)}${b ? ` + ${sig(b)}` : ""} -> [${a.shape.join(",")}]`,
    `stride [${g.stride}], padding [${g.padding}], dilation [${g.dilation}]`,
    ...epilogueNote(plan),
  ];
  const flops = 2 * N * O * OH * OW * C * KH * KW;

  /** Declares p, n, i, j, and the input row base of output pixel `p` (an expression). */
  const pixel = (s: Scope, t: string, p: string) => {
    s.line(`let p${t} = min(${p}, ${P - 1}i);`);
    s.line(`let n${t} = p${t} / ${OH * OW}i;`);
    s.line(`let i${t} = (p${t} / ${OW}i) % ${OH}i;`);
    s.line(`let j${t} = p${t} % ${OW}i;`);
    s.line(`let hb${t} = i${t} * ${g.stride[0]}i - ${g.padding[0]}i;`);
    s.line(`let wb${t} = j${t} * ${g.stride[1]}i - ${g.padding[1]}i;`);
    s.line(`let xo${t} = n${t} * ${C4 * H * W * 4}i;`);
  };
  /** The input value at tap (c, u, v) for pixel t, zero outside the input. */
  const tapRow = (s: Scope, t: string) => {
    s.line(`let h${t} = hb${t} + u * ${g.dilation[0]}i;`);
    if (!insideH) s.line(`let hok${t} = h${t} >= 0i && h${t} < ${H}i;`);
    // channel-packed input: element ((n*C4 + c/4)*H*W + h*W + w)*4 + c%4
    s.line(`let xr${t} = xo${t} + ((c >> 2u) * ${H * W}i + ${insideH ? `h${t}` : `clamp(h${t}, 0i, ${H - 1}i)`} * ${W}i) * 4i + (c & 3i);`);
  };
  const tapValue = (s: Scope, xb: string, t: string) => {
    s.line(`let w${t} = wb${t} + v * ${g.dilation[1]}i;`);
    const ld = `${xb}[xr${t} + ${insideW ? `w${t}` : `clamp(w${t}, 0i, ${W - 1}i)`} * 4i]`;
    const conds = [...(insideH ? [] : [`hok${t}`]), ...(insideW ? [] : [`w${t} >= 0i && w${t} < ${W}i`])];
    s.line(`let x${t} = ${conds.length ? `select(0.0f, ${ld}, ${conds.join(" && ")})` : ld};`);
  };

  // Default (portable, GPU) variant: each invocation a TO x TP register tile, direct loops.
  const { to: TO, tp: TP } = convTile(O, P);
  const OB = ceilDiv(O, TO);
  const PB = ceilDiv(P, TP);
  const k = builder(ctx);
  const s = bodyScope();
  const xb = k.bind(xpack.ref, "read", "f32");
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
  const R = cpuTileRows(P, ceilDiv(O4, CPU_SUBGROUP));
  const J = R / CPU_SUBGROUP;
  const grid: [number, number, number] = [ceilDiv(P, R), ceilDiv(O4, CPU_SUBGROUP), 1];
  const alternatives: Alternative[] = [];
  if (grid[0] <= 65535 && grid[1] <= 65535) {
    const kc = builder(ctx);
    const c = bodyScope();
    const xc = kc.bind(xpack.ref, "read", "vec4<f32>");
    const wc = kc.bind(pack, "read", "vec4<f32>");
    const bc = b ? kc.bind({ kind: "tensor", tensor: b }, "read", "f32") : undefined;
    c.line(`let o4 = i32(wid.y) * ${CPU_SUBGROUP}i + lane;`);
    c.line(`let ol = min(o4, ${O4 - 1}i);`);
    for (const t of range(J)) pixel(c, `${t}`, `i32(wid.x) * ${R}i + ${t * CPU_SUBGROUP}i + lane`);
    for (const r of range(R)) c.line(`var a${r} = vec4<f32>(0.0f);`);
    // One flat loop over (c4, u, v): lavapipe pays for every loop level and for long unrolled
    // bodies (register pressure), so the body is one tap of 4 channels. (Measured: R = 32
    // beats 16; 8 channels per iteration, or unrolled taps, are slower.)
    c.line(`for (var k = 0i; k < ${C4 * KH * KW}i; k++) {`);
    const cv = c.child();
    cv.line(`let c4 = k / ${KH * KW}i;`);
    cv.line(`let u = (k / ${KW}i) % ${KH}i;`);
    cv.line(`let v = k % ${KW}i;`);
    for (const t of range(J)) {
      cv.line(`let h${t} = hb${t} + u * ${g.dilation[0]}i;`);
      cv.line(`let w${t} = wb${t} + v * ${g.dilation[1]}i;`);
      const conds = [...(insideH ? [] : [`h${t} >= 0i && h${t} < ${H}i`]), ...(insideW ? [] : [`w${t} >= 0i && w${t} < ${W}i`])];
      const ld = `${xc}[(n${t} * ${C4}i + c4) * ${H * W}i + ${insideH ? `h${t}` : `clamp(h${t}, 0i, ${H - 1}i)`} * ${W}i + ${insideW ? `w${t}` : `clamp(w${t}, 0i, ${W - 1}i)`}]`;
      cv.line(`let x${t} = ${conds.length ? `select(vec4<f32>(0.0f), ${ld}, ${conds.join(" && ")})` : ld};`);
    }
    // packed row of (4*c4 + q, u, v) is ((4*c4 + q)*KH + u)*KW + v
    cv.line(`let wr = (c4 * ${4 * KH * KW}i + u * ${KW}i + v) * ${O4}i + ol;`);
    cpuTapStep(cv, kc, wc, KH * KW * O4, R, "x");
    c.lines.push(...cv.lines);
    c.line(`}`);
    tileStores(c, range(R).map((r) => `a${r}`), true, (e, value, t, q) => {
      e.line(`let p = i32(wid.x) * ${R}i + ${t};`);
      e.line(`let o = o4 * 4i + ${q};`);
      e.line(`if (p >= ${P}i || o >= ${O}i) { continue; }`);
      e.line(`let n = p / ${OH * OW}i;`);
      e.line(`let i = (p / ${OW}i) % ${OH}i;`);
      e.line(`let j = p % ${OW}i;`);
      const acc = bc ? e.bind(`acc`, `y`, `${value} + ${bc}[o]`) : value;
      storeRoot(kc, e, plan.root, a, acc, ["n", "o", "i", "j"]);
    });
    alternatives.push(
      assembleSubgroupVariant(kc, main.bindings, { header: [...header, `${R} pixels x ${CPU_SUBGROUP * 4} out-channels per subgroup, 4 in-channels per step`], body: c, workgroups: grid }),
    );
  }
  return [packStage, xpack.stage, { ...main, alternatives }];
}

// ---------------------------------------------------------------------------------------------
// Convolution input-gradient, gather form, stride phases without zero taps.
//
// dx[n,c,h,w] = sum_{o,u,v} dy[n,o,i,j] w[o,c,u,v] where h = i*s - p + u*d, i.e.
// i = (h + p - u*d) / s must be an integer in [0, OH). An invocation handles TC input
// channels at TP positions w = ph + s*(jb*TP + t) of one row h: all its positions share the
// phase w mod s, so the divisibility test of a tap is the same for the whole tile, and taps
// that hit no output are skipped, not multiplied by zero.

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
  const perPhase = ceilDiv(W, sw);
  const TP = Math.min(4, perPhase);
  const JB = ceilDiv(perPhase, TP);
  const { stage: packStage, ref: pack, cols4: C4 } = packWeights(ctx, w, true);
  const O4 = ceilDiv(O, 4);
  // Both variants read dy channel-packed (see packChannels), shared with the weight-gradient.
  const dypack = packChannels(ctx, dy, true);
  const k = builder(ctx);
  const s = bodyScope();
  const dyb = k.bind(dypack.ref, "read", "f32");
  const wb = k.bind(pack, "read", "f32");
  s.line(`let jb = gi % ${JB}i;`);
  s.line(`let ph = (gi / ${JB}i) % ${sw}i;`);
  s.line(`let h = (gi / ${JB * sw}i) % ${H}i;`);
  s.line(`let cb = (gi / ${JB * sw * H}i) % ${CB}i;`);
  s.line(`let n = gi / ${JB * sw * H * CB}i;`);
  for (const p of range(TP)) {
    s.line(`let x${p} = ph + ${sw}i * (jb * ${TP}i + ${p}i);`);
    s.line(`let xok${p} = x${p} < ${W}i;`);
  }
  for (const c of range(TC)) s.line(`let c${c} = min(cb * ${TC}i + ${c}i, ${C - 1}i);`);
  for (const c of range(TC)) for (const p of range(TP)) s.line(`var a${c}_${p} = 0.0f;`);
  s.line(`for (var o = 0i; o < ${O}i; o++) {`);
  // channel-packed dy: element ((n*O4 + o/4)*OH*OW + i*OW + j)*4 + o%4
  s.line(`  let dyo = (n * ${O4}i + (o >> 2u)) * ${OH * OW * 4}i + (o & 3i);`);
  s.line(`  let wo = o * ${KH * KW * C4 * 4}i;`);
  s.line(`  for (var u = 0i; u < ${KH}i; u++) {`);
  s.line(`    let th = h + ${g.padding[0]}i - u * ${g.dilation[0]}i;`);
  s.line(sh === 1 ? `    if (th < 0i || th >= ${OH}i) { continue; }` : `    if (th < 0i || th % ${sh}i != 0i || th / ${sh}i >= ${OH}i) { continue; }`);
  s.line(`    let row = dyo + (th / ${sh}i) * ${OW * 4}i;`);
  s.line(`    for (var v = 0i; v < ${KW}i; v++) {`);
  if (sw > 1) s.line(`      if (((ph + ${g.padding[1]}i - v * ${g.dilation[1]}i) % ${sw}i + ${sw}i) % ${sw}i != 0i) { continue; }`);
  for (const p of range(TP)) {
    s.line(`      let tw${p} = x${p} + ${g.padding[1]}i - v * ${g.dilation[1]}i;`);
    s.line(`      let j${p} = tw${p} / ${sw}i;`);
    s.line(`      let g${p} = select(0.0f, ${dyb}[row + clamp(j${p}, 0i, ${OW - 1}i) * 4i], xok${p} && tw${p} >= 0i && j${p} < ${OW}i);`);
  }
  for (const c of range(TC)) s.line(`      let k${c} = ${wb}[wo + (u * ${KW}i + v) * ${C4 * 4}i + c${c}];`);
  for (const c of range(TC)) for (const p of range(TP)) s.line(`      a${c}_${p} = fma(k${c}, g${p}, a${c}_${p});`);
  s.line(`    }`);
  s.line(`  }`);
  s.line(`}`);
  tileStores(s, range(TC).flatMap((c) => range(TP).map((p) => `a${c}_${p}`)), false, (e, value, t) => {
    e.line(`let ch = cb * ${TC}i + ${t} / ${TP}i;`);
    e.line(`let x = ph + ${sw}i * (jb * ${TP}i + ${t} % ${TP}i);`);
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
  const Hq = ceilDiv(H, sh);
  const Wq = ceilDiv(W, sw);
  const Q = N * Hq * Wq;
  const R = cpuTileRows(Q, ceilDiv(C4, CPU_SUBGROUP) * sh * sw);
  const J = R / CPU_SUBGROUP;
  const grid: [number, number, number] = [ceilDiv(Q, R), ceilDiv(C4, CPU_SUBGROUP), sh * sw];
  const alternatives: Alternative[] = [];
  if (grid[0] <= 65535 && grid[1] <= 65535) {
    const kc = builder(ctx);
    const c = bodyScope();
    const dyc = kc.bind(dypack.ref, "read", "vec4<f32>");
    const wc = kc.bind(pack, "read", "vec4<f32>");
    c.line(`let c4 = i32(wid.y) * ${CPU_SUBGROUP}i + lane;`);
    c.line(`let cl = min(c4, ${C4 - 1}i);`);
    c.line(`let phh = i32(wid.z) / ${sw}i;`);
    c.line(`let phw = i32(wid.z) % ${sw}i;`);
    for (const j of range(J)) {
      c.line(`let q${j} = min(i32(wid.x) * ${R}i + ${j * CPU_SUBGROUP}i + lane, ${Q - 1}i);`);
      c.line(`let n${j} = q${j} / ${Hq * Wq}i;`);
      c.line(`let h${j} = phh + ${sh}i * ((q${j} / ${Wq}i) % ${Hq}i);`);
      c.line(`let x${j} = phw + ${sw}i * (q${j} % ${Wq}i);`);
      c.line(`let ok${j} = h${j} < ${H}i && x${j} < ${W}i;`);
    }
    for (const r of range(R)) c.line(`var a${r} = vec4<f32>(0.0f);`);
    // Taps that hit an output for this phase: u = u0 + m*step with step = s / gcd(s, d)
    // (and likewise v), listed per phase at generation time, so the loop visits no others.
    const hits = (phases: number, k: number, pad: number, dil: number) =>
      range(phases).map((ph) => range(k).filter((u) => (((ph + pad - u * dil) % phases) + phases) % phases === 0));
    const hu = hits(sh, KH, g.padding[0], g.dilation[0]);
    const hv = hits(sw, KW, g.padding[1], g.dilation[1]);
    /** The per-phase value as a select chain (phases are few). */
    const pick = (ph: string, values: readonly number[]) =>
      values.slice(1).reduce((e, val, idx) => `select(${e}, ${val}i, ${ph} == ${idx + 1}i)`, `${values[0]}i`);
    const stepH = sh / gcd(sh, g.dilation[0]);
    const stepW = sw / gcd(sw, g.dilation[1]);
    c.line(`let u0 = ${pick("phh", hu.map((l) => l[0] ?? 0))};`);
    c.line(`let nu = ${pick("phh", hu.map((l) => l.length))};`);
    c.line(`let v0 = ${pick("phw", hv.map((l) => l[0] ?? 0))};`);
    c.line(`let nv = ${pick("phw", hv.map((l) => l.length))};`);
    c.line(`for (var k = 0i; k < ${O4}i * nu * nv; k++) {`);
    const cv = c.child();
    cv.line(`let o4 = k / (nu * nv);`);
    cv.line(`let u = u0 + ((k / nv) % nu) * ${stepH}i;`);
    cv.line(`let v = v0 + (k % nv) * ${stepW}i;`);
    for (const j of range(J)) {
      cv.line(`let th${j} = h${j} + ${g.padding[0]}i - u * ${g.dilation[0]}i;`);
      cv.line(`let tw${j} = x${j} + ${g.padding[1]}i - v * ${g.dilation[1]}i;`);
      cv.line(`let i${j} = th${j} / ${sh}i;`);
      cv.line(`let jj${j} = tw${j} / ${sw}i;`);
      cv.line(
        `let g${j} = select(vec4<f32>(0.0f), ${dyc}[((n${j} * ${O4}i + o4) * ${OH}i + clamp(i${j}, 0i, ${OH - 1}i)) * ${OW}i + clamp(jj${j}, 0i, ${OW - 1}i)], ok${j} && th${j} >= 0i && i${j} < ${OH}i && tw${j} >= 0i && jj${j} < ${OW}i);`,
      );
    }
    // transposed packed row of (4*o4 + q, u, v) is ((4*o4 + q)*KH + u)*KW + v
    cv.line(`let wr = (o4 * ${4 * KH * KW}i + u * ${KW}i + v) * ${C4}i + cl;`);
    cpuTapStep(cv, kc, wc, KH * KW * C4, R, "g");
    c.lines.push(...cv.lines);
    c.line(`}`);
    tileStores(c, range(R).map((r) => `a${r}`), true, (e, value, t, q) => {
      e.line(`let pix = i32(wid.x) * ${R}i + ${t};`);
      e.line(`let n = pix / ${Hq * Wq}i;`);
      e.line(`let h = phh + ${sh}i * ((pix / ${Wq}i) % ${Hq}i);`);
      e.line(`let x = phw + ${sw}i * (pix % ${Wq}i);`);
      e.line(`let ch = c4 * 4i + ${q};`);
      e.line(`if (pix >= ${Q}i || h >= ${H}i || x >= ${W}i || ch >= ${C}i) { continue; }`);
      storeRoot(kc, e, plan.root, a, value, ["n", "ch", "h", "x"]);
    });
    alternatives.push(
      assembleSubgroupVariant(kc, main.bindings, { header: [...header, `${R} same-phase pixels x ${CPU_SUBGROUP * 4} channels per subgroup, 4 out-channels per step`], body: c, workgroups: grid }),
    );
  }
  return [packStage, dypack.stage, { ...main, alternatives }];
}

// ---------------------------------------------------------------------------------------------
// Convolution weight-gradient: split-K over output positions, deterministic reduce.
//
// dw[o,c,u,v] = sum over q = (n,i,j) of dy[n,o,i,j] x[n,c,i*s-p+u*d, j*s-p+v*d]. The sum over
// q is long and the output small, so q is split into S chunks whose partial tiles (TO x TC per
// invocation, for one tap (u,v)) are written to a buffer and combined in a fixed order.

/**
 * K-splits of a weight-gradient: enough partial tiles to fill the device (8192 invocations)
 * while each split still sums at least 512 positions. Fixed at codegen time (determinism).
 */
function weightGradSplits(positions: number, tiles: number): number {
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
  packs: { xpack: BufferRef; dypack: BufferRef },
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
  const V = O4 <= CPU_SUBGROUP ? 1 : DW_OV;
  const grid: [number, number, number] = [ceilDiv(groups, CPU_SUBGROUP), ceilDiv(O4, CPU_SUBGROUP * V), split?.S ?? 1];
  if (grid[0] > 65535 || grid[1] > 65535) return [];
  const k = builder(ctx);
  const c = bodyScope();
  const xb = k.bind(packs.xpack, "read", "vec4<f32>");
  const db = k.bind(packs.dypack, "read", "vec4<f32>");
  for (const v of range(V)) {
    c.line(`let o4_${v} = i32(wid.y) * ${CPU_SUBGROUP * V}i + ${v * CPU_SUBGROUP}i + lane;`);
    c.line(`let ol${v} = min(o4_${v}, ${O4 - 1}i);`);
  }
  c.line(`let grp = min(i32(wid.x) * ${CPU_SUBGROUP}i + lane, ${groups - 1}i);`);
  // group = tap * C4 + c4
  c.line(`let c4 = grp % ${C4}i;`);
  c.line(`let tap = grp / ${C4}i;`);
  c.line(`let du = (tap / ${KW}i) * ${g.dilation[0]}i - ${g.padding[0]}i;`);
  c.line(`let dv = (tap % ${KW}i) * ${g.dilation[1]}i - ${g.padding[1]}i;`);
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
    l.line(`let h${t} = ${N === 1 ? `iq${t}` : `(iq${t} - img${t} * ${OH}i)`} * ${g.stride[0]}i + du;`);
    l.line(`let w${t} = (${q} - iq${t} * ${OW}i) * ${g.stride[1]}i + dv;`);
    l.line(
      `let xv${t} = select(vec4<f32>(0.0f), ${xb}[(img${t} * ${C4}i + c4) * ${H * W}i + i32(min(u32(h${t}), ${H - 1}u)) * ${W}i + i32(min(u32(w${t}), ${W - 1}u))], u32(h${t}) < ${H}u && u32(w${t}) < ${W}u);`,
    );
    // dy at (img, o4, position within the image) = (img*O4 + o4)*OH*OW + q - img*OH*OW
    for (const v of range(V)) l.line(`let dv${t}_${v} = ${db}[${N === 1 ? `ol${v} * ${OH * OW}i + ${q}` : `(img${t} * ${O4 - 1}i + ol${v}) * ${OH * OW}i + ${q}`}];`);
    for (const src of range(CPU_SUBGROUP)) l.line(`let s${t}_${src} = ${fromLane(`xv${t}`, src)};`);
  };
  const accumulate = (l: Scope, ts: readonly string[]) => {
    if (ts.length === 4) k.helpers.add("mac4");
    for (const v of range(V)) {
      for (const src of range(CPU_SUBGROUP)) {
        for (const q of range(4)) {
          const acc = `a${v}_${src * 4 + q}`;
          const c = "xyzw"[q];
          l.line(
            ts.length === 4
              ? `${acc} = mac4(vec4<f32>(${ts.map((t) => `s${t}_${src}.${c}`).join(", ")}), ${ts.map((t) => `dv${t}_${v}`).join(", ")}, ${acc});`
              : `${acc} = ${ts.reduce((e, t) => `fma(vec4<f32>(s${t}_${src}.${c}), dv${t}_${v}, ${e})`, acc)};`,
          );
        }
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
  tileStores(c, range(V).flatMap((v) => range(ROWS).map((r) => `a${v}_${r}`)), true, (e, value, t, q) => {
    e.line(`let row = ${t} % ${ROWS}i;`);
    e.line(`let gq = i32(wid.x) * ${CPU_SUBGROUP}i + row / 4i;`);
    e.line(`let ci = (gq % ${C4}i) * 4i + row % 4i;`);
    e.line(`let tap = gq / ${C4}i;`);
    e.line(`let o = (i32(wid.y) * ${CPU_SUBGROUP * V}i + (${t} / ${ROWS}i) * ${CPU_SUBGROUP}i + lane) * 4i + ${q};`);
    e.line(`if (gq >= ${groups}i || ci >= ${C}i || o >= ${O}i) { continue; }`);
    if (out) {
      e.line(`${out}[i32(wid.z) * ${O * C * KH * KW}i + (o * ${C}i + ci) * ${KH * KW}i + tap] = ${value};`);
    } else {
      e.line(`let u = tap / ${KW}i;`);
      e.line(`let v = tap % ${KW}i;`);
      storeRoot(k, e, plan.root, a, value, ["o", "ci", "u", "v"]);
    }
  });
  return [assembleSubgroupVariant(k, expected, { header: [...header, `${CPU_SUBGROUP * 4 * V} out-channels x ${CPU_SUBGROUP} (4 channels, tap) columns per subgroup`], body: c, workgroups: grid })];
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
  // Both variants read x and dy channel-packed (see packChannels); dy's packing is shared
  // with the input-gradient, which reads the same dy.
  const xpack = packChannels(ctx, x);
  const dypack = packChannels(ctx, dy, true);
  const k1 = builder(ctx);
  const s1 = bodyScope();
  const xb = k1.bind(xpack.ref, "read", "f32");
  const dyb = k1.bind(dypack.ref, "read", "f32");
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
  s1.line(`  let h = i * ${g.stride[0]}i - ${g.padding[0]}i + u * ${g.dilation[0]}i;`);
  s1.line(`  let w = j * ${g.stride[1]}i - ${g.padding[1]}i + v * ${g.dilation[1]}i;`);
  s1.line(`  let ok = h >= 0i && h < ${H}i && w >= 0i && w < ${W}i;`);
  // channel-packed layouts: element (c, h, w) of image n at ((n*C4 + c/4)*H*W + h*W + w)*4 + c%4
  s1.line(`  let xi = (n * ${C4 * H * W}i + clamp(h, 0i, ${H - 1}i) * ${W}i + clamp(w, 0i, ${W - 1}i)) * 4i;`);
  s1.line(`  let di = (n * ${O4 * OH * OW}i + i * ${OW}i + j) * 4i;`);
  for (const o of range(TO)) s1.line(`  let d${o} = ${dyb}[di + (o${o} >> 2u) * ${OH * OW * 4}i + (o${o} & 3i)];`);
  for (const c of range(TC)) s1.line(`  let x${c} = select(0.0f, ${xb}[xi + (c${c} >> 2u) * ${H * W * 4}i + (c${c} & 3i)], ok);`);
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
    return [xpack.stage, dypack.stage, { ...main, alternatives: weightGradCpuVariant(plan, ctx, main.bindings, header, { xpack: xpack.ref, dypack: dypack.ref }, undefined) }];
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
    xpack.stage,
    dypack.stage,
    { ...stage1, alternatives: weightGradCpuVariant(plan, ctx, stage1.bindings, header, { xpack: xpack.ref, dypack: dypack.ref }, { partial, S, chunk }) },
    assemble(k2, { name: `${ctx.name}_stage2`, header: [`final ${S}-way combine of the partials`, ...epilogueNote(plan)], body: s2, threads: outN, flops: outN * S }),
  ];
}

// ---------------------------------------------------------------------------------------------
// Matrix product with a TM x TN register tile.

export function matmul(plan: KernelPlan, ctx: TemplateContext): Stage[] {
  const a = plan.anchor!;
  if (a.node.op !== "matmul") throw new Error("matmul template");
  const [A, B] = a.node.inputs as [Tensor, Tensor];
  const [M, K] = A.shape as [number, number];
  const N = B.shape[1]!;
  const TM = Math.min(4, M);
  const TN = Math.min(4, N);
  const NB = ceilDiv(N, TN);
  const k = builder(ctx);
  const s = bodyScope();
  const ab = k.bind({ kind: "tensor", tensor: A }, "read", "f32");
  const bb = k.bind({ kind: "tensor", tensor: B }, "read", "f32");
  s.line(`let nb = gi % ${NB}i;`);
  s.line(`let mb = gi / ${NB}i;`);
  for (const m of range(TM)) s.line(`let m${m} = min(mb * ${TM}i + ${m}i, ${M - 1}i);`);
  for (const n of range(TN)) s.line(`let n${n} = min(nb * ${TN}i + ${n}i, ${N - 1}i);`);
  for (const m of range(TM)) for (const n of range(TN)) s.line(`var a${m}_${n} = 0.0f;`);
  s.line(`for (var kk = 0i; kk < ${K}i; kk++) {`);
  for (const m of range(TM)) s.line(`  let x${m} = ${ab}[m${m} * ${K}i + kk];`);
  for (const n of range(TN)) s.line(`  let y${n} = ${bb}[kk * ${N}i + n${n}];`);
  for (const m of range(TM)) for (const n of range(TN)) s.line(`  a${m}_${n} = fma(x${m}, y${n}, a${m}_${n});`);
  s.line(`}`);
  tileStores(s, range(TM).flatMap((m) => range(TN).map((n) => `a${m}_${n}`)), false, (e, value, t) => {
    e.line(`let row = mb * ${TM}i + ${t} / ${TN}i;`);
    e.line(`let col = nb * ${TN}i + ${t} % ${TN}i;`);
    e.line(`if (row >= ${M}i || col >= ${N}i) { continue; }`);
    storeRoot(k, e, plan.root, a, value, ["row", "col"]);
  });
  const header = [`matmul ${sig(A)} x ${sig(B)}`, ...epilogueNote(plan)];
  const main = assemble(k, { name: ctx.name, header: [...header, `tile ${TM}x${TN}`], body: s, threads: ceilDiv(M, TM) * NB, flops: 2 * M * N * K });
  return [{ ...main, alternatives: matmulCpuVariant(plan, ctx, main.bindings, header) }];
}

/**
 * CPU variant of the matrix product (lavapipe's best measured pattern): a subgroup owns R rows
 * by 32 columns of C, a lane 4 columns (one vec4 of B per k). Per 4 steps of k a lane loads
 * one vec4 of A for each of its R/8 rows and 4 vec4s of B, and every row's A values reach all
 * lanes by a shuffle (fromLane): R*4 vec4 FMAs for R/8 + 4 loads, instead of a load per FMA.
 * Rows and columns past the edge are clamped on load and skipped on store; a K that is not a
 * multiple of 4 ends with single steps.
 */
function matmulCpuVariant(plan: KernelPlan, ctx: TemplateContext, expected: readonly Binding[], header: readonly string[]): Alternative[] {
  const a = plan.anchor!;
  const [A, B] = a.node.inputs as [Tensor, Tensor];
  const [M, K] = A.shape as [number, number];
  const N = B.shape[1]!;
  const N4 = ceilDiv(N, 4);
  const R = cpuTileRows(M, ceilDiv(N4, CPU_SUBGROUP));
  const K4 = Math.floor(K / 4);
  const grid: [number, number, number] = [ceilDiv(N4, CPU_SUBGROUP), ceilDiv(M, R), 1];
  if (grid[0] > 65535 || grid[1] > 65535) return [];
  const k = builder(ctx);
  const c = bodyScope();
  // vec4 views where rows are whole vec4s; otherwise 4 scalar loads build each vec4.
  // (One tensor on both sides, as in a Gram matrix, gets one view: vec4 only if both allow it.)
  const aVec = K % 4 === 0 && (A !== B || N % 4 === 0);
  const bVec = N % 4 === 0 && (A !== B || K % 4 === 0);
  const ab = k.bind({ kind: "tensor", tensor: A }, "read", aVec ? "vec4<f32>" : "f32");
  const bb = k.bind({ kind: "tensor", tensor: B }, "read", bVec ? "vec4<f32>" : "f32");
  const J = R / CPU_SUBGROUP;
  c.line(`let col4 = i32(wid.x) * ${CPU_SUBGROUP}i + lane;`);
  c.line(`let row0 = i32(wid.y) * ${R}i;`);
  for (const j of range(J)) c.line(`let ar${j} = min(row0 + ${j * CPU_SUBGROUP}i + lane, ${M - 1}i) * ${K}i;`);
  const bRow = (kk: string) =>
    bVec
      ? `${bb}[(${kk}) * ${N4}i + min(col4, ${N4 - 1}i)]`
      : `vec4<f32>(${range(4).map((q) => `${bb}[(${kk}) * ${N}i + min(col4 * 4i + ${q}i, ${N - 1}i)]`).join(", ")})`;
  for (const r of range(R)) c.line(`var c${r} = vec4<f32>(0.0f);`);
  if (K4 > 0) {
    c.line(`for (var k4 = 0i; k4 < ${K4}i; k4++) {`);
    const l = c.child();
    for (const j of range(J)) {
      l.line(
        aVec
          ? `let x${j} = ${ab}[ar${j} / 4i + k4];`
          : `let x${j} = vec4<f32>(${range(4).map((q) => `${ab}[ar${j} + k4 * 4i + ${q}i]`).join(", ")});`,
      );
    }
    for (const q of range(4)) l.line(`let y${q} = ${bRow(`k4 * 4i + ${q}i`)};`);
    k.helpers.add("mac4");
    for (const r of range(R)) l.line(`c${r} = mac4(${fromLane(`x${Math.floor(r / CPU_SUBGROUP)}`, r % CPU_SUBGROUP)}, y0, y1, y2, y3, c${r});`);
    c.lines.push(...l.lines);
    c.line(`}`);
  }
  for (const kk of range(K - K4 * 4)) {
    // The last K % 4 steps, one at a time (scalar A values; A is an f32 view here).
    const step = K4 * 4 + kk;
    c.line(`{`);
    const l = c.child();
    for (const j of range(J)) l.line(`let x${j} = ${ab}[ar${j} + ${step}i];`);
    l.line(`let y = ${bRow(`${step}i`)};`);
    for (const r of range(R)) l.line(`c${r} = fma(vec4<f32>(${fromLane(`x${Math.floor(r / CPU_SUBGROUP)}`, r % CPU_SUBGROUP)}), y, c${r});`);
    c.lines.push(...l.lines);
    c.line(`}`);
  }
  tileStores(c, range(R).map((r) => `c${r}`), true, (e, value, t, q) => {
    e.line(`let row = row0 + ${t};`);
    e.line(`let col = col4 * 4i + ${q};`);
    e.line(`if (row >= ${M}i || col >= ${N}i) { continue; }`);
    storeRoot(k, e, plan.root, a, value, ["row", "col"]);
  });
  return [assembleSubgroupVariant(k, expected, { header: [...header, `${R} rows x ${CPU_SUBGROUP * 4} columns per subgroup`], body: c, workgroups: grid })];
}

// ---------------------------------------------------------------------------------------------
// Max pooling and its gather-form gradient.
//
// A window's maximum is PyTorch's (CPU and CUDA kernels alike): scanning the window in order,
// an element replaces the running maximum when `val > best || isnan(val)`. So the maximum is
// NaN when the window holds a NaN, the gradient goes to the window's last NaN, and otherwise
// to its first maximum (ties keep the earlier element). The first in-range element always
// seeds the scan, so a window of -Inf picks its first element, as PyTorch's initial index.

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
  s.line(`  let h = i * ${g.stride[0]}i - ${g.padding[0]}i + u;`);
  s.line(`  if (h < 0i || h >= ${H}i) { continue; }`);
  s.line(`  for (var v = 0i; v < ${g.kernel[1]}i; v++) {`);
  s.line(`    let w = j * ${g.stride[1]}i - ${g.padding[1]}i + v;`);
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
  s.line(`      let hh = i * ${SH}i - ${PH}i + u;`);
  s.line(`      if (hh < 0i || hh >= ${H}i) { continue; }`);
  s.line(`      for (var v = 0i; v < ${KW}i; v++) {`);
  s.line(`        let ww = j * ${SW}i - ${PW}i + v;`);
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

// ---------------------------------------------------------------------------------------------
// Bilinear resize adjoint, gather form with constant tables.

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

/** The dispatches of a kernel plan, with the nodes they compute recorded as provenance. */
export function emitKernel(plan: KernelPlan, ctx: TemplateContext): Stage[] {
  const computes = [
    `computes ${describe(plan.root)}`,
    ...(plan.siblings ?? []).map((t) => `computes ${describe(t)}`),
    ...(plan.anchor && plan.anchor !== plan.root ? [`fused anchor ${describe(plan.anchor)}`] : []),
  ];
  return chooseTemplate(plan, ctx).map((st) => ({ ...st, provenance: [...computes, ...st.provenance] }));
}

function chooseTemplate(plan: KernelPlan, ctx: TemplateContext): Stage[] {
  if (!plan.anchor) return pointwise(plan, ctx);
  const op = plan.anchor.node.op;
  switch (op) {
    case "sum":
    case "max":
      return reduce(plan, ctx);
    case "argmax":
      return argmax(plan, ctx);
    case "softmax":
    case "logSoftmax":
      return softmax(plan, ctx);
    case "softmaxCrossEntropy":
      return crossEntropyLoss(plan, ctx);
    case "conv2d":
      return conv2d(plan, ctx);
    case "conv2dInputGrad":
      return conv2dInputGrad(plan, ctx);
    case "conv2dWeightGrad":
      return conv2dWeightGrad(plan, ctx);
    case "matmul":
      return matmul(plan, ctx);
    case "maxPool2d":
      return maxPool2d(plan, ctx);
    case "maxPool2dGrad":
      return maxPool2dGrad(plan, ctx);
    case "resizeGrad":
      return resizeGrad(plan, ctx);
    default:
      throw new Error(`codegen: no template for anchor op ${op} (node #${plan.anchor.id}); canonicalisation should have removed it`);
  }
}

