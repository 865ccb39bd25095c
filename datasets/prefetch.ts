// A loader that keeps the device fed: samples are decoded and resized on worker threads and handed
// out in draw order through a bounded prefetch queue.
//
// Bound: at most `depth` samples are requested ahead of the consumer (in flight or finished and
// waiting). That caps memory (a 1280x720 input is 11 MB of float32) and gives back-pressure: when
// training is slower than decoding, the workers idle instead of filling the heap.
//
// Order: results come back from the workers in any order, but each queued promise belongs to one
// draw position, and the queue is consumed front to back, so the sequence is exactly
// order[start], order[start+1], ... whatever the number of workers. Augmentation is drawn from
// (seed, position), so it does not depend on which worker decodes a sample either.

import * as E from "fp-ts/lib/Either.js";
import { Worker } from "node:worker_threads";
import "sharp"; // sharp must be loaded by the main thread before worker threads load it (glibc).
import { type DataError, errorText } from "./errors";
import type { SampleRef } from "./layouts";
import { type AugmentPolicy, type LoadOptions, type Sample, drawAugment, loadSample } from "./preprocess";
import type { WorkerRequest, WorkerResponse } from "./preprocess_worker";
import { type SampleOrder, sampleAt } from "./sampler";

export interface PrefetchPlan {
  readonly refs: readonly SampleRef[];
  readonly order: SampleOrder;
  /** First draw position (resume from iteration i by starting at i * batch). */
  readonly start: number;
  /** Number of draws to produce. */
  readonly count: number;
  /** Everything but the augmentation, which is drawn per position. */
  readonly options: Omit<LoadOptions, "augment">;
  readonly augment?: { readonly policy: AugmentPolicy; readonly seed: number };
}

export interface PrefetchConfig {
  /** Worker threads; 0 decodes on the main thread (still asynchronous and bounded). */
  readonly workers: number;
  /** Maximum number of samples requested ahead of the consumer. */
  readonly depth: number;
}

export interface Draw {
  readonly position: number;
  readonly index: number;
  readonly sample: E.Either<DataError, Sample>;
}

export interface PrefetchLoader extends AsyncIterableIterator<Draw> {
  /** Stop the workers; pending results are dropped. Idempotent. */
  close(): Promise<void>;
}

type Loader = (req: LoadRequest) => Promise<E.Either<DataError, Sample>>;

interface Pool {
  readonly load: Loader;
  readonly close: () => Promise<void>;
}

function workerUrl(): { boot: URL; entry: string } {
  // Run from TypeScript sources (tsx, vitest) the entry is .ts; compiled, it would be .js.
  const ext = import.meta.url.endsWith(".ts") ? ".ts" : ".js";
  return { boot: new URL("./worker_boot.mjs", import.meta.url), entry: new URL(`./preprocess_worker${ext}`, import.meta.url).href };
}

function mainThreadPool(): Pool {
  return { load: (req) => loadSample(req.ref, req.options)(), close: async () => {} };
}

/**
 * Worker threads, each given the next request when it has the fewest outstanding. A worker that
 * dies fails its pending requests and gets no more; when none is left, requests fail at once
 * (a value, not a hang).
 */
function workerPool(n: number): Pool {
  const { boot, entry } = workerUrl();
  const pending = new Map<number, { readonly worker: number; readonly resolve: (r: E.Either<DataError, Sample>) => void }>();
  const outstanding = new Array<number>(n).fill(0);
  const alive = new Array<boolean>(n).fill(true);
  let nextId = 0;
  let closed = false;
  const failed = (reason: string): E.Either<DataError, Sample> => E.left({ kind: "worker-failed", reason });
  const retire = (w: number, reason: string): void => {
    if (!alive[w]) return;
    alive[w] = false;
    for (const [id, p] of pending) {
      if (p.worker !== w) continue;
      pending.delete(id);
      p.resolve(failed(reason));
    }
  };
  const workers = Array.from({ length: n }, (_, w) => {
    const worker = new Worker(boot, { workerData: { entry } });
    worker.on("message", (msg: WorkerResponse) => {
      const p = pending.get(msg.id);
      pending.delete(msg.id);
      outstanding[w] = outstanding[w]! - 1;
      p?.resolve(msg.result);
    });
    worker.on("error", (err) => retire(w, `worker ${w}: ${errorText(err)}`));
    worker.on("exit", (code) => {
      if (!closed) retire(w, `worker ${w} exited with code ${code}`);
    });
    return worker;
  });
  return {
    load: (req) =>
      new Promise((resolve) => {
        let w = -1;
        for (let k = 0; k < n; k++) if (alive[k] && (w < 0 || outstanding[k]! < outstanding[w]!)) w = k;
        if (closed || w < 0) {
          resolve(failed(closed ? "loader closed" : "every data worker has died"));
          return;
        }
        const id = nextId++;
        pending.set(id, { worker: w, resolve });
        outstanding[w] = outstanding[w]! + 1;
        const msg: WorkerRequest = { id, ...req };
        workers[w]!.postMessage(msg);
      }),
    close: async () => {
      if (closed) return;
      closed = true;
      await Promise.all(workers.map((w) => w.terminate()));
      for (const p of pending.values()) p.resolve(failed("loader closed"));
      pending.clear();
    },
  };
}

/** One sample to load: what the queue asks of a worker. */
export type LoadRequest = Omit<WorkerRequest, "id">;

/**
 * The bounded, ordered queue on its own, over any `load` function: draws come out in position
 * order, and at most `depth` loads are outstanding beyond the one being awaited.
 */
export function createPrefetchQueue(
  plan: PrefetchPlan,
  depth: number,
  load: (req: LoadRequest) => Promise<E.Either<DataError, Sample>>,
  onDone: () => Promise<void> = async () => {},
): PrefetchLoader {
  if (depth < 1) throw new Error(`createPrefetchQueue: depth must be at least 1, got ${depth}`);
  const queue: Promise<Draw>[] = [];
  let issued = 0;
  let consumed = 0;

  const issue = (): void => {
    while (issued < plan.count && queue.length < depth) {
      const position = plan.start + issued;
      const index = sampleAt(plan.order, position);
      const ref = plan.refs[index];
      issued++;
      if (ref === undefined) {
        throw new Error(`createPrefetchQueue: order names sample ${index} but only ${plan.refs.length} are listed`);
      }
      const options: LoadOptions =
        plan.augment === undefined ? plan.options : { ...plan.options, augment: drawAugment(plan.augment.policy, plan.augment.seed, position) };
      queue.push(load({ ref, options }).then((sample) => ({ position, index, sample })));
    }
  };

  const loader: PrefetchLoader = {
    [Symbol.asyncIterator]() {
      return loader;
    },
    async next(): Promise<IteratorResult<Draw>> {
      const head = queue.shift();
      if (head === undefined) {
        await onDone();
        return { done: true, value: undefined };
      }
      consumed++;
      // Refill before waiting, so the loads stay `depth` ahead while the consumer waits.
      issue();
      const draw = await head;
      if (consumed === plan.count) await onDone();
      return { done: false, value: draw };
    },
    async return(): Promise<IteratorResult<Draw>> {
      await onDone();
      return { done: true, value: undefined };
    },
    close: onDone,
  };
  issue();
  return loader;
}

/** The loader the trainer uses: `config.workers` threads decoding, `config.depth` samples ahead. */
export function createPrefetchLoader(plan: PrefetchPlan, config: PrefetchConfig): PrefetchLoader {
  const pool = config.workers > 0 ? workerPool(config.workers) : mainThreadPool();
  return createPrefetchQueue(plan, config.depth, pool.load, pool.close);
}
