// Trainer snapshots as bytes: the page writes the file `npm run eval` reads, and reads the files
// the Node trainer writes, through the same format code (checkpoint/*-codec.ts,
// train/snapshot-format.ts) with no file system in between.

import * as E from "fp-ts/lib/Either.js";
import { bundleFromSafetensors, bundleToSafetensors } from "../../checkpoint/bundle-codec";
import { renderCheckpointError } from "../../checkpoint/errors";
import { concatChunks, decodeSafetensors, encodeSafetensors } from "../../checkpoint/safetensors-codec";
import { trainError, type TrainError } from "../../train/errors";
import { checkpointBundle, checkpointFromBundle, type TrainerCheckpoint } from "../../train/snapshot-format";

/** The safetensors bytes of a trainer snapshot (`file` names it in any error). */
export function snapshotBytes(file: string, c: TrainerCheckpoint): E.Either<TrainError, Uint8Array> {
  const contents = bundleToSafetensors(file, checkpointBundle(c));
  if (E.isLeft(contents)) return E.left(trainError("checkpoint", renderCheckpointError(contents.left)));
  const chunks = encodeSafetensors(file, contents.right);
  return E.isLeft(chunks) ? E.left(trainError("checkpoint", renderCheckpointError(chunks.left))) : E.right(concatChunks(chunks.right));
}

/** A trainer snapshot from a file's bytes, checked as the Node trainer checks it. */
export function readSnapshot(file: string, bytes: Uint8Array): E.Either<TrainError, TrainerCheckpoint> {
  const contents = decodeSafetensors(file, bytes);
  if (E.isLeft(contents)) return E.left(trainError("checkpoint", renderCheckpointError(contents.left)));
  const bundle = bundleFromSafetensors(file, contents.right);
  if (E.isLeft(bundle)) return E.left(trainError("checkpoint", renderCheckpointError(bundle.left)));
  return checkpointFromBundle(file, bundle.right);
}
