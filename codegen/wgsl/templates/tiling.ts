// Register and subgroup tiles shared by the convolution and matmul templates: tile sizes, the
// store loop of a tile, and the CPU variants' lane broadcast and inner step.

import { TILE_OVERRIDE } from "../../../format/module";
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
 * the accumulator expression; it declares the indices and guards the store. `count`: how many
 * of the accumulators to store (default all; a CPU variant's tile override).
 */
export function tileStores(
  s: Scope,
  names: readonly string[],
  vec4: boolean,
  body: (e: Scope, value: string, t: string, q: string) => void,
  count = `${names.length}i`,
): void {
  const type = vec4 ? "vec4<f32>" : "f32";
  s.line(`var tile = array<${type}, ${names.length}>(${names.join(", ")});`);
  s.line(`for (var t = 0i; t < ${count}; t++) {`);
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
 * bounds check and an insert per lane), so the taller the tile, the fewer loads per FMA: on an
 * Intel Xeon 64 rows measured 4-7% faster than 32 on the 1024^3 matmul and the 256->256 and
 * dilation-4 convolutions (16: a third slower than 32). Past 64 accumulators per lane (80 or 96
 * rows, or 48 rows by two vec4s of columns) LLVM stops unrolling lavapipe's per-lane load loops:
 * 10-40% slower. A tall tile leaves fewer workgroups, so small problems keep 32 rows: lavapipe
 * spreads workgroups over its threads, and MIN_CPU_WORKGROUPS keeps every thread of a many-core
 * host busy with several.
 *
 * What is right for one microarchitecture is not for another, so the row count is not baked into
 * the text: it is the override TILE_OVERRIDE (format/module.ts), the text is written for
 * CPU_MAX_ROWS rows with every block of 8 rows past the first guarded by `tile > 8j` (constant
 * after Dawn substitutes the override, so the backend drops the dead blocks and compiles what a
 * text written for that row count would give), and the use lists CPU_TILE_CANDIDATES for the
 * runtime's tuner (runtime/tune.ts). Each accumulator sums its k in the same order whatever the
 * row count, so every candidate gives the same bits.
 */
const CPU_TALL_ROWS = 64;
const CPU_ROWS = 32;
const MIN_CPU_WORKGROUPS = 64;
/** The most rows a CPU variant's text holds: the largest candidate. */
export const CPU_MAX_ROWS = 64;
/** Row counts the tuner may choose from (clamped to the problem, see cpuTile). */
export const CPU_TILE_CANDIDATES: readonly number[] = [16, 32, 64];

/** Rows rounded up to whole subgroups: no tile needs more. */
const wholeSubgroups = (rows: number) => ceilDiv(rows, CPU_SUBGROUP) * CPU_SUBGROUP;

/** Rows per subgroup for `rows` rows of output spread over `others` workgroups besides (the untuned default). */
export function cpuTileRows(rows: number, others: number): number {
  const r = ceilDiv(rows, CPU_TALL_ROWS) * others >= MIN_CPU_WORKGROUPS ? CPU_TALL_ROWS : CPU_ROWS;
  return Math.min(r, wholeSubgroups(rows));
}

/** A CPU variant's row tile: the default row count and the distinct candidates, ascending. */
export interface CpuTile {
  readonly rows: number;
  readonly candidates: readonly number[];
}

/**
 * The default and the candidates for `rows` rows by `others` workgroups besides. Left out: a
 * candidate whose grid along the rows would pass the 65535 workgroups of one dimension, and one
 * taller than the default that leaves fewer than MIN_CPU_WORKGROUPS (the tuner times a
 * CPU adapter's work, runtime/node-tune.ts, so every candidate must keep a many-core host's
 * threads busy).
 */
export function cpuTile(rows: number, others: number): CpuTile {
  const rowsDefault = cpuTileRows(rows, others);
  const fits = (r: number) => ceilDiv(rows, r) <= 65535 && (r <= rowsDefault || ceilDiv(rows, r) * others >= MIN_CPU_WORKGROUPS);
  const candidates = [...new Set(CPU_TILE_CANDIDATES.map((r) => Math.min(r, wholeSubgroups(rows))))].filter(fits).sort((a, b) => a - b);
  return { rows: rowsDefault, candidates };
}

/** The tile override as the kernel text names it (format/module.ts). */
export const TILE = TILE_OVERRIDE;

/**
 * Emits the CPU_MAX_ROWS / 8 blocks of 8 rows of a CPU variant: block 0 always, block j only
 * where the tile has more than 8j rows (TILE, a constant once the override is set). `block`
 * writes block j's lines into its scope.
 */
export function rowBlocks(s: Scope, block: (b: Scope, j: number) => void): void {
  for (const j of range(CPU_MAX_ROWS / CPU_SUBGROUP)) {
    s.line(j === 0 ? `{` : `if (${TILE} > ${j * CPU_SUBGROUP}) {`);
    const b = s.child();
    block(b, j);
    s.lines.push(...b.lines);
    s.line(`}`);
  }
}

/**
 * The inner step of the forward and input-gradient CPU variants, for one tap of 4 channels:
 * `load` declares `${src}j`, the lane values of each block j of 8 rows, then the 4 weight vec4s
 * of packed rows wr, wr + rowStride, ... (`wr` declared by the caller) are loaded, then per block
 * (rowBlocks) each accumulator a(8j).. takes its pixel's 4 channel values, broadcast from the
 * lane that loaded them, as one mac4 chain (mac8Step, 8 rows a call). Every load comes before the FMAs, those of blocks
 * past the tile too (dead code once TILE is set): loads between the blocks' FMAs measured 1.3-1.8x
 * slower on lavapipe.
 */
export function cpuTapStep(s: Scope, k: KernelBuilder, wc: string, rowStride: number, src: string, load: (b: Scope, j: number) => void): void {
  for (const j of range(CPU_MAX_ROWS / CPU_SUBGROUP)) load(s, j);
  for (const q of range(4)) s.line(`let y${q} = ${wc}[wr + ${q * rowStride}i];`);
  rowBlocks(s, (b, j) => b.line(mac8Step(k, `${src}${j}`, "a", j)));
}

/**
 * Declares the accumulators of a CPU variant's tile, `${prefix}j: Rows8` for each block j of 8
 * rows (HELPERS.mac8), zero; returns the CPU_MAX_ROWS row accumulators in row order.
 */
export function rowAccumulators(s: Scope, k: KernelBuilder, prefix: string): string[] {
  k.helpers.add("mac8");
  k.helpers.add("mac4");
  for (const j of range(CPU_MAX_ROWS / CPU_SUBGROUP)) s.line(`var ${prefix}${j}: Rows8;`);
  return range(CPU_MAX_ROWS).map((r) => `${prefix}${Math.floor(r / CPU_SUBGROUP)}.r${r % CPU_SUBGROUP}`);
}

/** Block j's step: its 8 rows take lane l's 4 values of `x` with the weights y0..y3 (HELPERS.mac8). */
export function mac8Step(k: KernelBuilder, x: string, prefix: string, j: number): string {
  k.helpers.add("mac8");
  k.helpers.add("mac4");
  return `${prefix}${j} = mac8(${x}, y0, y1, y2, y3, ${prefix}${j});`;
}
