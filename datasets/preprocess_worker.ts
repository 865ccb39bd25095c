// A data worker: loads samples on request and sends them back with their buffers transferred
// (no copy). Requests are handled concurrently; sharp's decode runs on libuv's pool, and the JS
// parts (the Pillow-exact resize, PNG label decode, mapping, the float conversion) run on this thread.

import * as E from "fp-ts/lib/Either.js";
import { parentPort } from "node:worker_threads";
import { type DataError, errorText } from "./errors";
import { type LoadOptions, type Sample, loadSample } from "./preprocess";
import type { SampleRef } from "./layouts";

export interface WorkerRequest {
  readonly id: number;
  readonly ref: SampleRef;
  readonly options: LoadOptions;
}

export interface WorkerResponse {
  readonly id: number;
  readonly result: E.Either<DataError, Sample>;
}

function transferables(s: Sample): ArrayBuffer[] {
  const out = [s.image.buffer as ArrayBuffer];
  if (s.label !== undefined && s.label.buffer !== s.image.buffer) out.push(s.label.buffer as ArrayBuffer);
  return out;
}

const port = parentPort;
if (port !== null) {
  port.on("message", (req: WorkerRequest) => {
    loadSample(req.ref, req.options)()
      .then((result) => {
        const msg: WorkerResponse = { id: req.id, result };
        port.postMessage(msg, E.isRight(result) ? transferables(result.right) : []);
      })
      .catch((err: unknown) => {
        const msg: WorkerResponse = { id: req.id, result: E.left({ kind: "worker-failed", reason: errorText(err) }) };
        port.postMessage(msg);
      });
  });
}
