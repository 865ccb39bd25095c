// The run's metrics log: one JSON object per line (JSONL), appended as the run goes, so a killed
// run keeps everything up to its last read-back and a resumed run continues the same file.
//
//   {"type":"loss","iteration":120,"time_s":31.2,"lr":0.00248,"its_per_s":3.9,"losses":{"loss_seg2":1.21,...}}
//   {"type":"eval","iteration":500,"mIoU":31.5,"classes":{"road":0.81,...},"images":50,"seconds":1.2}
//   {"type":"snapshot","iteration":500,"path":"runs/x/multi-level-cpu-demo_500.safetensors"}
//   {"type":"best","iteration":500,"mIoU":31.5,"path":"..._best.safetensors"}
//   {"type":"diverged","iteration":130,"loss":"loss_D2","value":null,"last_finite":120}
//
// `iteration` always counts completed optimizer steps.

import * as E from "fp-ts/lib/Either.js";
import { closeSync, constants, existsSync, lstatSync, openSync, readFileSync, writeSync } from "node:fs";
import { dirname } from "node:path";
import { trainError, type TrainError } from "./errors.js";
import { makeDirectory } from "./run-dir.js";

// Every write opens the path with O_NOFOLLOW: a symbolic link at the metrics path (planted, or a
// --metrics argument that is one) makes the write fail instead of truncating the link's target.
const REWRITE = constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC | constants.O_NOFOLLOW;
const APPEND = constants.O_WRONLY | constants.O_CREAT | constants.O_APPEND | constants.O_NOFOLLOW;

function writeNoFollow(path: string, text: string, flags: number): void {
  const fd = openSync(path, flags, 0o644);
  try {
    writeSync(fd, text);
  } finally {
    closeSync(fd);
  }
}

export type MetricRecord =
  | {
      readonly type: "loss";
      readonly iteration: number;
      readonly time_s: number;
      readonly lr: number;
      readonly its_per_s: number;
      readonly losses: Readonly<Record<string, number>>;
    }
  | {
      readonly type: "eval";
      readonly iteration: number;
      readonly mIoU: number;
      readonly classes: Readonly<Record<string, number | null>>;
      readonly images: number;
      readonly seconds: number;
    }
  | { readonly type: "snapshot"; readonly iteration: number; readonly path: string }
  | { readonly type: "best"; readonly iteration: number; readonly mIoU: number; readonly path: string }
  | { readonly type: "diverged"; readonly iteration: number; readonly loss: string; readonly value: number | null; readonly last_finite: number }
  | {
      readonly type: "start";
      readonly iteration: number;
      readonly program: string;
      readonly seed: number;
      /** The values of the program's hyperparameter vector the run trains with. */
      readonly hyperparameters?: Readonly<Record<string, number>>;
      readonly resumed_from?: string;
    };

export class MetricsLog {
  private constructor(readonly path: string | undefined) {}

  /**
   * A log at `path`: a fresh file, or (resume) the existing one with lines past `iteration`
   * dropped. Left naming the path when it is a symbolic link or cannot be written.
   */
  static open(path: string | undefined, resumeAt?: number): E.Either<TrainError, MetricsLog> {
    if (path === undefined) return E.right(new MetricsLog(undefined));
    try {
      if (lstatSync(path, { throwIfNoEntry: false })?.isSymbolicLink() === true) {
        return E.left(trainError("options", `the metrics file ${path} is a symbolic link; refusing to write through it (remove it, or pass --metrics with another path)`));
      }
      const dir = makeDirectory(dirname(path));
      if (E.isLeft(dir)) return E.left(trainError("options", `cannot write the metrics file ${path}: ${dir.left}`));
      if (resumeAt === undefined || !existsSync(path)) {
        writeNoFollow(path, "", REWRITE);
      } else {
        // A run killed after its last snapshot logged iterations that the resumed run repeats.
        const kept = readMetrics(path).filter((r) => r.iteration <= resumeAt);
        writeNoFollow(path, kept.map((r) => JSON.stringify(r) + "\n").join(""), REWRITE);
      }
    } catch (e) {
      return E.left(trainError("options", `cannot write the metrics file ${path}: ${e instanceof Error ? e.message : String(e)}`));
    }
    return E.right(new MetricsLog(path));
  }

  write(r: MetricRecord): void {
    if (this.path !== undefined) {
      writeNoFollow(this.path, JSON.stringify(r, (_, v: unknown) => (typeof v === "number" && !Number.isFinite(v) ? null : v)) + "\n", APPEND);
    }
  }
}

export function readMetrics(path: string): MetricRecord[] {
  if (!existsSync(path)) return [];
  return readFileSync(path, "utf8")
    .split("\n")
    .filter((l) => l.trim().length > 0)
    .flatMap((l) => {
      try {
        return [JSON.parse(l) as MetricRecord];
      } catch {
        return []; // a line cut by a kill
      }
    });
}
