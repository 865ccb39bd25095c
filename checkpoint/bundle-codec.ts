// Trainer checkpoints: several state dicts and the run's scalars in one safetensors file.
//
// Each group's tensors are stored under `<group>.<key>` (`G.conv1.weight`,
// `opt.G.momentum.conv1.weight`, `D1.conv1.weight`), so the file stays a plain safetensors file
// that any tool can list. Group names may contain dots, so the prefix alone is ambiguous
// (`opt.G.momentum.x` could be group `opt` key `G.momentum.x`); the group list is therefore
// recorded in the metadata, and names where one is a dotted prefix of another are refused.
//
// Metadata values (iteration, RNG state, config) are stored JSON-encoded, one metadata string
// per entry, because safetensors metadata may only hold strings.
//
// This file is the format (free of Node, shared with the browser build); bundle.ts reads and
// writes files of it.

import * as E from "fp-ts/lib/Either.js";
import { checkpointError, type CheckpointError } from "./errors";
import type { SafetensorsContents } from "./safetensors-codec";
import type { StateDict, Tensor } from "./tensor";

export interface CheckpointBundle {
  readonly groups: Readonly<Record<string, StateDict>>;
  /** Any JSON-serialisable values. */
  readonly metadata: Readonly<Record<string, unknown>>;
}

const FORMAT_KEY = "checkpoint.format";
const GROUPS_KEY = "checkpoint.groups";
const FORMAT = "adaptsegnet-checkpoint/1";

export function bundleToSafetensors(file: string, bundle: CheckpointBundle): E.Either<CheckpointError, SafetensorsContents> {
  const names = Object.keys(bundle.groups).sort();
  const bad = checkGroupNames(names);
  if (bad !== undefined) return E.left(checkpointError("mismatch", file, bad));
  const metadata: Record<string, string> = { [FORMAT_KEY]: FORMAT, [GROUPS_KEY]: JSON.stringify(names) };
  for (const [k, v] of Object.entries(bundle.metadata)) {
    if (k.startsWith("checkpoint.")) return E.left(checkpointError("mismatch", file, `metadata key ${k} is reserved`));
    const json = JSON.stringify(v);
    if (json === undefined) return E.left(checkpointError("mismatch", file, `metadata ${k} is not JSON-serialisable`));
    metadata[k] = json;
  }
  const tensors = new Map<string, Tensor>();
  for (const group of names) {
    for (const [key, t] of bundle.groups[group]!) tensors.set(`${group}.${key}`, t);
  }
  return E.right({ tensors, metadata });
}

export function bundleFromSafetensors(file: string, contents: SafetensorsContents): E.Either<CheckpointError, CheckpointBundle> {
  const corrupt = (detail: string, tensor?: string) => E.left(checkpointError("corrupt", file, detail, tensor));
  const { [FORMAT_KEY]: format, [GROUPS_KEY]: groupsJson, ...rest } = contents.metadata;
  if (format !== FORMAT) return corrupt(`not a trainer checkpoint (${FORMAT_KEY} is ${JSON.stringify(format)}, expected ${FORMAT})`);
  const names = parseJson(groupsJson ?? "");
  if (!Array.isArray(names) || !names.every((n): n is string => typeof n === "string") || checkGroupNames(names) !== undefined) {
    return corrupt(`${GROUPS_KEY} is not a valid list of group names: ${JSON.stringify(groupsJson)}`);
  }
  const groups: Record<string, Map<string, Tensor>> = Object.fromEntries(names.map((n) => [n, new Map()]));
  for (const [name, t] of contents.tensors) {
    const group = names.find((g) => name.startsWith(`${g}.`));
    if (group === undefined) return corrupt(`tensor belongs to none of the groups ${names.join(", ")}`, name);
    groups[group]!.set(name.slice(group.length + 1), t);
  }
  const metadata: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(rest)) {
    const parsed = parseJson(v);
    if (parsed === undefined) return corrupt(`metadata ${k} is not JSON`);
    metadata[k] = parsed;
  }
  return E.right({ groups, metadata });
}

/** Why a set of group names cannot be stored unambiguously, or undefined. */
export function checkGroupNames(names: readonly string[]): string | undefined {
  for (const n of names) {
    if (n.length === 0 || n.startsWith(".") || n.endsWith(".") || n.includes("..")) return `invalid group name ${JSON.stringify(n)}`;
  }
  for (const a of names) {
    for (const b of names) {
      if (a !== b && b.startsWith(`${a}.`)) return `group ${a} is a prefix of group ${b}, so their keys would be ambiguous`;
    }
  }
  if (new Set(names).size !== names.length) return "duplicate group names";
  return undefined;
}

function parseJson(s: string): unknown {
  try {
    return JSON.parse(s) as unknown;
  } catch {
    return undefined;
  }
}
