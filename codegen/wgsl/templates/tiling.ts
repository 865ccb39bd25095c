// Register and subgroup tiles shared by the convolution and matmul templates: tile sizes, the
// store loop of a tile, and the CPU variants' lane broadcast and inner step.

import { type KernelBuilder, type Scope } from "../expr";
import { CPU_SUBGROUP } from "../kernel";
import { ceilDiv, range } from "./context";

/** Tile sizes of the conv templates: the register tile is TO x TP accumulators. */
export function convTile(outChannels: number, pixels: number): { to: number; tp: number } {
  return { to: Math.min(8, outChannels), tp: Math.min(4, pixels) };
}

/**
 * The store loop of a register tile. The accumulators are copied into an array and the
 * (possibly long) fused epilogue is emitted once, inside a loop over the tile, instead of
 * once per tile element: lavapipe compiles every shader with LLVM, and shader size is what
 * that costs. `vec4` tiles loop over their 4 components too. `body` gets the loop scope and
 * the accumulator expression; it declares the indices and guards the store.
 */
export function tileStores(s: Scope, names: readonly string[], vec4: boolean, body: (e: Scope, value: string, t: string, q: string) => void): void {
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

/**
 * `value` of lane `lane` (a constant below CPU_SUBGROUP) in every lane of a CPU variant's
 * subgroup. subgroupShuffle with a constant lane, not subgroupBroadcast: lavapipe lowers the
 * shuffle to one permute per component and the broadcast to a permute plus a masked move, which
 * measured 3-7% of a whole matmul or convolution (docs/benchmarks.md). Every lane is active where
 * the CPU variants call it, so the two agree.
 */
export function fromLane(value: string, lane: number): string {
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
export function cpuTileRows(rows: number, others: number): number {
  const r = ceilDiv(rows, CPU_TALL_ROWS) * others >= MIN_CPU_WORKGROUPS ? CPU_TALL_ROWS : CPU_ROWS;
  return Math.min(r, ceilDiv(rows, CPU_SUBGROUP) * CPU_SUBGROUP);
}

/**
 * The inner step of the forward and input-gradient CPU variants, for one tap of 4 channels:
 * the 4 weight vec4s of packed rows wr, wr + rowStride, ... (`wr` declared by the caller),
 * then each of the R accumulators a0.. takes its pixel's 4 channel values, broadcast from the
 * lane that loaded them (`${src}0`, `${src}1`, ..., R/8 per lane), as one mac4 chain.
 */
export function cpuTapStep(s: Scope, k: KernelBuilder, wc: string, rowStride: number, R: number, src: string): void {
  for (const q of range(4)) s.line(`let y${q} = ${wc}[wr + ${q * rowStride}i];`);
  k.helpers.add("mac4");
  for (const r of range(R)) s.line(`a${r} = mac4(${fromLane(`${src}${Math.floor(r / CPU_SUBGROUP)}`, r % CPU_SUBGROUP)}, y0, y1, y2, y3, a${r});`);
}
