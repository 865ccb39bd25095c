// Parameters and state, declared as nested records whose paths become names.
//
// A model is a tree of specs; `declareModel` turns it into the same tree of tensors, naming
// each leaf by its path: `layer3.22.bn3.running_var` is both the DSL name and the PyTorch
// state-dict key of that tensor, so weights move between the two with no renaming. Arrays in
// the tree are numbered like nn.Sequential / nn.ModuleList children.

import type { InitSpec } from "../format/module";
import { type DType, type F32, type InputRole, type Shape, type Tensor } from "./ir";
import { input } from "./ops";
import { DslError } from "./shape";

/**
 * How a tensor's first value is drawn: the module schema's InitSpec (format/module.ts), one
 * declaration, so a declared init reaches the generated module and format/init.ts unchanged.
 */
export type Init = InitSpec;

export const normal = (std: number, mean = 0): Init => ({ kind: "normal", mean, std });
export const uniform = (low: number, high: number): Init => ({ kind: "uniform", low, high });
export const constant = (value: number): Init => ({ kind: "constant", value });
export const convDefault = (fanIn: number): Init => ({ kind: "convDefault", fanIn });

export interface ParamSpec<S extends Shape = Shape> {
  readonly kind: "param" | "state";
  readonly shape: S;
  readonly dtype: DType;
  readonly init: Init;
  /** false for frozen parameters (e.g. DeepLab's BN affine): no gradient is taken. */
  readonly trainable: boolean;
  /** The optimizer group (e.g. "backbone", "head"); learning-rate multipliers key on it. */
  readonly group: string;
}

export function param<const S extends Shape>(
  shape: S,
  opts: { readonly init: Init; readonly group?: string; readonly trainable?: boolean },
): ParamSpec<S> {
  return { kind: "param", shape, dtype: "f32", init: opts.init, trainable: opts.trainable ?? true, group: opts.group ?? "default" };
}

/** Non-trainable state carried across steps (BN running statistics, optimizer moments). */
export function state<const S extends Shape>(shape: S, init: Init, dtype: DType = "f32"): ParamSpec<S> {
  return { kind: "state", shape, dtype, init, trainable: false, group: "state" };
}

export type SpecTree = { readonly [key: string]: SpecNode };
export type SpecNode = ParamSpec | SpecTree | readonly SpecNode[] | undefined;

/** The tree of tensors that a spec tree declares, leaf for leaf. */
export type Declared<T> = T extends ParamSpec<infer S>
  ? F32<S["length"]>
  : T extends readonly unknown[]
    ? { readonly [K in keyof T]: Declared<T[K]> }
    : T extends undefined
      ? undefined
      : { readonly [K in keyof T]: Declared<T[K]> };

/** One declared tensor of a program: its model, its state-dict key and its spec. */
export interface ParamEntry {
  /** Unique within a program: `<model>/<key>`. */
  readonly name: string;
  readonly model: string;
  /** The PyTorch state-dict key within its model, e.g. `layer1.0.bn1.running_mean`. */
  readonly key: string;
  readonly spec: ParamSpec;
  readonly tensor: Tensor;
}

export interface Model<T> {
  readonly name: string;
  readonly p: Declared<T>;
  readonly entries: readonly ParamEntry[];
}

export class ParamError extends DslError {
  constructor(message: string) {
    super(message);
    this.name = "ParamError";
  }
}

function isSpec(n: SpecNode): n is ParamSpec {
  return typeof n === "object" && n !== null && !Array.isArray(n) && "kind" in n && "shape" in n;
}

/**
 * Declares every spec of `tree` as an input node named `<model>/<path>`; returns the tree of
 * tensors and the flat list of entries in declaration order.
 */
export function declareModel<T extends SpecTree>(model: string, tree: T): Model<T> {
  if (!/^[A-Za-z0-9_]+$/.test(model)) throw new ParamError(`model name "${model}" must be alphanumeric`);
  const entries: ParamEntry[] = [];
  const walk = (node: SpecNode, path: string[]): unknown => {
    if (node === undefined) return undefined;
    if (isSpec(node)) {
      const key = path.join(".");
      const role: InputRole = node.kind;
      const tensor = input(`${model}/${key}`, node.shape, node.dtype, role);
      entries.push({ name: `${model}/${key}`, model, key, spec: node, tensor });
      return tensor;
    }
    if (Array.isArray(node)) return node.map((child, i) => walk(child, [...path, String(i)]));
    const out: Record<string, unknown> = {};
    for (const [k, child] of Object.entries(node as SpecTree)) {
      if (k.includes(".") || k.includes("/")) throw new ParamError(`parameter path segment "${k}" may not contain "." or "/"`);
      out[k] = walk(child, [...path, k]);
    }
    return out;
  };
  const p = walk(tree, []) as Declared<T>;
  return { name: model, p, entries };
}

/** Declares loose state (e.g. an optimizer's moments) under a model name with explicit keys. */
export function declareState(model: string, items: readonly { readonly key: string; readonly spec: ParamSpec }[]): ParamEntry[] {
  return items.map(({ key, spec }) => {
    const name = `${model}/${key}`;
    return { name, model, key, spec, tensor: input(name, spec.shape, spec.dtype, spec.kind) };
  });
}

/** The entry an input tensor was declared by, looked up by name. */
export function entryOf(entries: readonly ParamEntry[], t: Tensor): ParamEntry {
  const name = t.node.op === "input" ? t.node.attrs.name : undefined;
  const e = entries.find((x) => x.name === name);
  if (!e) throw new ParamError(`tensor ${name ?? `#${t.id} (${t.node.op})`} is not a declared parameter`);
  return e;
}

export const trainable = (entries: readonly ParamEntry[]): ParamEntry[] =>
  entries.filter((e) => e.spec.kind === "param" && e.spec.trainable);
