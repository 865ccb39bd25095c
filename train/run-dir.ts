// The run directory (--snapshot-dir): one run per directory, never two at once, and --resume
// only of the same run.
//
//   run.json    the run's identity, written atomically when the run starts: program, compiled
//               config, the values of its hyperparameters (defaults or --learning-rate, ...),
//               seed, snapshot prefix, the datasets it trains on and the augmentation,
//               plus (not compared) the command line and the --restore-from file;
//   run.lock    {"pid", "host", "started"}, created with O_EXCL while a run trains into the
//               directory, removed when it ends. A lock whose pid is dead (a SIGKILLed run) is
//               taken over with a warning; a live one refuses the second run.
//
// A directory "holds a run" when it has a snapshot of the prefix or a non-empty metrics log. A
// new run into such a directory is refused (it would overwrite snapshots with the same iteration
// numbers and truncate the log, leaving a directory that mixes two runs); `--resume` continues it
// only when its run.json names the same identity, and says what differs otherwise. A directory
// with a run.json but neither (a run refused before its first step) holds nothing to lose.
//
// Everything here is checked before the device is acquired or data opened, so a wrong
// --snapshot-dir costs nothing: it is created, must be a directory, and must take a probe file.

import * as E from "fp-ts/lib/Either.js";
import { accessSync, closeSync, constants, lstatSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync, statSync, unlinkSync, writeSync } from "node:fs";
import { hostname } from "node:os";
import { dirname, join, resolve } from "node:path";
import { isProcessAlive, writeFileAtomic } from "../checkpoint/atomic-write.js";
import type { DatasetSpec } from "../datasets/layouts.js";
import type { AugmentPolicy } from "../datasets/preprocess.js";
import { fromCheckpointError, trainError, type TrainError } from "./errors.js";
import { hyperparameterDifferences, recordedHyperparameters } from "./hyperparameters.js";

export const RUN_FILE = "run.json";
export const LOCK_FILE = "run.lock";

/** What makes two runs the same run: equal identities continue each other bit for bit. */
export interface RunIdentity {
  readonly program: string;
  readonly config: Readonly<Record<string, unknown>>;
  /**
   * The values of the program's hyperparameter vector this run trains with, by name. Absent in
   * run.json files from before hyperparameters were run-time values: those runs trained with
   * their config's values (recordedHyperparameters).
   */
  readonly hyperparameters?: Readonly<Record<string, number>>;
  readonly seed: number;
  readonly snapshotPrefix: string;
  /** The datasets the program trains on (absolute roots), by side. */
  readonly data: { readonly source?: DatasetSpec; readonly target?: DatasetSpec };
  readonly augment?: AugmentPolicy;
}

export interface RunFile {
  readonly identity: RunIdentity;
  /** Informational, never compared: a resumed run is started with other flags. */
  readonly argv?: readonly string[];
  readonly restoreFrom?: string;
  readonly created: string;
}

const message = (e: unknown): string => (e instanceof Error ? e.message : String(e));

// ---------------------------------------------------------------------------------------------
// The directory itself

/**
 * mkdir -p without Node's recursive mkdir, which never returns for a path under /proc
 * (`/proc/x`: the parent exists, mkdir says ENOENT, and Node retries forever). Each missing
 * component is created on its own; an existing one must be a directory.
 */
export function makeDirectory(path: string): E.Either<string, void> {
  const full = resolve(path);
  const parts: string[] = [];
  for (let p = full; ; p = dirname(p)) {
    parts.unshift(p);
    if (dirname(p) === p) break;
  }
  for (const p of parts) {
    let st;
    try {
      st = statSync(p, { throwIfNoEntry: false });
    } catch (e) {
      return E.left(`cannot inspect ${p}: ${message(e)}`);
    }
    if (st !== undefined) {
      if (!st.isDirectory()) return E.left(p === full ? `${p} exists and is not a directory` : `${p} is not a directory, so ${full} cannot be created in it`);
      continue;
    }
    try {
      mkdirSync(p);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") return E.left(`cannot create ${p}: ${message(e)}`);
    }
  }
  return E.right(undefined);
}

/** Creates the directory, checks that it is one and that files can be created and removed in it. */
export function checkRunDirectory(dir: string, option = "--snapshot-dir"): E.Either<TrainError, void> {
  const refuse = (why: string) => E.left(trainError("options", `${option} ${dir} cannot hold the run: ${why}`));
  const made = makeDirectory(dir);
  if (E.isLeft(made)) return refuse(made.left);
  const probe = join(dir, `.write-probe-${process.pid}`);
  try {
    closeSync(openSync(probe, "wx"));
    unlinkSync(probe);
  } catch (e) {
    return refuse(`it is not writable (${message(e)})`);
  }
  return E.right(undefined);
}

// ---------------------------------------------------------------------------------------------
// Identity

/** Paths compared as absolute paths, so `data/GTA5` and `./data/GTA5` are one dataset. */
export function normaliseSpec(spec: DatasetSpec): DatasetSpec {
  const s = { ...spec, root: resolve(spec.root) } as DatasetSpec & { listFile?: string };
  return s.listFile === undefined ? s : ({ ...s, listFile: resolve(s.listFile) } as DatasetSpec);
}

/** JSON with sorted keys: equal values, equal strings. */
export function canonicalJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(",")}]`;
  if (v !== null && typeof v === "object") {
    const entries = Object.entries(v as Record<string, unknown>).filter(([, x]) => x !== undefined);
    return `{${entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([k, x]) => `${JSON.stringify(k)}:${canonicalJson(x)}`).join(",")}}`;
  }
  return JSON.stringify(v) ?? "null";
}

/** One line per difference, "what: in the directory X, this run Y"; empty when the same run. */
export function identityDifferences(existing: RunIdentity, wanted: RunIdentity): string[] {
  const out: string[] = [];
  const cmp = (what: string, a: unknown, b: unknown) => {
    if (canonicalJson(a) !== canonicalJson(b)) out.push(`${what}: ${canonicalJson(a)} in the directory, ${canonicalJson(b)} now`);
  };
  cmp("program", existing.program, wanted.program);
  cmp("snapshot prefix", existing.snapshotPrefix, wanted.snapshotPrefix);
  cmp("seed", existing.seed, wanted.seed);
  const keys = [...new Set([...Object.keys(existing.config), ...Object.keys(wanted.config)])].sort();
  for (const k of keys) cmp(`config ${k}`, existing.config[k], wanted.config[k]);
  const wantedHyper = wanted.hyperparameters ?? {};
  const existingHyper = recordedHyperparameters(existing.hyperparameters, existing.config, Object.keys(wantedHyper));
  out.push(...hyperparameterDifferences("the directory", existingHyper, wantedHyper));
  cmp("source data", existing.data.source, wanted.data.source);
  cmp("target data", existing.data.target, wanted.data.target);
  cmp("augmentation", existing.augment ?? null, wanted.augment ?? null);
  return out;
}

export function readRunFile(dir: string): E.Either<TrainError, RunFile | undefined> {
  const path = join(dir, RUN_FILE);
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "ENOENT" ? E.right(undefined) : E.left(trainError("options", `cannot read ${path}: ${message(e)}`));
  }
  try {
    const f = JSON.parse(text) as RunFile;
    if (typeof f?.identity?.program !== "string" || typeof f.identity.seed !== "number") throw new Error("no identity");
    return E.right(f);
  } catch (e) {
    return E.left(trainError("options", `${path} is not a run identity (${message(e)}); remove it if the directory holds no run you want to keep`));
  }
}

export async function writeRunFile(dir: string, f: RunFile): Promise<E.Either<TrainError, void>> {
  const r = await writeFileAtomic(join(dir, RUN_FILE), [new TextEncoder().encode(JSON.stringify(f, null, 1) + "\n")])();
  return E.mapLeft(fromCheckpointError)(r);
}

// ---------------------------------------------------------------------------------------------
// What the directory holds

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

/** Snapshot files of `prefix` in `dir` (`<prefix>_<n>.safetensors`, `<prefix>_best.safetensors`). */
export function snapshotFiles(dir: string, prefix: string): string[] {
  const pattern = new RegExp(`^${escape(prefix)}_(\\d+|best)\\.safetensors$`);
  try {
    return readdirSync(dir).filter((f) => pattern.test(f)).sort();
  } catch {
    return [];
  }
}

function nonEmptyFile(path: string): boolean {
  try {
    const st = lstatSync(path);
    return !st.isFile() || st.size > 0;
  } catch {
    return false;
  }
}

/** What shows that `dir` already holds a run: its snapshots and its metrics log. */
export function runEvidence(dir: string, prefix: string, metricsPath: string | undefined): string[] {
  const snaps = snapshotFiles(dir, prefix);
  const evidence = snaps.length === 0 ? [] : [snaps.length > 3 ? `${snaps.slice(0, 2).join(", ")}, ... (${snaps.length} snapshots)` : snaps.join(", ")];
  if (metricsPath !== undefined && nonEmptyFile(metricsPath)) evidence.push(metricsPath);
  return evidence;
}

export interface RunRequest {
  readonly dir: string;
  readonly identity: RunIdentity;
  readonly metricsPath?: string;
  /** Continue the run in the directory (--resume, --resume-from). */
  readonly resume: boolean;
  /** Remove an earlier run instead of refusing (the demo, which regenerates its output folder). */
  readonly replace?: boolean;
}

/**
 * Whether `req` may train into its directory, without taking the lock: the directory is usable,
 * a new run finds no earlier run, a resumed one finds the same identity.
 */
export function checkRunRequest(req: RunRequest): E.Either<TrainError, { readonly existing: RunFile | undefined }> {
  const usable = checkRunDirectory(req.dir);
  if (E.isLeft(usable)) return usable;
  const metrics = req.metricsPath === undefined ? E.right(undefined) : checkMetricsPath(req.metricsPath);
  if (E.isLeft(metrics)) return metrics;
  const existing = readRunFile(req.dir);
  if (E.isLeft(existing)) return req.replace === true ? E.right({ existing: undefined }) : existing;
  if (req.replace === true) return E.right({ existing: existing.right });
  if (req.resume) {
    const diff = existing.right === undefined ? [] : identityDifferences(existing.right.identity, req.identity);
    if (diff.length > 0) {
      return E.left(trainError("options", `--resume: ${req.dir} holds another run; it differs in ${diff.join("; ")}. Resume with the options it was started with, or start a new run in another --snapshot-dir`));
    }
    return E.right({ existing: existing.right });
  }
  const evidence = runEvidence(req.dir, req.identity.snapshotPrefix, req.metricsPath);
  if (evidence.length > 0) {
    return E.left(
      trainError(
        "options",
        `${req.dir} already holds a run (${evidence.join("; ")}); a new run would overwrite its snapshots and its metrics. ` +
          `Pass --resume to continue it, or another --snapshot-dir to start a new run`,
      ),
    );
  }
  return E.right({ existing: existing.right });
}

/** The metrics log must be creatable, and an existing one a writable regular file (never a symlink: metrics.ts). */
export function checkMetricsPath(path: string): E.Either<TrainError, void> {
  const refuse = (why: string) => E.left(trainError("options", `the metrics file ${path} ${why}`));
  const made = makeDirectory(dirname(path));
  if (E.isLeft(made)) return refuse(`cannot be created: ${made.left}`);
  const st = lstatSync(path, { throwIfNoEntry: false });
  if (st === undefined) return E.right(undefined);
  if (st.isSymbolicLink()) return refuse("is a symbolic link; refusing to write through it (remove it, or pass --metrics with another path)");
  if (!st.isFile()) return refuse("is not a regular file");
  try {
    accessSync(path, constants.W_OK);
  } catch (e) {
    return refuse(`is not writable (${message(e)})`);
  }
  return E.right(undefined);
}

/** The demo's replace: the earlier run's snapshots, log and identity go before the new run starts. */
function removeEarlierRun(req: RunRequest): void {
  for (const f of snapshotFiles(req.dir, req.identity.snapshotPrefix)) rmSync(join(req.dir, f), { force: true });
  if (req.metricsPath !== undefined) rmSync(req.metricsPath, { force: true });
  rmSync(join(req.dir, RUN_FILE), { force: true });
}

// ---------------------------------------------------------------------------------------------
// The lock

interface LockContent {
  readonly pid: number;
  readonly host: string;
  readonly started: string;
}

function readLock(path: string): LockContent | undefined {
  try {
    const c = JSON.parse(readFileSync(path, "utf8")) as LockContent;
    return typeof c.pid === "number" ? c : undefined;
  } catch {
    return undefined;
  }
}

function createLock(path: string): boolean {
  let fd: number;
  try {
    fd = openSync(path, "wx", 0o644);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "EEXIST") return false;
    throw e;
  }
  try {
    writeSync(fd, JSON.stringify({ pid: process.pid, host: hostname(), started: new Date().toISOString() } satisfies LockContent) + "\n");
  } finally {
    closeSync(fd);
  }
  return true;
}

/** A lock whose process is gone: on this host (pids of other hosts cannot be probed), not ours, dead. */
function isStale(holder: LockContent | undefined): holder is LockContent {
  return holder !== undefined && holder.host === hostname() && holder.pid !== process.pid && !isProcessAlive(holder.pid);
}

function inUse(dir: string, path: string, holder: LockContent | undefined): TrainError {
  const who = holder === undefined ? "another process (the lock is being written or unreadable)" : `process ${holder.pid} on ${holder.host} (since ${holder.started})`;
  return trainError(
    "options",
    `${dir} is in use by another run: ${who} holds ${path}. Two runs in one directory would interleave their snapshots; wait for it, or use another --snapshot-dir (if no such run exists, delete ${path})`,
  );
}

/**
 * checkRunRequest for a caller that does not hold the lock (the command line, before the device
 * is acquired): a directory another run is training into is reported as in use.
 */
export function preflightRunRequest(req: RunRequest): E.Either<TrainError, { readonly existing: RunFile | undefined }> {
  const usable = checkRunDirectory(req.dir);
  if (E.isLeft(usable)) return usable;
  const path = join(req.dir, LOCK_FILE);
  const holder = readLock(path);
  if ((holder !== undefined || lstatSync(path, { throwIfNoEntry: false }) !== undefined) && !isStale(holder)) return E.left(inUse(req.dir, path, holder));
  return checkRunRequest(req);
}

export interface RunLock {
  readonly path: string;
  /** Warnings for the log (a stale lock taken over). */
  readonly notes: readonly string[];
  /** Removes the lock if it is still ours. Idempotent. */
  release(): void;
}

/**
 * Takes `dir`'s lock. A stale lock (dead pid on this host) is first renamed aside, which only one
 * of two racing takers can do for the same file; the taker then checks it renamed the stale lock
 * it read, not a fresh one, before removing it.
 */
export function acquireRunLock(dir: string): E.Either<TrainError, RunLock> {
  const path = join(dir, LOCK_FILE);
  const notes: string[] = [];
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      if (createLock(path)) return E.right(ownedLock(path, notes));
    } catch (e) {
      return E.left(trainError("options", `cannot create the lock ${path}: ${message(e)}`));
    }
    const holder = readLock(path);
    if (!isStale(holder)) return E.left(inUse(dir, path, holder));
    const aside = `${path}.stale-${process.pid}`;
    try {
      renameSync(path, aside);
    } catch {
      continue; // another taker moved it first; try again
    }
    const moved = readLock(aside);
    if (moved?.pid === holder.pid) {
      rmSync(aside, { force: true });
      notes.push(`warning: took over the lock of run ${holder.pid} (${holder.started}), which is no longer running; it was killed or crashed`);
    } else {
      // We moved a fresh lock of a live taker: put it back and let the loop see it.
      try {
        renameSync(aside, path);
      } catch {
        rmSync(aside, { force: true });
      }
    }
  }
  return E.left(trainError("options", `${dir}: could not take the lock ${path} (other processes keep taking it)`));
}

function ownedLock(path: string, notes: readonly string[]): RunLock {
  let released = false;
  return {
    path,
    notes,
    release: () => {
      if (released) return;
      released = true;
      if (readLock(path)?.pid === process.pid) rmSync(path, { force: true });
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Putting it together

export interface OpenRun {
  readonly lock: RunLock;
  readonly notes: readonly string[];
}

/**
 * Takes the lock, checks the request under it (so what it found cannot change until the run
 * ends), then writes run.json (kept as it was when resuming a run that has one).
 */
export async function openRunDirectory(req: RunRequest, info: { readonly argv?: readonly string[]; readonly restoreFrom?: string }): Promise<E.Either<TrainError, OpenRun>> {
  const usable = checkRunDirectory(req.dir);
  if (E.isLeft(usable)) return usable;
  const lock = acquireRunLock(req.dir);
  if (E.isLeft(lock)) return lock;
  const fail = (e: TrainError) => {
    lock.right.release();
    return E.left(e);
  };
  const checked = checkRunRequest(req);
  if (E.isLeft(checked)) return fail(checked.left);
  if (req.replace === true) removeEarlierRun(req);
  if (!(req.resume && checked.right.existing !== undefined)) {
    const file: RunFile = {
      identity: req.identity,
      ...(info.argv !== undefined ? { argv: info.argv } : {}),
      ...(info.restoreFrom !== undefined ? { restoreFrom: info.restoreFrom } : {}),
      created: new Date().toISOString(),
    };
    const w = await writeRunFile(req.dir, file);
    if (E.isLeft(w)) return fail(w.left);
  }
  return E.right({ lock: lock.right, notes: lock.right.notes });
}
