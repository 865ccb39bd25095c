// Crash-safe file replacement.
//
// The bytes go to a temporary file in the destination's own directory (rename is only atomic
// within one file system), are fsynced, and only then renamed over the destination. At every
// instant the destination holds either its old content or the complete new content: a crash,
// a full disk or a throwing data source leaves the old file as it was. On failure the
// temporary file is removed, so nothing accumulates next to the checkpoints.
//
// A writer killed outright (SIGKILL, power loss) cannot remove its temporary file, which is as
// large as a snapshot. Temporary files are therefore named `.<target>.<writer pid>.<random>.tmp`:
// each write first removes those of its own target whose writer process is gone, so at most one
// per target survives a crash, and only until the next write of that target. Files of a live
// writer (a concurrent write, another run) are left alone.

import { randomBytes } from "node:crypto";
import { open, readdir, rename, rm, type FileHandle } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import * as E from "fp-ts/lib/Either.js";
import type * as TE from "fp-ts/lib/TaskEither.js";
import { checkpointError, describeIoError, type CheckpointError } from "./errors";

export type ByteChunks = Iterable<Uint8Array> | AsyncIterable<Uint8Array>;

/** Hidden, unique per writer, and recognisable as ours if a crash ever leaves one behind. */
export function temporaryPathFor(path: string): string {
  return join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`);
}

/** The writer pid of one of `target`'s temporary files (see temporaryPathFor), or undefined. */
export function temporaryWriter(target: string, fileName: string): number | undefined {
  const prefix = `.${basename(target)}.`;
  if (!fileName.startsWith(prefix)) return undefined;
  const m = /^(\d+)\.[0-9a-f]{8}\.tmp$/.exec(fileName.slice(prefix.length));
  return m === null ? undefined : Number(m[1]);
}

/** Signal 0 probes a pid without touching it: ESRCH means no such process, EPERM a live one of another user. */
export function isProcessAlive(pid: number): boolean {
  if (!Number.isSafeInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** Removes the temporary files of `path` whose writers are dead; best effort (a listing error is not the write's). */
export async function removeStaleTemporaries(path: string): Promise<readonly string[]> {
  let names: string[];
  try {
    names = await readdir(dirname(path));
  } catch {
    return [];
  }
  const stale = names.filter((n) => {
    const pid = temporaryWriter(path, n);
    return pid !== undefined && pid !== process.pid && !isProcessAlive(pid);
  });
  await Promise.all(stale.map((n) => rm(join(dirname(path), n), { force: true }).catch(() => undefined)));
  return stale;
}

export function writeFileAtomic(path: string, chunks: ByteChunks): TE.TaskEither<CheckpointError, void> {
  return async () => {
    await removeStaleTemporaries(path);
    const tmp = temporaryPathFor(path);
    let handle: FileHandle | undefined;
    try {
      handle = await open(tmp, "wx", 0o644);
      for await (const chunk of chunks) await writeAll(handle, chunk);
      await handle.sync();
      await handle.close();
      handle = undefined;
      await rename(tmp, path);
    } catch (e) {
      await handle?.close().catch(() => undefined);
      await rm(tmp, { force: true }).catch(() => undefined);
      return E.left(checkpointError("io", path, `write failed, destination left unchanged: ${describeIoError(e)}`));
    }
    await syncDirectory(dirname(path));
    return E.right(undefined);
  };
}

/** FileHandle.write may write fewer bytes than asked; loop until the chunk is out. */
async function writeAll(handle: FileHandle, chunk: Uint8Array): Promise<void> {
  let done = 0;
  while (done < chunk.byteLength) {
    const { bytesWritten } = await handle.write(chunk, done, chunk.byteLength - done);
    done += bytesWritten;
  }
}

/**
 * Makes the rename itself durable. Best effort: some platforms cannot open a directory, and
 * the file content is already safe at this point.
 */
async function syncDirectory(dir: string): Promise<void> {
  let handle: FileHandle | undefined;
  try {
    handle = await open(dir, "r");
    await handle.sync();
  } catch {
    // The rename has happened; a missing directory fsync only weakens durability on power loss.
  } finally {
    await handle?.close().catch(() => undefined);
  }
}
