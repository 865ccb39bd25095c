// Operand repacking passes of the convolution templates: weights as vec4s of output channels,
// activations as vec4s of channels.

import { type Tensor } from "../../../dsl/index";
import { type BufferRef } from "../expr";
import { type Stage, assemble, bindOutput, sig } from "../kernel";
import { type TemplateContext, bodyScope, builder, ceilDiv, range } from "./context";

/**
 * Weights repacked for the convolution templates: packed[k][o] with o padded to a multiple of 4,
 * so a vec4 load reads 4 output channels of one tap. k runs over (c, u, v) for the forward
 * pass (packed[k][o] = w[o][k]) and over (o, u, v) for the input-gradient (the transpose).
 * One small pass per convolution; weights are tiny next to activations.
 */
export function packWeights(ctx: TemplateContext, w: Tensor, transpose: boolean): { stage: Stage; ref: BufferRef; cols4: number } {
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
export function packChannels(ctx: TemplateContext, x: Tensor, share = false): { stage: Stage; ref: BufferRef } {
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
 * An activation operand of a convolution template, read as vec4s of 4 channels: either
 * channel-packed by a pass before the kernel (one vec4 load per read), or in place (4 loads at a
 * stride of H*W per read, and no pass). Which one is `packingPays`'s choice.
 */
export interface ChannelOperand {
  /** The packing pass when packed; none in place. */
  readonly stages: readonly Stage[];
  /** What the kernels bind: the packing, or the tensor itself. */
  readonly ref: BufferRef;
  /** The element type the CPU variants bind it as. */
  readonly vec4Elem: "vec4<f32>" | "f32";
  /** WGSL vec4 of channels 4*c4 .. 4*c4+3 (zero past C) at image n and pixel offset hw. */
  vec4(binding: string, n: string, c4: string, hw: string): string;
  /** WGSL value of channel c at image n and pixel offset hw, through an f32 binding. */
  scalar(binding: string, n: string, c: string, hw: string): string;
}

/**
 * Lane-loads one dispatch costs on lavapipe: about 38 us per dispatch in a long submit
 * (../shared/docs/environment.md) at 2 cycles per lane-load (16 cycles per 8-lane load) on two
 * 4 GHz cores.
 */
const DISPATCH_LANE_LOADS = 160_000;

/**
 * What one read of a vec4 in place costs, in contiguous lane-loads: 4 loads at a stride of H*W,
 * each a gather across the 8 lanes (their pixels are contiguous, their channels are not), about
 * 4 contiguous loads each. Measured on the tiny step (bench/cases.ts): pricing a read in place
 * at 4 loads left large operands in place and made the step 8% slower than packing them all.
 */
const IN_PLACE_READ_LOADS = 16;

/**
 * Whether packing an operand of `vec4s` vec4s that the kernel reads `reads` times each pays:
 * in place every read costs IN_PLACE_READ_LOADS - 1 loads more; the pass costs a dispatch plus
 * a read of 4 values and a write per vec4. Only small operands that are read few times (1x1
 * convolutions and strided ones over the CPU demo's small activations) stay in place; the
 * paper's 321x321 and 1280x720 activations are packed. Either way each output sums the same
 * products in the same order: the choice never changes a result.
 */
export function packingPays(vec4s: number, reads: number): boolean {
  return (IN_PLACE_READ_LOADS - 1) * vec4s * reads > DISPATCH_LANE_LOADS + 5 * vec4s;
}

/** `x` channel-packed (packChannels) or read in place, by `packingPays(x's vec4s, reads)`. */
export function channelOperand(ctx: TemplateContext, x: Tensor, reads: number, share = false): ChannelOperand {
  const [N, C, H, W] = x.shape as [number, number, number, number];
  const C4 = ceilDiv(C, 4);
  const HW = H * W;
  if (packingPays(N * C4 * HW, reads)) {
    const { stage, ref } = packChannels(ctx, x, share);
    return {
      stages: [stage],
      ref,
      vec4Elem: "vec4<f32>",
      // element ((n*C4 + c4)*H*W + hw) of vec4s; f32 element ((n*C4 + c/4)*H*W + hw)*4 + c%4
      vec4: (b, n, c4, hw) => `${b}[(${n} * ${C4}i + ${c4}) * ${HW}i + ${hw}]`,
      scalar: (b, n, c, hw) => `${b}[((${n} * ${C4}i + (${c} >> 2u)) * ${HW}i + ${hw}) * 4i + (${c} & 3i)]`,
    };
  }
  // In place: channel q of the vec4 is element (n*C + 4*c4 + q)*H*W + hw; lanes past C read a
  // clamped channel and are zeroed, as packChannels zeroes them.
  const lane = (b: string, n: string, c4: string, hw: string, q: number) =>
    C % 4 === 0 || q === 0
      ? `${b}[(${n} * ${C}i + ${c4} * 4i + ${q}i) * ${HW}i + ${hw}]`
      : `select(0.0f, ${b}[(${n} * ${C}i + min(${c4} * 4i + ${q}i, ${C - 1}i)) * ${HW}i + ${hw}], ${c4} * 4i + ${q}i < ${C}i)`;
  return {
    stages: [],
    ref: { kind: "tensor", tensor: x },
    vec4Elem: "f32",
    vec4: (b, n, c4, hw) => `vec4<f32>(${range(4).map((q) => lane(b, n, c4, hw, q)).join(", ")})`,
    scalar: (b, n, c, hw) => `${b}[(${n} * ${C}i + ${c}) * ${HW}i + ${hw}]`,
  };
}
