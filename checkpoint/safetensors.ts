// safetensors files: reading and writing them (Node). The format itself (encode, decode, every
// check) is safetensors-codec.ts, free of Node so the browser build shares it.

import { readFile } from "node:fs/promises";
import { pipe } from "fp-ts/lib/function.js";
import * as TE from "fp-ts/lib/TaskEither.js";
import { writeFileAtomic } from "./atomic-write";
import { checkpointError, describeIoError, type CheckpointError } from "./errors";
import { decodeSafetensors, encodeSafetensors, type SafetensorsContents } from "./safetensors-codec";

export * from "./safetensors-codec";

// ---------------------------------------------------------------------------------------------
// Files

export function readSafetensors(path: string): TE.TaskEither<CheckpointError, SafetensorsContents> {
  return pipe(
    readBytes(path),
    TE.flatMapEither((bytes) => decodeSafetensors(path, bytes)),
  );
}

/** Atomic: see atomic-write.ts. An invalid tensor is reported before anything is written. */
export function writeSafetensors(path: string, contents: SafetensorsContents): TE.TaskEither<CheckpointError, void> {
  return pipe(
    TE.fromEither(encodeSafetensors(path, contents)),
    TE.flatMap((chunks) => writeFileAtomic(path, chunks)),
  );
}

export function readBytes(path: string): TE.TaskEither<CheckpointError, Uint8Array> {
  return TE.tryCatch(
    async () => {
      const b = await readFile(path);
      return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
    },
    (e) => checkpointError("io", path, `cannot read: ${describeIoError(e)}`),
  );
}
