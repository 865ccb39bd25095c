// The kernel pool: every distinct kernel once, shared by every program, named by its content.
//
// A template writes a kernel for one use: shapes, strides and constants become typed WGSL
// literals (`2048i`, `64u`, `0.5f`). Two uses of one template at other sizes then differ only in
// those literals, so the pool lifts them out: each distinct typed literal becomes a pipeline-
// overridable constant (`override lit0: i32;`), the text that remains is the kernel, and each use
// keeps its values. Dawn substitutes override values before the shader reaches the backend
// compiler (Tint's SubstituteOverride), so a lifted kernel compiles to the code its literals
// would have given: the same speed, and one pool entry for every size.
//
// What stays literal, and why:
//   - 0 and 1 (`0i`, `1u`, `0.0f`, `1.0f`): identities and first indices, they say how the
//     kernel works more than how big it is, and leaving them keeps kernels readable;
//   - untyped numbers: `@binding(3)`, `@workgroup_size(64)`, `array<f32, 8>` and hex bit
//     patterns, which the language requires to be constant expressions or which are not sizes.
// The kernel's header comments (shapes, grid, FLOPs of one use) describe a use, not the kernel:
// they stay with the compiler's record of the use (the program's REPORT shows them for its largest
// dispatches), and the pool entry starts with its own comment.

import { createHash } from "node:crypto";
import { type BindingAccess, type OverrideType, overrideName } from "../format/module";

/** A kernel with its literals lifted, and the values of the use it came from. */
export interface LiftedKernel {
  /** The template that wrote it (the first word of its header: conv2d, pointwise, sum, ...). */
  readonly template: string;
  /** The kernel text, without header, with `override litN: T;` declarations; no values. */
  readonly text: string;
  readonly overrides: readonly OverrideType[];
  /** The value of each override for this use, in order. */
  readonly values: readonly number[];
  /** The header lines of this use (shapes, grid, FLOPs), for the report. */
  readonly header: readonly string[];
}

/**
 * A typed literal that is not part of an identifier or a hex number: a float with a decimal
 * point or exponent and suffix f, or a decimal integer with suffix i or u.
 */
const LITERAL = /(?<![\w.])(?:(\d+\.\d+(?:e[+-]?\d+)?|\d+e[+-]?\d+)f|(\d+)([iu]))(?![\w.])/g;

/** Literals kept in place (see the file comment). */
const KEPT = new Set(["0i", "1i", "0u", "1u", "0.0f", "1.0f"]);

const isHeader = (line: string): boolean => line.startsWith("// ");

/** Splits `enable ...;` lines and the header comment block off the kernel text. */
function splitHeader(wgsl: string): { enables: string[]; header: string[]; body: string[] } {
  const lines = wgsl.replace(/^\n/, "").split("\n");
  const enables: string[] = [];
  const header: string[] = [];
  let i = 0;
  for (; i < lines.length; i++) {
    const line = lines[i]!;
    if (line.startsWith("enable ")) enables.push(line);
    else if (isHeader(line)) header.push(line.slice(3));
    else break;
  }
  return { enables, header, body: lines.slice(i) };
}

/** Lifts the typed literals of one kernel (see the file comment). Pure. */
export function liftLiterals(wgsl: string): LiftedKernel {
  const { enables, header, body } = splitHeader(wgsl);
  if (/\blit\d+\b/.test(body.join("\n"))) throw new Error("codegen: a kernel uses an identifier lit<N>, the names of lifted literals");
  const template = (header[0] ?? "kernel").split(" ")[0]!.replace(/[^A-Za-z0-9]/g, "") || "kernel";
  const index = new Map<string, number>();
  const overrides: OverrideType[] = [];
  const values: number[] = [];
  const lifted = body.map((line) =>
    line.replace(LITERAL, (text: string, float: string | undefined, int: string | undefined, suffix: string | undefined) => {
      if (KEPT.has(text)) return text;
      let k = index.get(text);
      if (k === undefined) {
        k = overrides.length;
        index.set(text, k);
        if (float !== undefined) {
          overrides.push("f32");
          values.push(Math.fround(Number(float)));
        } else {
          const type: OverrideType = suffix === "u" ? "u32" : "i32";
          const value = Number(int);
          // An i32 override holds what an i32 literal holds; larger text is not a valid i32.
          if (type === "i32" && value > 2147483647) throw new Error(`codegen: literal ${text} does not fit an i32`);
          overrides.push(type);
          values.push(value);
        }
      }
      return overrideName(k);
    }),
  );
  const declarations = overrides.map((t, k) => `override ${overrideName(k)}: ${t};`);
  // A leading newline: the text reads from its first line in the pool file's template literal.
  const text = [
    "",
    ...enables,
    `// ${template}: ${overrides.length === 0 ? "no overrides" : `overrides ${overrideName(0)}..${overrideName(overrides.length - 1)} are this kernel's sizes and constants, set by each use`}`,
    ...declarations,
    ...body.length ? lifted : [],
  ].join("\n");
  return { template, text, overrides, values, header };
}

/** The pool id of a kernel: its template and a hash of its text (and access), stable across programs. */
export function kernelId(template: string, text: string, access: readonly BindingAccess[]): string {
  const hash = createHash("sha256").update(text).update("\0").update(access.join(",")).digest("hex");
  return `${template}_${hash.slice(0, 10)}`;
}
