// Matrix product with a TM x TN register tile.

import { type Tensor } from "../../../dsl/index";
import { type KernelPlan } from "../../fusion";
import { type Binding } from "../expr";
import { type Alternative, type Stage, CPU_SUBGROUP, assemble, assembleSubgroupVariant, sig, storeRoot } from "../kernel";
import { type TemplateContext, bodyScope, builder, ceilDiv, epilogueNote, range } from "./context";
import { CPU_MAX_ROWS, TILE, cpuTile, fromLane, mac8Step, rowAccumulators, rowBlocks, tileStores } from "./tiling";

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
 * R is the tile override (cpuTile, rowBlocks): one text for every candidate.
 * Rows and columns past the edge are clamped on load and skipped on store; a K that is not a
 * multiple of 4 ends with single steps.
 */
function matmulCpuVariant(plan: KernelPlan, ctx: TemplateContext, expected: readonly Binding[], header: readonly string[]): Alternative[] {
  const a = plan.anchor!;
  const [A, B] = a.node.inputs as [Tensor, Tensor];
  const [M, K] = A.shape as [number, number];
  const N = B.shape[1]!;
  const N4 = ceilDiv(N, 4);
  const tile = cpuTile(M, ceilDiv(N4, CPU_SUBGROUP));
  const R = tile.rows;
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
  const J = CPU_MAX_ROWS / CPU_SUBGROUP;
  c.line(`let col4 = i32(wid.x) * ${CPU_SUBGROUP}i + lane;`);
  c.line(`let row0 = i32(wid.y) * ${TILE};`);
  // Row offsets of every block (the blocks past the tile are dead code once TILE is set).
  for (const j of range(J)) c.line(`let ar${j} = min(row0 + ${j * CPU_SUBGROUP}i + lane, ${M - 1}i) * ${K}i;`);
  const bRow = (kk: string) =>
    bVec
      ? `${bb}[(${kk}) * ${N4}i + min(col4, ${N4 - 1}i)]`
      : `vec4<f32>(${range(4).map((q) => `${bb}[(${kk}) * ${N}i + min(col4 * 4i + ${q}i, ${N - 1}i)]`).join(", ")})`;
  const acc = rowAccumulators(c, k, "c");
  if (K4 > 0) {
    c.line(`for (var k4 = 0i; k4 < ${K4}i; k4++) {`);
    const l = c.child();
    // Every block's loads first (those of blocks past the tile are dead code once TILE is set):
    // loads between the blocks' FMAs measured up to 1.8x slower on lavapipe.
    for (const j of range(J)) {
      l.line(
        aVec
          ? `let x${j} = ${ab}[ar${j} / 4i + k4];`
          : `let x${j} = vec4<f32>(${range(4).map((q) => `${ab}[ar${j} + k4 * 4i + ${q}i]`).join(", ")});`,
      );
    }
    for (const q of range(4)) l.line(`let y${q} = ${bRow(`k4 * 4i + ${q}i`)};`);
    rowBlocks(l, (b, j) => b.line(mac8Step(k, `x${j}`, "c", j)));
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
    rowBlocks(l, (b, j) => {
      for (const m of range(CPU_SUBGROUP)) {
        const r = j * CPU_SUBGROUP + m;
        b.line(`${acc[r]} = fma(vec4<f32>(${fromLane(`x${j}`, m)}), y, ${acc[r]});`);
      }
    });
    c.lines.push(...l.lines);
    c.line(`}`);
  }
  tileStores(
    c,
    acc,
    true,
    (e, value, t, q) => {
      e.line(`let row = row0 + ${t};`);
      e.line(`let col = col4 * 4i + ${q};`);
      e.line(`if (row >= ${M}i || col >= ${N}i) { continue; }`);
      storeRoot(k, e, plan.root, a, value, ["row", "col"]);
    },
    TILE,
  );
  return [
    assembleSubgroupVariant(k, expected, {
      header: [...header, `${R} rows x ${CPU_SUBGROUP * 4} columns per subgroup`],
      body: c,
      workgroups: grid,
      tile: { ...tile, axis: 1, extent: M },
    }),
  ];
}
