// Trainer checkpoints: every persistent tensor of the step program, grouped by model under its
// PyTorch state-dict key (G, D1, D2; optimizer state sgd_G, adam_D1, adam_D2 with the
// parameter's key as prefix; BN running statistics inside G), plus the run's scalars: completed
// iterations, the sampler seed and positions, the program, its config and the run's
// hyperparameters (the values of its hyperparameter vector). One safetensors file
// written atomically (checkpoint/: temp file, fsync, rename), so a run killed while
// saving leaves the previous snapshot intact.
//
// Restoring weights (--restore-from) accepts three kinds of file, all checked against the
// program's slots with every wrong tensor named:
//   - a trainer checkpoint (.safetensors with groups): the model groups G, D1, D2;
//   - a plain .safetensors state dict (what `npm run import-weights` writes): G;
//   - a PyTorch .pth: G through the import rules (the `init` rule for the DeepLab init file
//     `DeepLab_resnet_pretrained_init*`, the `model` rule otherwise), and D1 / D2 from
//     `<stem>_D1.pth` / `<stem>_D2.pth` beside it when present (the official snapshot trio).
// Resuming (--resume) needs a trainer checkpoint and restores everything, strictly.

import * as E from "fp-ts/lib/Either.js";
import { pipe } from "fp-ts/lib/function.js";
import * as TE from "fp-ts/lib/TaskEither.js";
import { existsSync, readdirSync } from "node:fs";
import { basename, join } from "node:path";
import { readCheckpoint, writeCheckpoint } from "../checkpoint/bundle.js";
import { checkpointError } from "../checkpoint/errors.js";
import { applyImportRule, checkShaPrefix, type ConcreteRule } from "../checkpoint/import-rules.js";
import { readBytes, readSafetensors } from "../checkpoint/safetensors.js";
import type { StateDict } from "../checkpoint/tensor.js";
import { decodeTorchCheckpoint } from "../checkpoint/torch-load.js";
import { compareStateDict, listNames, reportProblems, STRICT, type StateDictReport } from "../checkpoint/validate.js";
import { fromCheckpointError, trainError, type TrainError } from "./errors.js";
import { checkFinite, coverExactly, type Exemption, exemptionNote, headExemption } from "./signature.js";
import { expectedTable, modelsOf, type PersistentSlot } from "./slots.js";
import { checkpointBundle, checkpointFromBundle, type TrainerCheckpoint } from "./snapshot-format.js";

export { checkpointBundle, checkpointFromBundle, type SamplerState, type TrainerCheckpoint } from "./snapshot-format.js";

export function saveCheckpoint(path: string, c: TrainerCheckpoint): TE.TaskEither<TrainError, void> {
  return pipe(writeCheckpoint(path, checkpointBundle(c)), TE.mapLeft(fromCheckpointError));
}

export function loadCheckpoint(path: string): TE.TaskEither<TrainError, TrainerCheckpoint> {
  return pipe(
    readCheckpoint(path),
    TE.mapLeft(fromCheckpointError),
    TE.flatMapEither((b) => checkpointFromBundle(path, b)),
  );
}

// ---------------------------------------------------------------------------------------------
// Checking state dicts against the program

export interface GroupCheck {
  readonly model: string;
  readonly report: StateDictReport;
}

/**
 * A resume's check: every group of the program, every tensor, nothing else, each at its shape and
 * dtype; every problem is named (a resume must restore everything). Weight restores go through
 * `fitWeights` instead.
 */
export function checkGroups(file: string, slots: readonly PersistentSlot[], groups: Readonly<Record<string, StateDict>>): E.Either<TrainError, GroupCheck[]> {
  const models = new Set(modelsOf(slots));
  const checks: GroupCheck[] = [];
  const problems: string[] = [];
  for (const [model, dict] of Object.entries(groups)) {
    if (!models.has(model)) {
      problems.push(`group ${model} is not in the program (it has ${[...models].join(", ")})`);
      continue;
    }
    const report = compareStateDict(dict, expectedTable(slots, model));
    checks.push({ model, report });
    problems.push(...reportProblems(report, STRICT).map((l) => `${model}: ${l}`));
  }
  for (const model of models) if (groups[model] === undefined) problems.push(`group ${model} is missing from the checkpoint`);
  return problems.length > 0 ? E.left(trainError("checkpoint", `checkpoint does not fit the program in ${file}: ${problems.join("; ")}`)) : E.right(checks);
}

// ---------------------------------------------------------------------------------------------
// --restore-from

/** Weights as read from a file, before they are fitted to a program. */
export interface ReadWeights {
  readonly groups: Readonly<Record<string, StateDict>>;
  /** One line per thing worth telling the user: rule used, files read, keys skipped. */
  readonly notes: readonly string[];
  /**
   * G is a backbone file (the DeepLab init file, torchvision's ImageNet MobileNetV2, or either
   * imported by npm run import-weights): its heads are legitimately absent when training.
   */
  readonly headsAbsent: Exemption | undefined;
  /** For a trainer checkpoint: the program that wrote it, and its config. */
  readonly program?: string;
  readonly config?: Readonly<Record<string, unknown>>;
}

export interface RestoredWeights {
  readonly groups: Readonly<Record<string, StateDict>>;
  readonly notes: readonly string[];
}

/**
 * What the weights are for. eval: the segmentation network alone, exactly. train: every model
 * group the file holds must fit exactly (the init file's heads excepted); models the file does not
 * hold at all (the discriminators of a G-only file) start from their initialisation, as in the
 * official script, and the log says so.
 */
export type RestorePurpose = "eval" | "train";

/**
 * The import rule for a .pth: the DeepLab init file (`DeepLab_resnet_pretrained_init*`) gets the
 * init rule; any other file `auto`, which is the model rule for model files (released models,
 * the official trainer's snapshots) and recognises a renamed init file by its wrapper prefix.
 */
export function ruleForPth(path: string): ConcreteRule | "auto" {
  return /^DeepLab_resnet_pretrained/i.test(basename(path)) ? "init" : "auto";
}

function loadPth(path: string, rule: ConcreteRule | "auto"): TE.TaskEither<TrainError, { dict: StateDict; note: string; rule: ConcreteRule }> {
  return pipe(
    readBytes(path),
    TE.flatMapEither((bytes) =>
      pipe(
        checkShaPrefix(path, bytes),
        E.flatMap(() => decodeTorchCheckpoint(path, bytes)),
        E.flatMap((ckpt) => applyImportRule(path, ckpt.tensors, rule)),
      ),
    ),
    TE.mapLeft(fromCheckpointError),
    TE.map((r) => ({
      dict: r.tensors,
      rule: r.rule,
      note: `${basename(path)}: rule ${r.rule} (${r.reason}), ${r.tensors.size} tensors${r.skipped.length > 0 ? `, skipped ${listNames(r.skipped.map((s) => s.key), 4)}` : ""}`,
    })),
  );
}

/** The official trainer saves `GTA5_<i>.pth` with `GTA5_<i>_D1.pth` and `GTA5_<i>_D2.pth` beside it. */
function discriminatorFiles(path: string): { model: string; path: string }[] {
  const stem = path.replace(/\.pth$/i, "");
  return ["D1", "D2"].map((model) => ({ model, path: `${stem}_${model}.pth` })).filter((f) => existsSync(f.path));
}

function readPth(path: string): TE.TaskEither<TrainError, ReadWeights> {
  const ds = discriminatorFiles(path);
  return pipe(
    loadPth(path, ruleForPth(path)),
    TE.flatMap((g) =>
      pipe(
        TE.traverseSeqArray((f: { model: string; path: string }) => pipe(loadPth(f.path, "auto"), TE.map((r) => ({ ...r, model: f.model }))))(ds),
        TE.map((dr) => ({
          groups: Object.fromEntries([["G", g.dict], ...dr.map((d) => [d.model, d.dict] as const)]),
          notes: [g.note, ...dr.map((d) => d.note)],
          headsAbsent: headExemption(g.rule),
        })),
      ),
    ),
  );
}

function readSafetensorsWeights(path: string): TE.TaskEither<TrainError, ReadWeights> {
  return pipe(
    readSafetensors(path),
    TE.mapLeft(fromCheckpointError),
    TE.flatMap((contents): TE.TaskEither<TrainError, ReadWeights> => {
      if (contents.metadata["checkpoint.format"] === undefined) {
        // A plain state dict with the PyTorch keys (npm run import-weights): the segmentation
        // network, or a backbone when the import rule that wrote it says so.
        const rule = contents.metadata["import_rule"];
        return TE.right({ groups: { G: contents.tensors }, notes: [`${basename(path)}: a plain state dict${rule ? ` (import rule ${rule})` : ""}, read as G (${contents.tensors.size} tensors)`], headsAbsent: headExemption(rule) });
      }
      return pipe(
        loadCheckpoint(path),
        TE.map((c) => {
          // Weights only: the networks, not the optimizer state or the iteration (that is --resume).
          const groups = Object.fromEntries(Object.entries(c.groups).filter(([model]) => !/^(sgd|adam)_/.test(model)));
          return {
            groups,
            notes: [`${basename(path)}: trainer checkpoint of ${c.program} at iteration ${c.iteration}; read ${Object.keys(groups).join(", ")} (optimizer state is for --resume)`],
            headsAbsent: undefined,
            program: c.program,
            config: c.config,
          };
        }),
      );
    }),
  );
}

/** Reads a --restore-from file (.pth or .safetensors) into model groups, without a program. */
export function readWeights(path: string): TE.TaskEither<TrainError, ReadWeights> {
  const read: TE.TaskEither<TrainError, ReadWeights> = /\.safetensors$/i.test(path)
    ? readSafetensorsWeights(path)
    : /\.(pth|pt|pkl)$/i.test(path)
      ? readPth(path)
      : TE.left(trainError("checkpoint", `${path}: --restore-from takes a .pth (PyTorch) or .safetensors file`));
  return pipe(
    TE.fromIO(() => existsSync(path)),
    TE.flatMap((exists) => (exists ? read : TE.left(fromCheckpointError(checkpointError("io", path, "no such file"))))),
  );
}

/**
 * Fits read weights to the program's slots: each model group used must cover the program's
 * tensors of that model exactly (`coverExactly` names the first tensor that does not), every
 * value must be finite. See RestorePurpose for what is used.
 */
export function fitWeights(path: string, r: ReadWeights, slots: readonly PersistentSlot[], purpose: RestorePurpose): E.Either<TrainError, RestoredWeights> {
  const models = modelsOf(slots).filter((m) => !/^(sgd|adam)_/.test(m));
  const g = r.groups["G"];
  if (g === undefined || g.size === 0) {
    return E.left(trainError("checkpoint", `${path} holds no segmentation network (G) tensors; weights must cover every tensor of the program's G`));
  }
  const used = purpose === "eval" ? ["G"] : models.filter((m) => r.groups[m] !== undefined);
  const notes = [...r.notes];
  const kept: Record<string, StateDict> = {};
  for (const model of used) {
    const dict = r.groups[model]!;
    const exemption = model === "G" && purpose === "train" ? r.headsAbsent : undefined;
    const fit = coverExactly(path, model, dict, expectedTable(slots, model), exemption);
    if (E.isLeft(fit)) return fit;
    if (exemption !== undefined && fit.right.exempted.length > 0) notes.push(exemptionNote(model, fit.right.exempted, exemption));
    kept[model] = dict;
  }
  const fresh = models.filter((m) => !used.includes(m));
  if (purpose === "train" && fresh.length > 0) notes.push(`not in the file, starting from their initialisation: ${fresh.join(", ")}`);
  const ignored = Object.keys(r.groups).filter((m) => !used.includes(m));
  if (ignored.length > 0) notes.push(`in the file but not used${purpose === "eval" ? " for evaluation" : " by this program"}: ${ignored.join(", ")}`);
  const finite = checkFinite(path, kept);
  return E.isLeft(finite) ? finite : E.right({ groups: kept, notes });
}

/** Weights to start from (or to evaluate), read and fitted exactly to the program (fitWeights). */
export function restoreWeights(path: string, slots: readonly PersistentSlot[], purpose: RestorePurpose): TE.TaskEither<TrainError, RestoredWeights> {
  return pipe(
    readWeights(path),
    TE.flatMapEither((r) => fitWeights(path, r, slots, purpose)),
  );
}

// ---------------------------------------------------------------------------------------------
// Snapshot files

/** `<dir>/<prefix>_<iteration>.safetensors`: the official `GTA5_<i>` naming, one file per snapshot. */
export function snapshotPath(dir: string, prefix: string, iteration: number | "best"): string {
  return join(dir, `${prefix}_${iteration}.safetensors`);
}

/** The snapshot with the most iterations in `dir` for `prefix`, if any. */
export function latestSnapshot(dir: string, prefix: string): { path: string; iteration: number } | undefined {
  if (!existsSync(dir)) return undefined;
  const pattern = new RegExp(`^${prefix.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}_(\\d+)\\.safetensors$`);
  let best: { path: string; iteration: number } | undefined;
  for (const f of readdirSync(dir)) {
    const m = pattern.exec(f);
    if (m === null) continue;
    const iteration = Number(m[1]);
    if (best === undefined || iteration > best.iteration) best = { path: join(dir, f), iteration };
  }
  return best;
}
