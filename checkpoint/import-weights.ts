// The import pipeline behind `npm run import-weights`: .pth → hash check → rule → optional
// shape table → safetensors with the PyTorch keys. Kept here (not in the script) so it is
// tested like the rest of the module; scripts/import_weights.ts only parses arguments and prints.

import { readFile, stat } from "node:fs/promises";
import { basename } from "node:path";
import * as E from "fp-ts/lib/Either.js";
import { pipe } from "fp-ts/lib/function.js";
import * as TE from "fp-ts/lib/TaskEither.js";
import { checkpointError, describeIoError, type CheckpointError } from "./errors";
import { applyImportRule, checkShaPrefix, describeShaCheck, type ImportResult, type ImportRule, type ShaCheck } from "./import-rules";
import { readBytes, writeSafetensors } from "./safetensors";
import { numel, showShape, type StateDict, type Tensor } from "./tensor";
import { decodeTorchCheckpoint, type TorchCheckpoint } from "./torch-load";
import { compareStateDict, listNames, parseExpectedTable, reportProblems, type ExpectedTable, type StateDictReport } from "./validate";

export interface ImportOptions {
  readonly input: string;
  readonly rule: ImportRule;
  /** Undefined: nothing is written (a dry run that still checks everything). */
  readonly out: string | undefined;
  readonly expectShapes: string | undefined;
}

export interface ImportSummary {
  readonly options: ImportOptions;
  readonly sha: ShaCheck;
  readonly checkpoint: TorchCheckpoint;
  readonly imported: ImportResult;
  /** What was (or would be) written: the imported tensors, minus keys the table does not know. */
  readonly written: StateDict;
  readonly report: StateDictReport | undefined;
}

export function importWeights(options: ImportOptions): TE.TaskEither<CheckpointError, ImportSummary> {
  return pipe(
    refuseOverwritingInput(options),
    TE.flatMap(() => TE.Do),
    TE.apS("bytes", readBytes(options.input)),
    TE.bind("sha", ({ bytes }) => TE.fromEither(checkShaPrefix(options.input, bytes))),
    TE.bind("checkpoint", ({ bytes }) => TE.fromEither(decodeTorchCheckpoint(options.input, bytes))),
    TE.bind("imported", ({ checkpoint }) => TE.fromEither(applyImportRule(options.input, checkpoint.tensors, options.rule))),
    TE.bind("table", () => (options.expectShapes === undefined ? TE.right(undefined) : readExpectedTable(options.expectShapes))),
    TE.bind("checked", ({ imported, table }) => TE.fromEither(checkAgainstTable(options.input, imported.tensors, table))),
    TE.tap(({ checked, sha, checkpoint, imported }) =>
      options.out === undefined
        ? TE.right(undefined)
        : writeSafetensors(options.out, {
            tensors: checked.written,
            metadata: {
              source: basename(options.input),
              source_sha256: sha.sha256,
              source_format: `pytorch-${checkpoint.format}`,
              import_rule: imported.rule,
            },
          }),
    ),
    TE.map(({ sha, checkpoint, imported, checked }) => ({ options, sha, checkpoint, imported, ...checked })),
  );
}

/**
 * `--out X.pth` for input X.pth (or a symlink, a hard link, another spelling of it) would replace
 * the only copy of the source with its conversion. Same file = same device and inode, which is
 * what realpath comparison means, hard links included.
 */
function refuseOverwritingInput(options: ImportOptions): TE.TaskEither<CheckpointError, void> {
  return async () => {
    if (options.out === undefined) return E.right(undefined);
    const [input, out] = await Promise.all([stat(options.input).catch(() => undefined), stat(options.out).catch(() => undefined)]);
    if (input === undefined || out === undefined || input.dev !== out.dev || input.ino !== out.ino) return E.right(undefined);
    return E.left(checkpointError("io", options.input, `--out ${options.out} is the input file itself; the import would overwrite its source (choose another --out)`));
  };
}

export function readExpectedTable(path: string): TE.TaskEither<CheckpointError, ExpectedTable> {
  return pipe(
    TE.tryCatch(
      async () => JSON.parse(await readFile(path, "utf8")) as unknown,
      (e) => checkpointError("io", path, `cannot read the shape table: ${describeIoError(e)}`),
    ),
    TE.flatMapEither((json) => parseExpectedTable(path, json)),
  );
}

/**
 * Wrong shapes and dtypes fail, naming each tensor. Missing keys are only reported: the init
 * file lacks the heads by design. Keys the table does not know are reported and not written,
 * the evaluation-loading rule of spec §8.2.
 */
function checkAgainstTable(
  file: string,
  tensors: StateDict,
  table: ExpectedTable | undefined,
): E.Either<CheckpointError, { readonly written: StateDict; readonly report: StateDictReport | undefined }> {
  if (table === undefined) return E.right({ written: tensors, report: undefined });
  const report = compareStateDict(tensors, table);
  const problems = reportProblems(report, { allowMissing: true, allowUnexpected: true });
  if (problems.length > 0) {
    const culprits = new Set([...report.shapeMismatches, ...report.dtypeMismatches].map((m) => m.key));
    const only = culprits.size === 1 ? [...culprits][0] : undefined;
    return E.left(checkpointError("mismatch", file, problems.join("; "), only));
  }
  return E.right({ written: new Map([...tensors].filter(([k]) => table.has(k))), report });
}

export function renderSummary(s: ImportSummary): string {
  const lines: string[] = [];
  const row = (label: string, value: string) => lines.push(`${label.padEnd(12)}${value}`);
  const where = s.checkpoint.container.length > 0 ? `, state dict under '${s.checkpoint.container.join(".")}'` : "";
  row("file", `${s.options.input} (${s.checkpoint.format} format${where})`);
  if (s.checkpoint.otherEntries.length > 0) row("ignored", `top-level entries ${s.checkpoint.otherEntries.join(", ")}`);
  row("sha256", describeShaCheck(s.sha));
  row("rule", `${s.imported.rule}: ${s.imported.reason}`);
  if (s.imported.strippedModulePrefix) row("", "stripped the DataParallel 'module.' prefix");
  row("read", `${s.checkpoint.tensors.size} tensors`);
  for (const [why, keys] of groupSkipped(s.imported)) row("skipped", `${listNames(keys, 4)} (${why})`);
  if (s.report !== undefined) {
    row("table", "every tensor has the expected shape");
    if (s.report.missing.length > 0) row("missing", `${listNames(s.report.missing, 8)} (kept at their initial values)`);
    if (s.report.unexpected.length > 0) row("not loaded", `${listNames(s.report.unexpected, 8)} (not in the table)`);
  }
  row("tensors", `${s.written.size}`);
  row("parameters", `${countElements(s.written).toLocaleString("en-US")} elements`);
  const keys = [...s.written.entries()];
  if (keys.length > 0) {
    row("first", describeEntry(keys[0]!));
    row("last", describeEntry(keys.at(-1)!));
  }
  row("output", s.options.out ?? "(dry run: nothing written)");
  return lines.join("\n");
}

function groupSkipped(r: ImportResult): Map<string, string[]> {
  const groups = new Map<string, string[]>();
  for (const { key, why } of r.skipped) groups.set(why, [...(groups.get(why) ?? []), key]);
  return groups;
}

export function countElements(dict: StateDict): number {
  let total = 0;
  for (const t of dict.values()) total += numel(t.shape);
  return total;
}

function describeEntry([key, t]: readonly [string, Tensor]): string {
  return `${key} ${t.dtype} ${showShape(t.shape)}`;
}
