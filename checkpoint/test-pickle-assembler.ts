// Test-only: assembles pickles from opcodes, so the unpickler can be tested on streams that
// torch 1.13 does not write (Python 2 forms, legacy storage views, hostile globals).

export type Piece = number | string | Uint8Array | readonly Piece[];

/** Numbers are single bytes, strings are their UTF-8 bytes; nested arrays are flattened. */
export function pk(...pieces: Piece[]): Uint8Array {
  const out: number[] = [];
  const add = (p: Piece): void => {
    if (typeof p === "number") out.push(p);
    else if (typeof p === "string") out.push(...new TextEncoder().encode(p));
    else if (p instanceof Uint8Array) out.push(...p);
    else p.forEach(add);
  };
  pieces.forEach(add);
  return new Uint8Array(out);
}

export function u32(n: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, n, true);
  return b;
}

export function u64(n: number): Uint8Array {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, BigInt(n), true);
  return b;
}

/** BINUNICODE */
export function ustr(s: string): Piece[] {
  const bytes = new TextEncoder().encode(s);
  return [0x58, u32(bytes.length), bytes];
}

/** SHORT_BINSTRING: how Python 2 pickles a str */
export function py2str(s: string): Piece[] {
  return [0x55, s.length, s];
}

/** BININT with any int32 */
export function int32(n: number): Piece[] {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setInt32(0, n, true);
  return [0x4a, b];
}

export function global(module: string, name: string): Piece[] {
  return ["c", `${module}\n${name}\n`];
}

export const PROTO2: Piece[] = [0x80, 2];
export const STOP = ".";
export const MARK = "(";
export const TUPLE = "t";
export const REDUCE = "R";
export const NONE = "N";
