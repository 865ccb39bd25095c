// The graph IR: every DSL value is an immutable node of this graph.
//
// A `Tensor` is a node plus its static type (shape and dtype). Nodes are created only by the
// builders in `ops.ts`, which check shapes before a node exists, so every node in a graph is
// well-formed. Passes (the interpreter, autodiff, codegen) are functions over these records; a
// switch over `node.op` is exhaustive.

import type { BinaryAttrs } from "./ops/binary";
import type { ConvAttrs, ConvOpAttrs } from "./ops/conv";
import type { DepthwiseAttrs } from "./ops/depthwise";
import type { MatmulAttrs } from "./ops/matmul";
import type { NormalizationAttrs } from "./ops/normalization";
import type { ReductionAttrs } from "./ops/reductions";
import type { PoolAttrs, SamplingAttrs } from "./ops/sampling";
import type { SourceAttrs } from "./ops/sources";
import type { UnaryAttrs } from "./ops/unary";
import type { ViewAttrs } from "./ops/views";

import type { TensorDType as DType } from "../format/module"; // declared once, in the schema
export type { DType };
export type Shape = readonly number[];
export type Pair = readonly [number, number];

/** Where an `input` node's value comes from when a program runs. */
export type InputRole = "input" | "param" | "state";

/**
 * Attributes of each op: the key set is the op set. Each family of ops declares its own
 * attributes next to its builders and its registry records (ops/*.ts, ops/def.ts).
 */
export interface OpAttrs
  extends SourceAttrs,
    UnaryAttrs,
    BinaryAttrs,
    ReductionAttrs,
    ViewAttrs,
    ConvOpAttrs,
    DepthwiseAttrs,
    SamplingAttrs,
    MatmulAttrs,
    NormalizationAttrs {}

export type { ConvAttrs, PoolAttrs };

export type OpName = keyof OpAttrs;

/** One node: an op, its operands and its attributes, discriminated by `op`. */
export type Node = {
  [K in OpName]: { readonly op: K; readonly inputs: readonly Tensor[]; readonly attrs: OpAttrs[K] };
}[OpName];

export type NodeOf<K extends OpName> = Extract<Node, { op: K }>;

/**
 * A value of the DSL. `R` (rank) and `D` (dtype) live in the type so that tsc rejects misuse
 * (an i32 label map added to f32 logits, a rank-3 tensor passed to conv2d); exact sizes are
 * checked when the node is built.
 */
export interface Tensor<R extends number = number, D extends DType = DType> {
  readonly id: number;
  readonly node: Node;
  readonly shape: Shape;
  readonly dtype: D;
  readonly rank: R;
  /** The module path the node was built under (e.g. `layer3.7.conv2`), for kernel names. */
  readonly scope: string;
}

export type F32<R extends number = number> = Tensor<R, "f32">;
export type I32<R extends number = number> = Tensor<R, "i32">;
export type Bool<R extends number = number> = Tensor<R, "bool">;

let nextId = 0;
const scopeStack: string[] = [];

/** Runs `body` with `name` appended to the current scope; nodes built inside carry it. */
export function withScope<T>(name: string, body: () => T): T {
  scopeStack.push(name);
  try {
    return body();
  } finally {
    scopeStack.pop();
  }
}

/**
 * Runs `body` under exactly `scope` (not appended): the gradient of a node is built under
 * `grad/<the node's scope>`, so a backward kernel names the module whose forward pass it
 * differentiates (`grad/source.layer4.0.conv2`), whatever scope grad() was called in.
 */
export function withExactScope<T>(scope: string, body: () => T): T {
  const saved = scopeStack.splice(0, scopeStack.length, scope);
  try {
    return body();
  } finally {
    scopeStack.splice(0, scopeStack.length, ...saved);
  }
}

/** The scope prefix of nodes built by a gradient rule (see withExactScope). */
export const GRAD_SCOPE = "grad/";

export function currentScope(): string {
  return scopeStack.join(".");
}

/** The only place nodes are created. Callers (ops.ts) have checked shapes and dtypes. */
export function makeTensor<R extends number, D extends DType>(
  node: Node,
  shape: Shape,
  dtype: D,
): Tensor<R, D> {
  return Object.freeze({
    id: nextId++,
    node: Object.freeze(node),
    shape: Object.freeze([...shape]),
    dtype,
    rank: shape.length as R,
    scope: currentScope(),
  });
}

export function numel(shape: Shape): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** Row-major strides of a shape. */
export function stridesOf(shape: Shape): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    s[i] = acc;
    acc *= shape[i]!;
  }
  return s;
}

/**
 * Every node reachable from `roots`, operands before users (a topological order). Traversal
 * is iterative: ResNet-101 graphs are deep enough to overflow a recursive walk.
 */
export function topoSort(roots: readonly Tensor[]): Tensor[] {
  const order: Tensor[] = [];
  const state = new Map<number, 1 | 2>(); // 1 = on stack, 2 = emitted
  const stack: { t: Tensor; next: number }[] = [];
  for (const root of roots) {
    if (state.has(root.id)) continue;
    stack.push({ t: root, next: 0 });
    state.set(root.id, 1);
    while (stack.length > 0) {
      const top = stack[stack.length - 1]!;
      const inputs = top.t.node.inputs;
      if (top.next < inputs.length) {
        const child = inputs[top.next++]!;
        if (!state.has(child.id)) {
          state.set(child.id, 1);
          stack.push({ t: child, next: 0 });
        }
      } else {
        stack.pop();
        state.set(top.t.id, 2);
        order.push(top.t);
      }
    }
  }
  return order;
}
