// Host-side tensors as they travel between checkpoint files and the runtime.
//
// The dtype names are the safetensors ones, because safetensors is the format this project
// writes; PyTorch storages are mapped onto them when imported. Each dtype has exactly one
// typed-array representation, so a `Tensor` is a discriminated union on `dtype` and a switch
// on it narrows `data`. Half-precision floats (F16, BF16) have no typed array in Node 20 and
// are carried as their raw 16-bit patterns.
//
// All byte-level code assumes a little-endian host (every platform Node and Dawn run on);
// `assertLittleEndianHost` makes the assumption loud instead of silent.


export const DTYPES = ["BOOL", "U8", "I8", "U16", "I16", "F16", "BF16", "U32", "I32", "F32", "U64", "I64", "F64"] as const;
export type DType = (typeof DTYPES)[number];

export interface DataOfDType {
  readonly BOOL: Uint8Array;
  readonly U8: Uint8Array;
  readonly I8: Int8Array;
  readonly U16: Uint16Array;
  readonly I16: Int16Array;
  readonly F16: Uint16Array;
  readonly BF16: Uint16Array;
  readonly U32: Uint32Array;
  readonly I32: Int32Array;
  readonly F32: Float32Array;
  readonly U64: BigUint64Array;
  readonly I64: BigInt64Array;
  readonly F64: Float64Array;
}

export interface TypedTensor<D extends DType> {
  readonly dtype: D;
  /** Row-major; `[]` is a scalar with one element. */
  readonly shape: readonly number[];
  /** Contiguous row-major elements; length equals the product of `shape`. */
  readonly data: DataOfDType[D];
}

export type Tensor = { [D in DType]: TypedTensor<D> }[DType];

/** Ordered name → tensor map: the order is the file's, which keeps summaries stable. */
export type StateDict = ReadonlyMap<string, Tensor>;

export function isDType(s: string): s is DType {
  return (DTYPES as readonly string[]).includes(s);
}

export function itemSize(dtype: DType): number {
  switch (dtype) {
    case "BOOL":
    case "U8":
    case "I8":
      return 1;
    case "U16":
    case "I16":
    case "F16":
    case "BF16":
      return 2;
    case "U32":
    case "I32":
    case "F32":
      return 4;
    case "U64":
    case "I64":
    case "F64":
      return 8;
    default:
      return assertNever(dtype);
  }
}

export function numel(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** A dimension must be a non-negative safe integer; anything else in a header is corruption. */
export function isValidShape(shape: readonly unknown[]): shape is readonly number[] {
  return shape.every((d) => typeof d === "number" && Number.isSafeInteger(d) && d >= 0);
}

/**
 * Views `count` elements of `buffer` starting at `byteOffset` as the dtype's typed array.
 * The caller guarantees alignment (byteOffset % itemSize == 0) and bounds.
 */
export function viewAs(dtype: DType, buffer: ArrayBuffer, byteOffset: number, count: number): Tensor["data"] {
  switch (dtype) {
    case "BOOL":
    case "U8":
      return new Uint8Array(buffer, byteOffset, count);
    case "I8":
      return new Int8Array(buffer, byteOffset, count);
    case "U16":
    case "F16":
    case "BF16":
      return new Uint16Array(buffer, byteOffset, count);
    case "I16":
      return new Int16Array(buffer, byteOffset, count);
    case "U32":
      return new Uint32Array(buffer, byteOffset, count);
    case "I32":
      return new Int32Array(buffer, byteOffset, count);
    case "F32":
      return new Float32Array(buffer, byteOffset, count);
    case "U64":
      return new BigUint64Array(buffer, byteOffset, count);
    case "I64":
      return new BigInt64Array(buffer, byteOffset, count);
    case "F64":
      return new Float64Array(buffer, byteOffset, count);
    default:
      return assertNever(dtype);
  }
}

/**
 * Builds a tensor that owns a fresh copy of `bytes` (any alignment). Copying decouples the
 * tensor from the file buffer, so a 170 MB checkpoint is not kept alive by one small tensor,
 * and gives the typed array the alignment it needs.
 */
export function tensorFromBytes(dtype: DType, shape: readonly number[], bytes: Uint8Array): Tensor {
  const copy = new Uint8Array(bytes.byteLength);
  copy.set(bytes);
  return makeTensor(dtype, shape, viewAs(dtype, copy.buffer, 0, bytes.byteLength / itemSize(dtype)));
}

/**
 * Pairs a dtype with data of the matching array type. The cast is sound because every caller
 * obtains `data` from `viewAs(dtype, ...)`; `checkTensor` re-verifies it for outside input.
 */
export function makeTensor(dtype: DType, shape: readonly number[], data: Tensor["data"]): Tensor {
  return { dtype, shape: [...shape], data } as Tensor;
}

/** Byte view of a tensor's elements, without copying. */
export function tensorBytes(t: Tensor): Uint8Array {
  return new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
}

/** Why a tensor handed in by a caller is not well formed, or undefined when it is. */
export function checkTensor(t: Tensor): string | undefined {
  if (!isDType(t.dtype)) return `unknown dtype ${String(t.dtype)}`;
  if (!isValidShape(t.shape)) return `invalid shape ${JSON.stringify(t.shape)}`;
  const expectedArray = viewAs(t.dtype, new ArrayBuffer(0), 0, 0).constructor;
  if (t.data.constructor !== expectedArray) {
    return `dtype ${t.dtype} needs a ${expectedArray.name}, got a ${t.data.constructor.name}`;
  }
  if (t.data.length !== numel(t.shape)) {
    return `shape [${t.shape.join(",")}] has ${numel(t.shape)} elements but the data has ${t.data.length}`;
  }
  return undefined;
}

export function showShape(shape: readonly number[]): string {
  return `[${shape.join(",")}]`;
}

/** Whether typed arrays on this host store the low byte first (no `node:os`: the browser build shares this file). */
const LITTLE_ENDIAN_HOST = new Uint8Array(Uint16Array.of(1).buffer)[0] === 1;

export function assertLittleEndianHost(): void {
  if (!LITTLE_ENDIAN_HOST) throw new Error("checkpoint I/O assumes a little-endian host");
}

export function assertNever(x: never): never {
  throw new Error(`unreachable: ${String(x)}`);
}
