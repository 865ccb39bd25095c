// How PyTorch checkpoints map onto this project's state dicts (spec §8).
//
// - init: `DeepLab_resnet_pretrained_init` keys carry one wrapper module name
//   (`Scale.layer3.22.bn3.running_var`); the official train script strips it and skips the
//   init's own classifier under `layer5` (2048-in, incompatible with the 1024-in aux head).
//   The official condition is "skip layer5 only when num_classes == 19": with any other class
//   count it copies the 2048-in classifier into the 1024-in head and crashes. No class count
//   makes that copy meaningful, so this rule skips layer5 always (ADVENT does the same).
//   `num_batches_tracked` is dropped: the official run starts those counters at 0.
// - model: released models (`GTA2Cityscapes_multi-*.pth`) use the flat keys directly, less the
//   `num_batches_tracked` counters that PyTorch >= 0.4.1 adds (unused with a fixed BN momentum).
// - advent-d: ADVENT's discriminator is an nn.Sequential; its convs at indices 0,2,4,6,8 are the
//   official FCDiscriminator's conv1..conv4 and classifier.
// - mobilenet: torchvision's ImageNet `mobilenet_v2` state dict (`features.0..18`,
//   `classifier.1`) as the backbone of DeepLab-MobileNetV2 (examples/mobilenet/networks.ts):
//   features.0..17 keep their keys; features.18 (the 1x1 conv to 1280 channels) and the
//   1000-class classifier are skipped, the network has neither; the segmentation heads are not
//   in the file and start from their initialisation, as DeepLab's heads do with the init file.
// - auto: picks one of the above from the keys.
// Every rule first strips the `module.` prefix that nn.DataParallel adds, when all keys have it.
//
// Official file names end in `-<first hex digits of the SHA-256>.pth` (model_zoo's convention);
// `checkShaPrefix` verifies a file against its own name.

import { createHash } from "node:crypto";
import { basename } from "node:path";
import * as E from "fp-ts/lib/Either.js";
import { checkpointError, type CheckpointError } from "./errors";
import type { StateDict, Tensor } from "./tensor";
import { compareStateDict, type ExpectedTable } from "./validate";

export type ImportRule = "init" | "model" | "advent-d" | "mobilenet" | "auto";
export type ConcreteRule = Exclude<ImportRule, "auto">;
export const IMPORT_RULES: readonly ImportRule[] = ["init", "model", "advent-d", "mobilenet", "auto"];

export interface SkippedKey {
  readonly key: string;
  readonly why: string;
}

export interface ImportResult {
  readonly rule: ConcreteRule;
  /** Why `auto` chose `rule`; the rule's name when it was given explicitly. */
  readonly reason: string;
  readonly strippedModulePrefix: boolean;
  readonly tensors: StateDict;
  readonly skipped: readonly SkippedKey[];
}

export function isImportRule(s: string): s is ImportRule {
  return (IMPORT_RULES as readonly string[]).includes(s);
}

export function applyImportRule(file: string, dict: StateDict, rule: ImportRule): E.Either<CheckpointError, ImportResult> {
  const { dict: unwrapped, stripped } = stripDataParallelPrefix(dict);
  const chosen = rule === "auto" ? chooseRule(unwrapped) : { rule, reason: `--rule ${rule}` };
  const mapped = mapKeys(file, unwrapped, chosen.rule);
  return E.map((m: Mapped) => ({ ...chosen, strippedModulePrefix: stripped, ...m }))(mapped);
}

interface Mapped {
  readonly tensors: StateDict;
  readonly skipped: readonly SkippedKey[];
}

function mapKeys(file: string, dict: StateDict, rule: ConcreteRule): E.Either<CheckpointError, Mapped> {
  const tensors = new Map<string, Tensor>();
  const skipped: SkippedKey[] = [];
  for (const [key, t] of dict) {
    const target = targetKey(key, rule);
    switch (target.kind) {
      case "keep":
        if (tensors.has(target.key)) {
          return E.left(checkpointError("corrupt", file, `two keys map to ${target.key} under rule ${rule}`, key));
        }
        tensors.set(target.key, t);
        break;
      case "skip":
        skipped.push({ key, why: target.why });
        break;
      case "error":
        return E.left(checkpointError("mismatch", file, `${target.why} (rule ${rule})`, key));
      default: {
        const never: never = target;
        return never;
      }
    }
  }
  return E.right({ tensors, skipped });
}

export type KeyTarget =
  | { readonly kind: "keep"; readonly key: string }
  | { readonly kind: "skip"; readonly why: string }
  | { readonly kind: "error"; readonly why: string };

export function targetKey(key: string, rule: ConcreteRule): KeyTarget {
  switch (rule) {
    case "init":
      return initKey(key);
    case "model":
      // PyTorch >= 0.4.1 saves a BN step counter; it changes nothing here (BN momentum is fixed
      // at 0.1, the counter is read only when momentum is None), so it is not a program tensor.
      return isBatchCounter(key) ? { kind: "skip", why: "num_batches_tracked is unused with a fixed BN momentum" } : { kind: "keep", key };
    case "advent-d": {
      const official = adventToOfficialDiscriminatorKey(key);
      return official === undefined
        ? { kind: "error", why: "not an ADVENT discriminator key (expected {0,2,4,6,8}.{weight,bias})" }
        : { kind: "keep", key: official };
    }
    case "mobilenet":
      return mobilenetKey(key);
    default: {
      const never: never = rule;
      return never;
    }
  }
}

/** Spec §8.2: drop the leading module name; skip the init's own layer5 classifier. */
export function initKey(key: string): KeyTarget {
  const dot = key.indexOf(".");
  if (dot <= 0 || dot === key.length - 1) return { kind: "error", why: "init keys carry a leading module name (Scale.…)" };
  const stripped = key.slice(dot + 1);
  if (stripped === "layer5" || stripped.startsWith("layer5.")) {
    return { kind: "skip", why: "layer5 is the init's own 2048-in classifier; the 1024-in aux head stays random" };
  }
  if (isBatchCounter(stripped)) {
    return { kind: "skip", why: "num_batches_tracked starts at 0, as in the official run" };
  }
  return { kind: "keep", key: stripped };
}

/** torchvision's mobilenet_v2 keys onto DeepLab-MobileNetV2's backbone (features.0..17). */
export function mobilenetKey(key: string): KeyTarget {
  if (isBatchCounter(key)) return { kind: "skip", why: "num_batches_tracked is unused with a fixed BN momentum" };
  if (key.startsWith("classifier.")) return { kind: "skip", why: "ImageNet's classifier; the segmentation heads start from their initialisation" };
  const block = /^features\.(\d+)\./.exec(key);
  if (block === null) return { kind: "error", why: "not a torchvision mobilenet_v2 key (features.N.… or classifier.1.…)" };
  if (Number(block[1]) === MOBILENET_LAST_FEATURE) {
    return { kind: "skip", why: "features.18, the 1x1 conv to 1280 channels, feeds ImageNet's classifier; DeepLab-MobileNetV2 stops at features.17" };
  }
  return { kind: "keep", key };
}

/** torchvision's features.18: the last ConvBNReLU, which DeepLab-MobileNetV2 drops. */
const MOBILENET_LAST_FEATURE = 18;

/** An inverted residual's key (`features.3.conv.1.0.weight`): only MobileNetV2 nests `conv` under features. */
const isMobileNetKey = (key: string): boolean => /^features\.\d+\.conv\./.test(key);

const isBatchCounter = (key: string): boolean => key === "num_batches_tracked" || key.endsWith(".num_batches_tracked");

/** nn.DataParallel saves every key as `module.<key>`; strip only when all keys agree. */
export function stripDataParallelPrefix(dict: StateDict): { readonly dict: StateDict; readonly stripped: boolean } {
  const keys = [...dict.keys()];
  if (keys.length === 0 || !keys.every((k) => k.startsWith("module."))) return { dict, stripped: false };
  return { dict: new Map([...dict].map(([k, t]) => [k.slice("module.".length), t])), stripped: true };
}

// ---------------------------------------------------------------------------------------------
// Discriminator key maps (spec §8.3)

const ADVENT_TO_OFFICIAL: Readonly<Record<string, string>> = { "0": "conv1", "2": "conv2", "4": "conv3", "6": "conv4", "8": "classifier" };
const OFFICIAL_TO_ADVENT: Readonly<Record<string, string>> = Object.fromEntries(
  Object.entries(ADVENT_TO_OFFICIAL).map(([a, o]) => [o, a]),
);

function mapDiscriminatorKey(key: string, table: Readonly<Record<string, string>>): string | undefined {
  const [layer, param, ...rest] = key.split(".");
  if (layer === undefined || rest.length > 0 || (param !== "weight" && param !== "bias")) return undefined;
  const mapped = Object.hasOwn(table, layer) ? table[layer] : undefined;
  return mapped === undefined ? undefined : `${mapped}.${param}`;
}

export function adventToOfficialDiscriminatorKey(key: string): string | undefined {
  return mapDiscriminatorKey(key, ADVENT_TO_OFFICIAL);
}

export function officialToAdventDiscriminatorKey(key: string): string | undefined {
  return mapDiscriminatorKey(key, OFFICIAL_TO_ADVENT);
}

// ---------------------------------------------------------------------------------------------
// Choosing a rule from the keys

/** Top-level module names of DeeplabMulti, Res_Deeplab, DeeplabVGG and FCDiscriminator. */
const MODEL_TOP_LEVEL = new Set(["conv1", "bn1", "layer1", "layer2", "layer3", "layer4", "layer5", "layer6", "features", "classifier", "conv2", "conv3", "conv4"]);

export function chooseRule(dict: StateDict): { readonly rule: ConcreteRule; readonly reason: string } {
  const keys = [...dict.keys()];
  if (keys.length > 0 && keys.every((k) => adventToOfficialDiscriminatorKey(k) !== undefined)) {
    return { rule: "advent-d", reason: "every key is an ADVENT Sequential discriminator key ({0,2,4,6,8}.{weight,bias})" };
  }
  if (keys.some(isMobileNetKey) && keys.every((k) => k.startsWith("features.") || k.startsWith("classifier.1."))) {
    return { rule: "mobilenet", reason: "features.N.conv.… and classifier.1.… keys: torchvision's ImageNet mobilenet_v2" };
  }
  const heads = new Set(keys.map((k) => k.split(".")[0]!));
  const [only] = heads;
  if (heads.size === 1 && only !== undefined && !MODEL_TOP_LEVEL.has(only) && keys.every((k) => k.includes("."))) {
    return { rule: "init", reason: `every key sits under one wrapper module (${only}.), as in the DeepLab init file` };
  }
  return { rule: "model", reason: "keys are model keys (no common wrapper module)" };
}

// ---------------------------------------------------------------------------------------------
// Evaluation loading (spec §8.2): keys present in the model are loaded, others reported

export interface ModelSelection {
  readonly loaded: StateDict;
  /** In the checkpoint, not in the model: reported and left out. */
  readonly notInModel: readonly string[];
  /** In the model, not in the checkpoint: they keep their initial values. */
  readonly missing: readonly string[];
}

export function selectModelKeys(dict: StateDict, model: ExpectedTable): ModelSelection {
  const report = compareStateDict(dict, model);
  const loaded = new Map([...dict].filter(([k]) => model.has(k)));
  return { loaded, notInModel: report.unexpected, missing: report.missing };
}

// ---------------------------------------------------------------------------------------------
// SHA-256 prefix in file names

export type ShaCheck =
  | { readonly kind: "verified"; readonly prefix: string; readonly sha256: string }
  | { readonly kind: "no-prefix"; readonly sha256: string };

/**
 * The hash prefix a file name promises, if any: the part after the last `-` of the stem, when
 * it is at least 6 lowercase hex digits (model_zoo's convention; `resnet101-caffe.pth` and
 * `vgg16-00b39a1b-updated.pth` promise nothing, the latter having been modified after hashing).
 */
export function expectedShaPrefix(path: string): string | undefined {
  const stem = basename(path).replace(/\.[^.]*$/, "");
  const match = /-([0-9a-f]{6,64})$/.exec(stem);
  return match?.[1];
}

export function sha256Hex(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

export function checkShaPrefix(path: string, bytes: Uint8Array): E.Either<CheckpointError, ShaCheck> {
  const sha256 = sha256Hex(bytes);
  const prefix = expectedShaPrefix(path);
  if (prefix === undefined) return E.right({ kind: "no-prefix", sha256 });
  if (!sha256.startsWith(prefix)) {
    return E.left(checkpointError("hash", path, `the name promises a SHA-256 starting with ${prefix}, the file hashes to ${sha256}`));
  }
  return E.right({ kind: "verified", prefix, sha256 });
}

export function describeShaCheck(check: ShaCheck): string {
  switch (check.kind) {
    case "verified":
      return `SHA-256 ${check.sha256} matches the prefix ${check.prefix} in the file name`;
    case "no-prefix":
      return `SHA-256 ${check.sha256} (the file name carries no hash prefix to check)`;
    default: {
      const never: never = check;
      return never;
    }
  }
}
