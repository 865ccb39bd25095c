// The op registry: every op's record (def.ts), keyed by op name. Typed over OpName, so the
// compiler refuses an op declared in a family's attributes without its record.

import type { OpName } from "../ir";
import { BINARY_OPS } from "./binary";
import { CONV_OPS } from "./conv";
import { DEPTHWISE_OPS } from "./depthwise";
import type { OpDef } from "./def";
import { MATMUL_OPS } from "./matmul";
import { NORMALIZATION_OPS } from "./normalization";
import { REDUCTION_OPS } from "./reductions";
import { SAMPLING_OPS } from "./sampling";
import { SOURCE_OPS } from "./sources";
import { UNARY_OPS } from "./unary";
import { VIEW_OPS } from "./views";

export type Registry = { readonly [K in OpName]: OpDef<K> };

/** The family tables, with each record's literal types (a gradient check's kind). */
const FAMILIES = {
  ...SOURCE_OPS,
  ...UNARY_OPS,
  ...BINARY_OPS,
  ...REDUCTION_OPS,
  ...VIEW_OPS,
  ...CONV_OPS,
  ...DEPTHWISE_OPS,
  ...SAMPLING_OPS,
  ...MATMUL_OPS,
  ...NORMALIZATION_OPS,
};

export const OPS: Registry = FAMILIES;

/**
 * Ops whose registry lowering is a kernel template: codegen/wgsl/templates/index.ts has a table
 * keyed by exactly these names, so an op whose record asks for a template does not compile
 * until its template exists.
 */
/**
 * Ops whose gradient check needs its own generator of shapes and attributes (gradcheck
 * `{ kind: "cases" }`): gradcheck/cases.ts has a table keyed by exactly these names, so an op
 * whose record asks for cases does not compile until its generator exists.
 */
export type TemplateOp = {
  [K in OpName]: (typeof FAMILIES)[K]["lowering"] extends { readonly kind: "template" } ? K : never;
}[OpName];

export type CaseOp = {
  [K in OpName]: (typeof FAMILIES)[K]["gradcheck"] extends { readonly kind: "cases" } ? K : never;
}[OpName];

/** The record of op `name`, typed by the name. */
export const opDef = <K extends OpName>(name: K): OpDef<K> => OPS[name] as OpDef<K>;

/** Every op name, in registry order. */
export const OP_NAMES = Object.keys(OPS) as OpName[];
