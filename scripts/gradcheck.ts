// `npm run gradcheck`: checks every VJP (each op's record in dsl/ops/) against central finite differences
// (gradcheck/harness.ts has the method and the tolerance) and prints one row per op.
//
//   npm run gradcheck -- [--seed N] [--runs N] [--only NAME]
//
// The last line is `gradcheck: N ops, M cases, F failed`, where F counts the rows with a
// failing case plus the differentiable ops that have no row; the exit code is 1 when F > 0.
// A failing row prints its case (shapes, attributes, value seed); rerunning with the same
// --seed (and --only) replays it exactly.

import { parseArgs } from "node:util";
import { OP_CHECKS, type RowResult, runGradcheck } from "../gradcheck/index";

/** Fixed so CI is deterministic; any seed is a valid run. */
const DEFAULT_SEED = 20180618;
/** Runs per row: enough to vary shapes and attributes; the whole table takes a few seconds. */
const DEFAULT_RUNS = 100;

function formatRow(r: RowResult): string {
  const status = r.failure === undefined ? "ok  " : "FAIL";
  const worst = r.failure === undefined ? r.worst.toFixed(3) : "-";
  return `${status} ${r.name.padEnd(34)} ${String(r.cases).padStart(5)} ${String(r.elements).padStart(8)} ${worst.padStart(7)} ${r.ms.toFixed(0).padStart(7)}`;
}

function main(): number {
  const { values } = parseArgs({
    options: { seed: { type: "string" }, runs: { type: "string" }, only: { type: "string" } },
  });
  const seed = values.seed === undefined ? DEFAULT_SEED : Number(values.seed);
  const numRuns = values.runs === undefined ? DEFAULT_RUNS : Number(values.runs);
  if (!Number.isInteger(seed) || !Number.isInteger(numRuns) || numRuns < 1) {
    console.error("usage: gradcheck [--seed INT] [--runs POSITIVE_INT] [--only NAME]");
    return 2;
  }
  const checks = values.only === undefined ? OP_CHECKS : OP_CHECKS.filter((c) => c.name === values.only || c.op === values.only);
  console.log(`gradcheck: seed ${seed}, ${numRuns} runs per op, tolerance |a - n| <= 1e-6 + 1e-4 |n|, h = 1e-6 (float64)`);
  console.log(`     ${"op".padEnd(34)} ${"cases".padStart(5)} ${"elems".padStart(8)} ${"worst".padStart(7)} ${"ms".padStart(7)}`);
  const started = performance.now();
  const report = runGradcheck(checks, { seed, numRuns }, (row) => {
    console.log(formatRow(row));
    if (row.failure !== undefined) console.log(`       ${row.failure}`);
  });
  // With --only the coverage check would flag every other op; it applies to full runs.
  const uncovered = values.only === undefined ? report.uncovered : [];
  for (const name of uncovered) console.log(`FAIL ${name.padEnd(34)} no gradcheck case covers this differentiable op`);
  const failed = report.failed - report.uncovered.length + uncovered.length;
  console.log(`(worst = max |a - n| / (1e-6 + 1e-4 |n|) over all elements; ${((performance.now() - started) / 1000).toFixed(1)} s)`);
  console.log(`gradcheck: ${report.rows.length} ops, ${report.cases} cases, ${failed} failed`);
  return failed > 0 ? 1 : 0;
}

process.exitCode = main();
