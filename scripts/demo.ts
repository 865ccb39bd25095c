// npm run demo [-- --quick] [--seed N | --seeds 1,2,3] [--iterations N] [--out DIR] [--data DIR] [--eval-every N] [--network resnet|mobilenet]
//
// Source-only, multi-level adapted and target-trained (oracle) AdaptSegNet models on the
// synthetic domain-shift benchmark, trained with the cpu-demo preset and evaluated on its target
// val split (demo/demo.ts). Prints the per-class table with the three mIoUs and writes
// predictions.png (image | ground truth | source-only | adapted | oracle), curves.png and
// results.{md,json} to --out (default out/demo). --quick is the short end-to-end check CI runs.
// --seeds runs the whole demo once per seed (in <out>/seed-<n>) and prints the medians.
// --network mobilenet trains DeepLab-MobileNetV2 (examples/mobilenet/) instead: source-only and
// adapted (it has no oracle program), into out/demo-mobilenet by default.
// --write-docs replaces the results section of docs/demo.md with this run's figures
// (demo/docs.ts), so the numbers there are always produced, never typed.

import * as E from "fp-ts/lib/Either.js";
import { readFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { DEFAULT_ITERATIONS, DEMO_SYNTH, QUICK_ITERATIONS, QUICK_SYNTH, runDemo } from "../demo/demo";
import { joinNegativeValues, type NumberRule, parseDecimal } from "../cli/numeric-options";
import { exitCodeOf, renderTrainError } from "../train/errors";
import { renderCheckpointError } from "../checkpoint/errors";
import { writeFileAtomic } from "../checkpoint/atomic-write";
import { cpuModel, replaceResults, resultsMarkdown, type SeedRun } from "../demo/docs";

const USAGE = "usage: npm run demo -- [--quick] [--seed N | --seeds N,N,...] [--iterations N] [--eval-every N] [--out DIR] [--data DIR] [--shift S] [--network resnet|mobilenet] [--write-docs]";

/** A decimal value of --name (cli/numeric-options.ts), or exit 2 naming the option. */
function decimal(v: string | undefined, name: string, dflt: number, rule: NumberRule): number {
  const n = parseDecimal(name, v, rule);
  if (E.isLeft(n)) {
    console.error(`${n.left}\n${USAGE}`);
    process.exit(2);
  }
  return n.right ?? dflt;
}

const int = (v: string | undefined, name: string, dflt: number): number => decimal(v, name, dflt, { integer: true, min: 0, what: "a non-negative integer" });

async function main(argv: readonly string[]): Promise<number> {
  let values;
  try {
    values = parseArgs({
      args: joinNegativeValues(argv, new Set(["seed", "seeds", "iterations", "eval-every", "shift"])),
      options: {
        quick: { type: "boolean", default: false },
        seed: { type: "string" },
        seeds: { type: "string" },
        iterations: { type: "string" },
        "eval-every": { type: "string" },
        out: { type: "string" },
        data: { type: "string" },
        shift: { type: "string" },
        "write-docs": { type: "boolean", default: false },
        network: { type: "string", default: "resnet" },
        help: { type: "boolean", short: "h" },
      },
    }).values;
  } catch (e) {
    console.error(`${e instanceof Error ? e.message : String(e)}\n${USAGE}`);
    return 2;
  }
  if (values.help === true) {
    console.log(USAGE);
    return 0;
  }
  const quick = values.quick === true;
  const base = quick ? QUICK_SYNTH : DEMO_SYNTH;
  const shift = decimal(values.shift, "shift", base.shift, { integer: false, min: 0, max: 1, what: "a number in [0, 1]" });
  const iterations = int(values.iterations, "iterations", quick ? QUICK_ITERATIONS : DEFAULT_ITERATIONS);
  const seeds = values.seeds === undefined ? [int(values.seed, "seed", 1)] : values.seeds.split(",").map((x) => int(x.trim(), "seeds", 1));
  const out = values.out ?? join("out", `${quick ? "demo-quick" : "demo"}${values.network === "mobilenet" ? "-mobilenet" : ""}`);
  const writeDocs = values["write-docs"] === true;
  const network = values.network;
  if (network !== "resnet" && network !== "mobilenet") {
    console.error(`--network ${String(network)}: resnet or mobilenet\n${USAGE}`);
    return 2;
  }
  if (writeDocs && network !== "resnet") {
    console.error(`--write-docs records the ResNet demo of docs/demo.md; it does not go with --network ${network}\n${USAGE}`);
    return 2;
  }
  if (writeDocs && quick) {
    console.error(`--write-docs records full runs; it does not go with --quick\n${USAGE}`);
    return 2;
  }
  const results: Record<string, number[]> = {};
  const runs: SeedRun[] = [];
  let adapter = "";
  const began = performance.now();
  for (const seed of seeds) {
    const result = await runDemo({
      network,
      out: seeds.length > 1 ? join(out, `seed-${seed}`) : out,
      // The quick data set is smaller: it lives in its own folder so that the full one is not rewritten.
      dataDir: values.data ?? join("data", quick ? "synth-quick" : "synth"),
      seed,
      iterations,
      evalEvery: int(values["eval-every"], "eval-every", quick ? 0 : Math.max(1, Math.round(iterations / 4))),
      panels: quick ? 2 : 6,
      synth: { ...base, shift },
      quick,
    });
    if (E.isLeft(result)) {
      console.error(renderTrainError(result.left));
      return exitCodeOf(result.left);
    }
    for (const s of result.right.summaries) (results[s.variant] ??= []).push(s.summary.miou);
    runs.push({ seed, seconds: result.right.seconds, summaries: result.right.summaries });
    adapter = result.right.adapter;
  }
  if (seeds.length > 1) {
    const median = (xs: readonly number[]) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)]!;
    console.log(`\nseeds ${seeds.join(", ")}: mIoU per seed and median (${((performance.now() - began) / 60000).toFixed(1)} min)`);
    for (const [variant, xs] of Object.entries(results)) console.log(`  ${variant.padEnd(12)} ${xs.map((x) => x.toFixed(2)).join("  ")}   median ${median(xs).toFixed(2)}`);
    const so = results["source-only"] ?? [];
    const ad = results["multi-level"] ?? [];
    console.log(`  adapted - source-only per seed: ${ad.map((x, i) => (x - so[i]!).toFixed(2)).join("  ")}   median ${median(ad.map((x, i) => x - so[i]!)).toFixed(2)}`);
  }
  if (writeDocs) {
    const command = `npm run demo -- ${seeds.length > 1 ? `--seeds ${seeds.join(",")}` : `--seed ${seeds[0]}`}${values.iterations !== undefined ? ` --iterations ${iterations}` : ""} --write-docs`;
    const section = resultsMarkdown(runs, { command, iterations, machine: `${cpuModel()} (${availableParallelism()} CPUs)`, adapter });
    const updated = replaceResults(readFileSync(DEMO_DOC, "utf8"), section);
    if (E.isLeft(updated)) {
      console.error(`${DEMO_DOC}: ${updated.left}`);
      return 1;
    }
    const w = await writeFileAtomic(DEMO_DOC, [new TextEncoder().encode(updated.right)])();
    if (E.isLeft(w)) {
      console.error(renderCheckpointError(w.left));
      return 1;
    }
    console.log(`results written to ${DEMO_DOC}`);
  }
  return 0;
}

const DEMO_DOC = join("docs", "demo.md");

process.exit(await main(process.argv.slice(2)));
