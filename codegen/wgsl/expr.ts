// Inline expressions: how a kernel computes a value it does not read from a buffer.
//
// `valueAt(k, scope, t, idx)` returns a WGSL expression for tensor t at the multi-index idx
// (one i32 expression per axis). Materialised tensors are loads from a binding; elementwise
// ops are WGSL operators on their operands at the same index; views rewrite the index; an
// anchor fused into this kernel (E1 in fusion.ts) is replaced by the template's accumulator.
// Every computed sub-expression is bound once with `let` in the current scope, so a value
// used twice at the same index is computed once, and the output reads like the graph.

import { type DType, type InlineContext, type Lowering, OPS, type OpName, type Shape, type Tensor, linearTaps, stridesOf } from "../../dsl/index";

/** A buffer a kernel binds: a graph tensor, a template's temporary, or constant data. */
export type BufferRef =
  | { readonly kind: "tensor"; readonly tensor: Tensor }
  | { readonly kind: "temp"; readonly name: string; readonly bytes: number }
  | { readonly kind: "constant"; readonly name: string; readonly words: readonly number[] };

export interface Binding {
  readonly ref: BufferRef;
  readonly access: "read" | "read_write";
  readonly name: string;
  readonly elem: "f32" | "i32" | "u32" | "vec4<f32>";
}

export const storageElem = (d: DType): Binding["elem"] => (d === "bool" ? "u32" : d);
export const wgslType = (d: DType): string => (d === "bool" ? "bool" : d);

/** A WGSL literal of the given dtype. f32 values print their exact float32 value. */
export function literal(value: number, dtype: DType): string {
  switch (dtype) {
    case "bool":
      return value ? "true" : "false";
    case "i32":
      return value < 0 ? `(${value}i)` : `${value}i`;
    case "f32": {
      // WGSL constant expressions may not be infinite or NaN. Infinities become the largest
      // finite f32, which is what they are used for here (identities of max and min).
      if (Number.isNaN(value)) throw new Error("codegen: NaN constants cannot be written in WGSL");
      if (value === Infinity) return "3.4028234663852886e+38f";
      if (value === -Infinity) return "(-3.4028234663852886e+38f)";
      const s = String(Math.fround(value));
      const text = /[.e]/.test(s) ? s : `${s}.0`;
      return value < 0 || Object.is(value, -0) ? `(${text}f)` : `${text}f`;
    }
    default: {
      const never: never = dtype;
      throw new Error(`unknown dtype ${String(never)}`);
    }
  }
}

/** WGSL helper functions a kernel may call; included once when used. */
export const HELPERS = {
  // NaN, read from the bits: |x| above +Inf's pattern. WGSL lets a compiler assume float
  // arithmetic never sees a NaN, so `x != x` may fold to false; integer operations it keeps.
  isnan: `fn isnan_(x: f32) -> bool {
  return (bitcast<u32>(x) & 0x7fffffffu) > 0x7f800000u;
}`,
  // max, min and relu that return NaN when an operand is NaN, as PyTorch's maximum, minimum,
  // relu (x <= 0 ? 0 : x), clamp, max_pool2d and amax do; WGSL's max/min may return the other
  // operand (lavapipe does: max(NaN, 0) = 0, so one NaN weight gave a finite loss). The NaN
  // operand itself is returned: arithmetic like a + b may be folded (lavapipe turns x + -x
  // into 0). Cost: two integer ops per NaN test and a select each, next to the max, in
  // kernels bound by memory traffic.
  max: `fn max_(a: f32, b: f32) -> f32 {
  return select(select(max(a, b), b, isnan_(b)), a, isnan_(a));
}`,
  min: `fn min_(a: f32, b: f32) -> f32 {
  return select(select(min(a, b), b, isnan_(b)), a, isnan_(a));
}`,
  relu: `fn relu_(x: f32) -> f32 {
  return select(max(x, 0.0f), x, isnan_(x));
}`,
  // The CPU variants' inner step: a + s.x*y0 + s.y*y1 + s.z*y2 + s.w*y3 as one chain of FMAs,
  // so a spilled accumulator is loaded and stored once per 4 products (LLVM inlines it).
  mac4: `fn mac4(s: vec4<f32>, y0: vec4<f32>, y1: vec4<f32>, y2: vec4<f32>, y3: vec4<f32>, a: vec4<f32>) -> vec4<f32> {
  return fma(vec4<f32>(s.w), y3, fma(vec4<f32>(s.z), y2, fma(vec4<f32>(s.y), y1, fma(vec4<f32>(s.x), y0, a))));
}`,
  // Eight rows of a CPU variant's tile (templates/tiling.ts, rowBlocks) as one value, and their
  // inner step: row l takes lane l's 4 values of x (a shuffle with a constant lane, as fromLane)
  // into its mac4. One call per 8 rows keeps the kernel text short; the compiler inlines it
  // and splits the struct, so the code is that of 8 separate accumulators.
  mac8: [
    `struct Rows8 { ${Array.from({ length: 8 }, (_, l) => `r${l}: vec4<f32>`).join(", ")} }`,
    `fn mac8(x: vec4<f32>, y0: vec4<f32>, y1: vec4<f32>, y2: vec4<f32>, y3: vec4<f32>, a: Rows8) -> Rows8 {`,
    `  return Rows8(${Array.from({ length: 8 }, (_, l) => `mac4(subgroupShuffle(x, ${l}u), y0, y1, y2, y3, a.r${l})`).join(", ")});`,
    `}`,
  ].join("\n"),
} as const;

/** Helpers that call other helpers: using one includes those. */
const HELPER_CALLS: Partial<Record<keyof typeof HELPERS, readonly (keyof typeof HELPERS)[]>> = {
  max: ["isnan"],
  min: ["isnan"],
  relu: ["isnan"],
  mac8: ["mac4"],
};

function useHelper(k: KernelBuilder, name: keyof typeof HELPERS): void {
  k.helpers.add(name);
  for (const h of HELPER_CALLS[name] ?? []) k.helpers.add(h);
}

/** Whether the f32 x is NaN (HELPERS.isnan). */
export function isNanExpr(k: KernelBuilder, x: string): string {
  useHelper(k, "isnan");
  return `isnan_(${x})`;
}

/** max of two f32 values, NaN when either is (HELPERS.max). */
export function maxExpr(k: KernelBuilder, a: string, b: string): string {
  useHelper(k, "max");
  return `max_(${a}, ${b})`;
}

/** min of two f32 values, NaN when either is (HELPERS.min). */
export function minExpr(k: KernelBuilder, a: string, b: string): string {
  useHelper(k, "min");
  return `min_(${a}, ${b})`;
}

/** The identifiers an expression mentions (WGSL names: bindings, lets, loop variables, calls). */
const identifiers = (expr: string): string[] => expr.match(/[A-Za-z_][A-Za-z0-9_]*/g) ?? [];

/**
 * The lines of one block of WGSL and the values already bound in it.
 *
 * Loop hoisting. A scope made with `child({ hoist: [...] })` is the body of a loop whose
 * variables are those names: a value bound there that mentions none of them, nor any name bound
 * inside the loop, is loop-invariant, so `hoist` places it in the enclosing scope instead (its
 * lines are emitted before the loop). That is where a pointwise kernel over one channel's
 * pixels loads the channel's BN scale and shift, and a per-channel reduction its mean: once
 * instead of once per element. On lavapipe every load costs about 16 cycles and an integer
 * division far more, and LLVM cannot hoist them itself (storage bindings may alias the store).
 * The value is the same expression, so results are bitwise identical.
 */
export class Scope {
  readonly lines: string[] = [];
  private readonly memo = new Map<string, string>();
  /** Names bound here or declared by the loop this scope is the body of. */
  private readonly names = new Set<string>();
  constructor(
    readonly parent: Scope | undefined,
    readonly indent: string,
    /** Whether loop-invariant values bound here move to the parent (see the class comment). */
    private readonly hoisting = false,
    loopVariables: readonly string[] = [],
  ) {
    for (const v of loopVariables) this.names.add(v);
  }

  lookup(key: string): string | undefined {
    return this.memo.get(key) ?? this.parent?.lookup(key);
  }

  bind(key: string, name: string, expr: string): string {
    this.lines.push(`${this.indent}let ${name} = ${expr};`);
    this.memo.set(key, name);
    this.names.add(name);
    return name;
  }

  /** The outermost scope `expr` can be evaluated in: this one, or an ancestor across hoisting scopes. */
  hoist(expr: string): Scope {
    const ids = identifiers(expr);
    let s: Scope = this;
    while (s.hoisting && s.parent !== undefined && !ids.some((id) => s.names.has(id))) s = s.parent;
    return s;
  }

  line(text: string): void {
    this.lines.push(`${this.indent}${text}`);
  }

  /** A nested block; `hoist` names the variables of the loop it is the body of (see the class comment). */
  child(loop?: { readonly hoist: readonly string[] }): Scope {
    return new Scope(this, `${this.indent}  `, loop !== undefined, loop?.hoist ?? []);
  }
}

/** State of one kernel being generated: its bindings, helpers and fresh names. */
export class KernelBuilder {
  readonly bindings: Binding[] = [];
  /** Helper functions the kernel calls, by name: shared ones (HELPERS) and ops' own (define). */
  readonly helpers = new Set<string>();
  private readonly defined = new Map<string, string>();
  /** Tensors read from buffers, ids. */
  private counter = 0;
  /** Anchor id -> expression of its value at an index (the template's accumulator). */
  readonly substitutions = new Map<number, (idx: readonly string[]) => string>();
  /** Nodes covered by this kernel (for the provenance header). */
  readonly covered = new Set<Tensor>();
  /**
   * The kernel's own element index, when it has one: a tensor of `shape` read or written at
   * `idx` (the index unflattened from `flat`) is at element `flat` itself, so the unflatten and
   * flatten cancel and no index arithmetic is emitted (a pointwise kernel's loads and stores).
   */
  ownIndex: { readonly shape: string; readonly idx: string; readonly flat: string } | undefined;

  /** The flat offset of idx in shape: the kernel's own index where it is that (ownIndex), else flatIndex. */
  offset(shape: Shape, idx: readonly string[]): string {
    const own = this.ownIndex;
    return own && own.shape === shape.join(",") && own.idx === idx.join(",") ? own.flat : flatIndex(shape, idx);
  }

  constructor(readonly isMaterialized: (t: Tensor) => boolean) {}

  /** Includes an op's own helper function (its registry lowering defines it). */
  define(name: string, text: string): void {
    const known = this.lookup(name);
    if (known !== undefined && known !== text) throw new Error(`codegen: two different WGSL helpers are named ${name}`);
    this.defined.set(name, text);
    this.helpers.add(name);
  }

  /** The text of a helper the kernel uses. */
  helperText(name: string): string {
    const text = this.lookup(name);
    if (text === undefined) throw new Error(`codegen: no WGSL helper named ${name}`);
    return text;
  }

  /** A shared helper's text (HELPERS), else one an op defined in this kernel. */
  private lookup(name: string): string | undefined {
    return (HELPERS as Record<string, string>)[name] ?? this.defined.get(name);
  }

  /** A new local name; the underscore keeps it apart from the templates' own names (i0, a0_1). */
  fresh(prefix: string): string {
    return `${prefix}_${this.counter++}`;
  }

  /** The binding name of a buffer, adding it on first use. */
  bind(ref: BufferRef, access: Binding["access"], elem: Binding["elem"]): string {
    const same = (b: Binding) =>
      b.ref.kind === ref.kind &&
      (ref.kind === "tensor" ? (b.ref as { tensor: Tensor }).tensor.id === ref.tensor.id : (b.ref as { name: string }).name === ref.name);
    const existing = this.bindings.find(same);
    if (existing) {
      if (existing.access !== access && access === "read_write") {
        this.bindings[this.bindings.indexOf(existing)] = { ...existing, access };
      }
      return existing.name;
    }
    // Positional names keep the text of identical kernels identical, so they are emitted once.
    const name = `b${this.bindings.length}`;
    this.bindings.push({ ref, access, name, elem });
    return name;
  }

  /**
   * WGSL declarations of the bindings, in binding order. Every binding is declared read_write:
   * WebGPU validates usage per buffer, not per byte range, and a kernel's operands and result
   * are usually slices of the same arena, which may not be bound read-only and writable in one
   * dispatch. The comment says which bindings the kernel only reads.
   */
  declarations(): string[] {
    return this.bindings.map(
      (b, i) =>
        `@group(0) @binding(${i}) var<storage, ${declaredAccess(b)}> ${b.name}: array<${b.elem}>;${b.access === "read" ? " // read only" : ""}`,
    );
  }
}

/**
 * The access a binding is declared with in the WGSL: read_write for every binding (see
 * KernelBuilder.declarations). The module records the same declaration as data
 * (ShaderSpec.access), so the runtime checks bindings without reading shader text.
 */
export const declaredAccess = (_b: Binding): "read_write" => "read_write";

/** Row-major flat offset of idx in shape, folding size-1 axes and unit strides. */
export function flatIndex(shape: Shape, idx: readonly string[]): string {
  const strides = stridesOf(shape);
  const terms: string[] = [];
  shape.forEach((d, a) => {
    if (d === 1) return;
    const s = strides[a]!;
    terms.push(s === 1 ? idx[a]! : `${idx[a]!} * ${s}i`);
  });
  return terms.length === 0 ? "0i" : terms.join(" + ");
}

/** Multi-index of a flat offset (constant shape): idx[a] = (flat / stride) % dim. */
export function unflatten(shape: Shape, flat: string): string[] {
  const strides = stridesOf(shape);
  return shape.map((d, a) => {
    if (d === 1) return "0i";
    const s = strides[a]!;
    const q = s === 1 ? flat : `(${flat} / ${s}i)`;
    return a === 0 ? q : `(${q} % ${d}i)`;
  });
}

/** A load of a materialised tensor at idx, converted to its WGSL value type. */
export function load(k: KernelBuilder, t: Tensor, idx: readonly string[]): string {
  const name = k.bind({ kind: "tensor", tensor: t }, "read", storageElem(t.dtype));
  const at = `${name}[${k.offset(t.shape, idx)}]`;
  return t.dtype === "bool" ? `(${at} != 0u)` : at;
}

/**
 * A load at idx: inline where it is read, unless idx is invariant in a loop scope around it,
 * then bound once before the loop (Scope: loop hoisting).
 */
function hoistedLoad(k: KernelBuilder, scope: Scope, key: string, t: Tensor, idx: readonly string[]): string {
  const expr = load(k, t, idx);
  const target = scope.hoist(expr);
  return target === scope ? expr : target.bind(key, k.fresh("h"), expr);
}

/** A value converted to its storage type, for a store. */
export function toStorage(value: string, dtype: DType): string {
  return dtype === "bool" ? `select(0u, 1u, ${value})` : value;
}

/**
 * The WGSL expression of t at idx (see the file comment). `computeTop` computes t itself even
 * though it is materialised: that is how a kernel computes its own root.
 */
export function valueAt(k: KernelBuilder, scope: Scope, t: Tensor, idx: readonly string[], computeTop = false): string {
  const sub = k.substitutions.get(t.id);
  if (sub) return sub(idx);
  const key = `${t.id}@${idx.join(",")}`;
  const hit = scope.lookup(key);
  if (hit) return hit;
  if (t.node.op === "input" || (!computeTop && k.isMaterialized(t))) return hoistedLoad(k, scope, key, t, idx);
  k.covered.add(t);
  const lowering = OPS[t.node.op].lowering as Lowering<OpName>;
  const ctx: InlineContext<OpName> = {
    node: t.node,
    shape: t.shape,
    dtype: t.dtype,
    idx,
    arg: (i, at = idx) => valueAt(k, scope, t.node.inputs[i]!, at),
    literal,
    helper: (name) => useHelper(k, name),
    define: (name, text) => k.define(name, text),
    bind: (sub, prefix, expr) => scope.hoist(expr).bind(`${key}#${sub}`, k.fresh(prefix), expr),
    value: (expr) => scope.hoist(expr).bind(key, k.fresh("v"), expr),
    flatIndex,
    unflatten,
  };
  // The op's inline lowering, from its registry record (dsl/ops/*.ts). An elementwise result is
  // bound once per index; sources and views return an expression (or bind it themselves).
  switch (lowering.kind) {
    case "load":
      return load(k, t, idx);
    case "source":
    case "view":
      return lowering.wgsl(ctx);
    case "elementwise":
      return ctx.value(lowering.wgsl(ctx));
    case "template":
    case "decomposed":
      throw new Error(`codegen: ${t.node.op} is not an inline op (node #${t.id}); fusion should have materialised it`);
    default: {
      const never: never = lowering;
      throw new Error(`codegen: unknown lowering ${JSON.stringify(never)}`);
    }
  }
}

/** The constant tables of resizeGrad's gather (see templates: resizeGrad). */
export function resizeGatherTable(inSize: number, outSize: number, alignCorners: boolean): number[] {
  // For each low-resolution index i: every high-resolution position X whose taps include i,
  // with the tap's weight. Layout: offsets[inSize + 1], then (X, weight bits) pairs.
  const taps = linearTaps(inSize, outSize, alignCorners);
  const lists: [number, number][][] = Array.from({ length: inSize }, () => []);
  for (let X = 0; X < outSize; X++) {
    const l = taps.l[X]!;
    lists[taps.i0[X]!]!.push([X, Math.fround(1 - l)]);
    lists[taps.i1[X]!]!.push([X, l]);
  }
  const words: number[] = [];
  let at = inSize + 1;
  for (const list of lists) {
    words.push(at);
    at += list.length;
  }
  words.push(at);
  const f32 = new Float32Array(1);
  const u32 = new Uint32Array(f32.buffer);
  const pairs: number[] = [];
  for (const list of lists) for (const [X] of list) pairs.push(X);
  const weights: number[] = [];
  for (const list of lists)
    for (const [, w] of list) {
      f32[0] = w;
      weights.push(u32[0]!);
    }
  // indices at [inSize+1, inSize+1+E), weights at [inSize+1+E, inSize+1+2E)
  return [...words, ...pairs, ...weights];
}
