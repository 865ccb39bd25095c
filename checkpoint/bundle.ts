// Trainer checkpoints as files: the format is bundle-codec.ts.

import { pipe } from "fp-ts/lib/function.js";
import * as TE from "fp-ts/lib/TaskEither.js";
import { bundleFromSafetensors, bundleToSafetensors, type CheckpointBundle } from "./bundle-codec";
import type { CheckpointError } from "./errors";
import { readSafetensors, writeSafetensors } from "./safetensors";

export * from "./bundle-codec";

export function writeCheckpoint(path: string, bundle: CheckpointBundle): TE.TaskEither<CheckpointError, void> {
  return pipe(
    TE.fromEither(bundleToSafetensors(path, bundle)),
    TE.flatMap((contents) => writeSafetensors(path, contents)),
  );
}

export function readCheckpoint(path: string): TE.TaskEither<CheckpointError, CheckpointBundle> {
  return pipe(
    readSafetensors(path),
    TE.flatMapEither((contents) => bundleFromSafetensors(path, contents)),
  );
}
