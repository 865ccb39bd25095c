// npm run bench:loader -- [--images N] [--draws N] [--workers LIST] [--depth N]
//
// Throughput of the training input pipeline at the official GTA5 preset: 1914x1052 PNG images
// and palette labels on disk (written by the synthetic generator into a temporary GTA5 tree),
// decoded, bicubic-resized to 1280x720 with NEAREST labels, turned into the CHW float32 input, and
// handed out in order through the bounded prefetch queue. Reports images/s per worker count and
// how busy the main thread was meanwhile (the time it could not spend driving the device).

import * as E from "fp-ts/lib/Either.js";
import { mkdtemp, rm } from "node:fs/promises";
import { availableParallelism, tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { parseArgs } from "node:util";
import { LABEL_ID_PALETTE, PROTOCOLS } from "../datasets/classes";
import { describeDataError } from "../datasets/errors";
import { writeBytes, writePaletteLabelPng } from "../datasets/image";
import { listDataset } from "../datasets/layouts";
import { encodePng } from "../datasets/png";
import { createPrefetchLoader } from "../datasets/prefetch";
import { PRESET_SIZES } from "../datasets/preprocess";
import { repeatedShuffle } from "../datasets/sampler";
import { GAME } from "../datasets/synth/domains";
import { synthImage } from "../datasets/synth/generate";

const { values } = parseArgs({
  options: {
    images: { type: "string", default: "12" },
    draws: { type: "string", default: "48" },
    workers: { type: "string", default: "0,1,2,3" },
    depth: { type: "string", default: "4" },
  },
});
const nImages = Number(values.images);
const draws = Number(values.draws);
const depth = Number(values.depth);
const workerCounts = values.workers.split(",").map(Number);

const root = await mkdtemp(join(tmpdir(), "bench-loader-"));
try {
  const t0 = performance.now();
  for (let i = 0; i < nImages; i++) {
    const size = { width: 1914, height: 1052 };
    const im = synthImage(GAME, size, i);
    const name = `${String(i + 1).padStart(5, "0")}.png`;
    const w1 = await writeBytes(join(root, "images", name), encodePng({ ...size, colorType: "rgb", bitDepth: 8, samples: im.rgb }))();
    const w2 = await writePaletteLabelPng(join(root, "labels", name), { ...size, data: im.label }, LABEL_ID_PALETTE)();
    if (E.isLeft(w1) || E.isLeft(w2)) throw new Error("cannot write the benchmark images");
  }
  console.log(`wrote ${nImages} GTA5-sized images (1914x1052 PNG + palette label) in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  const refs = await listDataset({ kind: "gta5", root })();
  if (E.isLeft(refs)) throw new Error(describeDataError(refs.left));
  const order = repeatedShuffle(refs.right.length, draws, 1234);
  console.log(`machine: ${availableParallelism()} CPUs; ${draws} draws to ${PRESET_SIZES.gta5.width}x${PRESET_SIZES.gta5.height}, depth ${depth}`);
  for (const workers of workerCounts) {
    // one short warm-up pass (worker start-up, JIT), then the timed pass
    for (const [label, count] of [["warm-up", Math.min(4, draws)], ["timed", draws]] as const) {
      const loader = createPrefetchLoader(
        { refs: refs.right, order, start: 0, count, options: { size: PRESET_SIZES.gta5, labels: "input-size", protocol: PROTOCOLS.cityscapes19 } },
        { workers, depth },
      );
      const start = performance.now();
      const elu0 = performance.eventLoopUtilization();
      let n = 0;
      for await (const d of loader) {
        if (E.isLeft(d.sample)) throw new Error(describeDataError(d.sample.left));
        n++;
      }
      const secs = (performance.now() - start) / 1000;
      // How busy the main thread was: what is left of it for the training loop.
      const busy = performance.eventLoopUtilization(elu0).utilization;
      if (label === "timed") {
        console.log(`workers ${workers}: ${(n / secs).toFixed(2)} images/s (${n} in ${secs.toFixed(2)} s), main thread busy ${(100 * busy).toFixed(0)}%`);
      }
    }
  }
} finally {
  await rm(root, { recursive: true, force: true });
}
