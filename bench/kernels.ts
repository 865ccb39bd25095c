// The kernel suite: each convolution pass of KERNEL_CASES and the matmul, as a one-kernel DSL
// program of ours, as TF.js WebGPU on the same device, and as PyTorch, interleaved.

import * as d from "../dsl/index";
import type { F32, Program, Tensor } from "../dsl/index";
import type { AcquiredDevice } from "../runtime/device";
import { type ConvCase, type ConvPass, type ConvShape, KERNEL_CASES, type KernelCase, PASS_LABEL, convFlops } from "./cases";
import { type Contender, interleave } from "./measure";
import { CPU_TILE_CANDIDATES } from "../codegen/wgsl/templates/tiling";
import { OursContender, randomData } from "./ours";
import { type CaseReport, byTemplate } from "./results";
import { type TfjsSide, tfjsConv, tfjsMatmul } from "./tfjs";
import { type TorchPeer, torchContender } from "./torch";

/** One timed run of a kernel lasts about this long (repetitions are added to reach it). */
const TARGET_MS = 100;

/**
 * Cases whose tuned tiles are measured against each fixed candidate in the same interleaved run
 * (issue 19: tuned within 10% of the best candidate), on adapters whose variants have candidates.
 */
const TILE_COMPARED = ["matmul 1024^3", "conv3x3 256>256 @64x64"];

/** The impl name of our contender with every tiled use at `rows` rows. */
export const tileImpl = (rows: number) => `tile ${rows} rows`;

/** The pass as a program: y = conv(x, w); dx and dw are the VJP with a given cotangent dy. */
export function convProgram(s: ConvShape, pass: ConvPass): Program {
  const x = d.input("x", s.x, "f32") as F32<4>;
  const w = d.input("w", s.w, "f32") as F32<4>;
  const y = d.conv2d(x, w, undefined, { stride: s.stride, padding: s.padding, dilation: s.dilation });
  const dy = d.input("dy", y.shape, "f32") as F32<4>;
  const outputs: Record<string, Tensor> =
    pass === "fwd"
      ? { y }
      : pass === "dx"
        ? { dx: d.vjp([y], [dy], [x])[0]! }
        : pass === "dw"
          ? { dw: d.vjp([y], [dy], [w])[0]! }
          : (() => {
              const [dx, dw] = d.vjp([y], [dy], [x, w]);
              return { y, dx: dx!, dw: dw! };
            })();
  return d.defineProgram({ name: "kernel", params: [], phases: [{ name: "k", outputs, updates: {} }] });
}

export function matmulProgram(m: number, k: number, n: number): Program {
  const a = d.input("a", [m, k], "f32") as F32<2>;
  const b = d.input("b", [k, n], "f32") as F32<2>;
  return d.defineProgram({ name: "kernel", params: [], phases: [{ name: "k", outputs: { c: d.matmul(a, b) }, updates: {} }] });
}

/** Inputs in [-1, 1]; weights scaled down as a trained network's are. */
const SCALE: Readonly<Record<string, number>> = { w: 0.05 };

export interface KernelContext {
  readonly acquired: AcquiredDevice;
  readonly tfjs: TfjsSide | undefined;
  readonly torch: TorchPeer | undefined;
  readonly runs: number;
  readonly selected: (name: string) => boolean;
  readonly log: (line: string) => void;
}

interface Planned {
  readonly name: string;
  readonly flops: number;
  readonly ours: OursContender;
  /** Ours with fixed tiles (TILE_COMPARED cases only). */
  readonly tiles: readonly OursContender[];
  readonly others: readonly Contender[];
}

function plan(ctx: KernelContext, c: KernelCase): Planned[] {
  const contender = (build: () => Program, rows?: number) =>
    new OursContender(
      ctx.acquired,
      build,
      (compiled) =>
        new Map(
          compiled.module.tensors
            .filter((t) => t.role === "input")
            .map((t, i) => [t.name, randomData(t.bytes / 4, i + 1, SCALE[t.name] ?? 1)] as const),
        ),
      rows === undefined
        ? { targetMs: TARGET_MS, log: ctx.log }
        : { targetMs: TARGET_MS, log: ctx.log, impl: tileImpl(rows), tiles: { kind: "fixed", rows } },
    );
  const compared = ctx.acquired.adapterClass === "cpu" && TILE_COMPARED.includes(c.label);
  const ours = (build: () => Program) => ({ ours: contender(build), tiles: compared ? CPU_TILE_CANDIDATES.map((r) => contender(build, r)) : [] });
  if (c.kind === "matmul") {
    return [
      {
        name: c.label,
        flops: 2 * c.m * c.k * c.n,
        ...ours(() => matmulProgram(c.m, c.k, c.n)),
        others: [
          ...(ctx.tfjs ? [tfjsMatmul(ctx.tfjs, c.m, c.k, c.n, TARGET_MS)] : []),
          ...(ctx.torch ? [torchContender(ctx.torch, { kind: "matmul", m: c.m, k: c.k, n: c.n, target_ms: TARGET_MS })] : []),
        ],
      },
    ];
  }
  return c.passes.map((pass) => convPlan(ctx, c, pass, ours));
}

function convPlan(ctx: KernelContext, c: ConvCase, pass: ConvPass, ours: (b: () => Program) => Pick<Planned, "ours" | "tiles">): Planned {
  const s = c.shape;
  return {
    name: `${c.label} ${PASS_LABEL[pass]}`,
    flops: convFlops(s, pass),
    ...ours(() => convProgram(s, pass)),
    others: [
      ...(ctx.tfjs ? [tfjsConv(ctx.tfjs, s, pass, TARGET_MS)] : []),
      ...(ctx.torch
        ? [torchContender(ctx.torch, { kind: "conv", x: s.x, w: s.w, stride: s.stride, padding: s.padding, dilation: s.dilation, pass, target_ms: TARGET_MS })]
        : []),
    ],
  };
}

export async function runKernelSuite(ctx: KernelContext): Promise<CaseReport[]> {
  const reports: CaseReport[] = [];
  const planned = KERNEL_CASES.flatMap((c) => plan(ctx, c)).filter((p) => ctx.selected(p.name));
  for (const [i, p] of planned.entries()) {
    const timings = await interleave([p.ours, ...p.tiles, ...p.others], ctx.runs);
    const profile = p.ours.profiled;
    reports.push({
      suite: "kernels",
      name: p.name,
      flops: p.flops,
      timings,
      ours: {
        compileMs: p.ours.compileMs,
        instantiateMs: p.ours.instantiateMs,
        firstStepMs: p.ours.firstStepMs,
        dispatches: p.ours.compiled?.kernels.length ?? 0,
        gpuMs: profile?.reduce((s, k) => s + k.ms, 0),
        templates: profile && byTemplate(profile),
        tiles: p.ours.tiles,
      },
    });
    const brief = timings.map((t) => `${t.impl} ${t.status === "ok" ? `${t.ms.toFixed(2)} ms` : t.status}`).join(", ");
    ctx.log(`[kernels ${i + 1}/${planned.length}] ${p.name}: ${brief}`);
  }
  return reports;
}
