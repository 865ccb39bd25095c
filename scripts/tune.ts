// npm run tune -- [--program NAME ...] [--module FILE.ts ...] [--force]
//
// Times the tile candidates of the programs' kernels on this machine's adapter once and caches
// the fastest per adapter and kernel use (cli/tune.ts; docs/tuning.md). Exit status: 0 done,
// 1 failed (device, a kernel that does not run), 2 bad request.

import * as E from "fp-ts/lib/Either.js";
import { TUNE_USAGE, parseTuneOptions, runTuneCli } from "../cli/tune";
import { exitCodeOf, renderTrainError } from "../train/errors";

async function main(argv: readonly string[]): Promise<number> {
  if (argv.includes("--help") || argv.includes("-h")) {
    console.log(TUNE_USAGE);
    return 0;
  }
  const o = parseTuneOptions(argv);
  if (E.isLeft(o)) {
    console.error(`${renderTrainError(o.left)}\n${TUNE_USAGE}`);
    return 2;
  }
  const r = await runTuneCli(o.right, (line) => console.error(line));
  if (E.isLeft(r)) {
    console.error(renderTrainError(r.left));
    return exitCodeOf(r.left);
  }
  const s = r.right;
  const chosen = Object.entries(s.chosen).map(([rows, n]) => `${n} x ${rows} rows`).join(", ") || "none";
  console.log(`${s.adapter}: ${s.uses} kernel use(s) with tile candidates, ${s.tuned} measured now (${s.seconds.toFixed(1)} s); chosen: ${chosen}`);
  console.log(`cache: ${s.cache}`);
  return 0;
}

// Dawn keeps the process alive after the work is done; leave explicitly.
process.exit(await main(process.argv.slice(2)));
