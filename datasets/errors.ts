// What can go wrong when a dataset is read from disk. Every failure names the file at fault, so a
// user with 25,000 images can find the one that is broken; `describeDataError` renders the one
// message shown at the edge (a CLI, the trainer's log).

export type DataError =
  | { readonly kind: "missing-file"; readonly path: string }
  | { readonly kind: "corrupt-file"; readonly path: string; readonly reason: string }
  | { readonly kind: "unsupported-format"; readonly path: string; readonly reason: string }
  | { readonly kind: "bad-layout"; readonly path: string; readonly reason: string }
  | { readonly kind: "write-failed"; readonly path: string; readonly reason: string }
  | { readonly kind: "worker-failed"; readonly reason: string };

export const missingFile = (path: string): DataError => ({ kind: "missing-file", path });
export const corruptFile = (path: string, reason: string): DataError => ({ kind: "corrupt-file", path, reason });
export const unsupportedFormat = (path: string, reason: string): DataError => ({
  kind: "unsupported-format",
  path,
  reason,
});
export const writeFailed = (path: string, reason: string): DataError => ({ kind: "write-failed", path, reason });
export const badLayout = (path: string, reason: string): DataError => ({ kind: "bad-layout", path, reason });

export function describeDataError(e: DataError): string {
  switch (e.kind) {
    case "missing-file":
      return `missing file: ${e.path}`;
    case "corrupt-file":
      return `corrupt file ${e.path}: ${e.reason}`;
    case "unsupported-format":
      return `unsupported format in ${e.path}: ${e.reason}`;
    case "bad-layout":
      return `unexpected dataset layout at ${e.path}: ${e.reason}`;
    case "write-failed":
      return `cannot write ${e.path}: ${e.reason}`;
    case "worker-failed":
      return `data worker failed: ${e.reason}`;
    default: {
      const never: never = e;
      return never;
    }
  }
}

/** Node's fs errors carry a `code`; ENOENT is the one that means "not there" rather than "broken". */
export function isNotFound(err: unknown): boolean {
  return typeof err === "object" && err !== null && (err as { code?: unknown }).code === "ENOENT";
}

export function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
