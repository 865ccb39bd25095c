// npm run parity [-- --only CASE[,CASE]] [--compile]
//
// The PyTorch parity suite (docs/parity.md): runs the generated parity programs on the WebGPU
// adapter (lavapipe on a CPU-only machine) against the fixtures of scripts/parity/fixtures/,
// prints one line per check and ends with `parity: N checks, F failed` (exit 1 when F > 0).
// `--only eval-pipeline` (never run by default) compares `npm run eval` with a PyTorch evaluation
// of four networks (scripts/parity/eval-pipeline.ts). --compile compiles the programs in process instead of loading generated/ (for a codegen
// change that is not yet regenerated). The fixtures come from `npm run parity:fixtures`.

import { fixtureCases, renderCheck, runCase } from "./parity/check";
import { EVAL_PIPELINE_CASE, runEvalPipelineCase } from "./parity/eval-pipeline";

// Cases run only when named with --only: eval-pipeline needs Python's output and takes minutes.
const OPT_IN = [EVAL_PIPELINE_CASE];

async function main(argv: readonly string[]): Promise<number> {
  const onlyAt = argv.indexOf("--only");
  const only = onlyAt >= 0 ? (argv[onlyAt + 1] ?? "").split(",") : undefined;
  const compile = argv.includes("--compile");
  const cases = fixtureCases();
  const unknown = (only ?? []).filter((c) => !cases.includes(c) && !OPT_IN.includes(c));
  if (unknown.length > 0) {
    console.error(`parity: no fixture ${unknown.join(", ")}; fixtures: ${cases.join(", ")}; with --only: ${OPT_IN.join(", ")}`);
    return 2;
  }
  const started = performance.now();
  let total = 0;
  let failed = 0;
  for (const name of only ?? cases) {
    try {
      const result = name === EVAL_PIPELINE_CASE ? await runEvalPipelineCase() : await runCase(name, { compile });
      for (const c of result.checks) {
        console.log(renderCheck(c));
        total++;
        if (!c.passed) failed++;
      }
      console.log(`parity: ${name}: ${result.checks.length} checks, module ${result.from}, ${result.seconds.toFixed(1)} s`);
    } catch (e) {
      // A case that cannot run is one failed check, and the others still run.
      console.log(`FAIL  ${name}: ${e instanceof Error ? e.message : String(e)}`);
      total++;
      failed++;
    }
  }
  console.log(`parity: total ${((performance.now() - started) / 1000).toFixed(1)} s`);
  console.log(`parity: ${total} checks, ${failed} failed`);
  return failed > 0 ? 1 : 0;
}

process.exitCode = await main(process.argv.slice(2));
// Dawn keeps the process alive; the checks are done.
process.exit();
