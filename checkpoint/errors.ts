// The one error type of checkpoint I/O. Every failure names the file and, where one is at
// fault, the tensor (or storage), so the rendered message alone says what to fix.

export type CheckpointErrorKind =
  /** The file system refused: missing file, permissions, disk full. */
  | "io"
  /** The bytes do not decode: truncated, inconsistent header, bad offsets. */
  | "corrupt"
  /** The file asks for something that is never executed or trusted (a non-whitelisted global). */
  | "unsafe"
  /** Well-formed but outside what this loader implements (an opcode, a storage type). */
  | "unsupported"
  /** Decoded fine but does not match what the caller expects (keys, shapes, dtypes). */
  | "mismatch"
  /** The SHA-256 does not start with the prefix in the file name. */
  | "hash";

export interface CheckpointError {
  readonly kind: CheckpointErrorKind;
  readonly file: string;
  /** The tensor, storage or key at fault, when there is one. */
  readonly tensor?: string;
  readonly detail: string;
}

export function checkpointError(
  kind: CheckpointErrorKind,
  file: string,
  detail: string,
  tensor?: string,
): CheckpointError {
  return tensor === undefined ? { kind, file, detail } : { kind, file, tensor, detail };
}

export function renderCheckpointError(e: CheckpointError): string {
  const where = e.tensor === undefined ? e.file : `${e.file}: ${e.tensor}`;
  return `${kindLabel(e.kind)} in ${where}: ${e.detail}`;
}

function kindLabel(kind: CheckpointErrorKind): string {
  switch (kind) {
    case "io":
      return "I/O error";
    case "corrupt":
      return "corrupt checkpoint";
    case "unsafe":
      return "refused unsafe checkpoint";
    case "unsupported":
      return "unsupported checkpoint";
    case "mismatch":
      return "checkpoint does not match";
    case "hash":
      return "hash mismatch";
    default: {
      const never: never = kind;
      return never;
    }
  }
}

/** Node's fs errors carry a code (ENOENT, EACCES); keep it, drop the stack. */
export function describeIoError(e: unknown): string {
  if (e instanceof Error) return e.message;
  return String(e);
}
