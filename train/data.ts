// The data a run reads: which datasets each program input comes from, a check that every root
// exists and holds images before any device work starts, and the ordered sample streams.
//
// Streams go through datasets/'s prefetch queue. With worker threads (--num-workers > 0),
// decoding happens off the main thread (the official loader's NUM_WORKERS); with none, samples
// are decoded on the main thread and, when no augmentation is drawn, kept in memory after their
// first use: a small benchmark (the synthetic demo: 200 images of 128x64) is then decoded once
// and the 2-core machine's cores go to the GPU kernels instead of to PNG decoding.

import * as E from "fp-ts/lib/Either.js";
import { pipe } from "fp-ts/lib/function.js";
import * as TE from "fp-ts/lib/TaskEither.js";
import { existsSync, statSync } from "node:fs";
import type { ClassTable } from "../datasets/class-table.js";
import { describeDataError, type DataError } from "../datasets/errors.js";
import { type DatasetSpec, listDataset, type SampleRef } from "../datasets/layouts.js";
import { createPrefetchLoader, createPrefetchQueue, type LoadRequest, type PrefetchLoader } from "../datasets/prefetch.js";
import { type AugmentPolicy, type LabelMode, loadSample, type Sample } from "../datasets/preprocess.js";
import type { SampleOrder } from "../datasets/sampler.js";
import { trainError, type TrainError } from "./errors.js";

/** What a user calls a dataset in messages, and the option that sets its root. */
export interface NamedDataset {
  readonly role: string;
  readonly option: string;
  readonly spec: DatasetSpec;
}

function rootOf(spec: DatasetSpec): string {
  return spec.root;
}

/**
 * The dataset's sample list, or Left naming the path when the root is missing, is not a
 * folder, or holds no images. Called for every dataset before training starts.
 */
export function openDataset(d: NamedDataset): TE.TaskEither<TrainError, SampleRef[]> {
  const root = rootOf(d.spec);
  if (!existsSync(root)) {
    return TE.left(trainError("data", `the ${d.role} data root ${root} does not exist (set it with ${d.option}; \`npm run data:synth\` writes a synthetic one)`));
  }
  if (!statSync(root).isDirectory()) return TE.left(trainError("data", `the ${d.role} data root ${root} is not a folder (${d.option})`));
  return pipe(
    listDataset(d.spec),
    TE.mapLeft((e: DataError) => trainError("data", `the ${d.role} data root ${root} holds no usable ${d.spec.kind} images: ${describeDataError(e)} (${d.option})`)),
    TE.chainEitherK((refs) => {
      const missing = firstMissing(refs);
      if (missing === undefined) return E.right(refs);
      const list = "listFile" in d.spec && d.spec.listFile !== undefined ? `the list file ${d.spec.listFile}` : `the ${d.spec.kind} layout`;
      return E.left(trainError("data", `the ${d.role} dataset has no file ${missing}, which ${list} names (${d.option})`));
    }),
  );
}

/**
 * The first image or label a dataset names that does not exist. Checked for every sample before
 * training (about a millisecond per thousand files), so a bad list file fails now, not at
 * whichever iteration first draws the missing sample.
 */
function firstMissing(refs: readonly SampleRef[]): string | undefined {
  for (const r of refs) {
    if (!existsSync(r.imagePath)) return r.imagePath;
    if (r.labelPath !== undefined && !existsSync(r.labelPath)) return r.labelPath;
  }
  return undefined;
}

export interface StreamOptions {
  readonly refs: readonly SampleRef[];
  readonly order: SampleOrder;
  readonly start: number;
  readonly count: number;
  readonly size: { readonly width: number; readonly height: number };
  readonly labels: LabelMode;
  readonly protocol: ClassTable;
  readonly workers: number;
  readonly depth: number;
  readonly augment?: { readonly policy: AugmentPolicy; readonly seed: number };
  /** The cache to load through when decoding on the main thread (kept across streams, e.g. evaluations). */
  readonly cache?: SampleLoader;
}

export type SampleLoader = (req: LoadRequest) => Promise<E.Either<DataError, Sample>>;

/**
 * Loads samples on the main thread, each file once: for small datasets without augmentation.
 * One cache serves one set of load options (a size and a label mode).
 */
export function cachedLoader(): SampleLoader {
  const cache = new Map<string, Promise<E.Either<DataError, Sample>>>();
  return (req) => {
    const key = req.ref.imagePath;
    let hit = cache.get(key);
    if (hit === undefined) {
      hit = loadSample(req.ref, req.options)();
      cache.set(key, hit);
    }
    return hit;
  };
}

/** Draws order[start], order[start+1], ... of a dataset, prefetched `depth` ahead. */
export function sampleStream(o: StreamOptions): PrefetchLoader {
  const plan = {
    refs: o.refs,
    order: o.order,
    start: o.start,
    count: o.count,
    options: { size: o.size, labels: o.labels, protocol: o.protocol },
    ...(o.augment === undefined ? {} : { augment: o.augment }),
  };
  if (o.workers > 0 || o.augment !== undefined) return createPrefetchLoader(plan, { workers: o.workers, depth: o.depth });
  return createPrefetchQueue(plan, o.depth, o.cache ?? cachedLoader());
}

/** The next sample of a stream, or Left naming the file that failed. */
export async function nextSample(stream: PrefetchLoader, role: string): Promise<E.Either<TrainError, Sample>> {
  const r = await stream.next();
  if (r.done === true) return E.left(trainError("data", `the ${role} stream ended early`));
  return pipe(
    r.value.sample,
    E.mapLeft((e) => trainError("data", `${role} sample ${r.value.position}: ${describeDataError(e)}`)),
  );
}

// Class indices as the i32 labels the programs take: iteration.ts (no Node), re-exported for callers.
export { labelInput } from "./iteration.js";
