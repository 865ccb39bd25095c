// The one error type of plots/. Drawing is pure; only writing the picture to disk can fail, so
// every error names the file at fault and what it was meant to hold. plots/ sits below the
// application (train, cli, demo draw with it), so it owns this type and its callers map it into
// theirs where they call it.

export type PlotError =
  /** The file system refused the file (a missing parent that cannot be made, permissions, disk full) or sharp could not encode it. */
  | { readonly kind: "write"; readonly what: PlotFile; readonly file: string; readonly detail: string }
  /** A picture was asked for with no panels in it: there is nothing to size the grid by. */
  | { readonly kind: "empty"; readonly what: PlotFile; readonly file: string };

/** What the file was to hold; named in the message so a reader knows which output failed. */
export type PlotFile = "chart" | "picture";

export const plotWriteError = (what: PlotFile, file: string, e: unknown): PlotError => ({
  kind: "write",
  what,
  file,
  // Node's fs errors and sharp's carry their cause in the message; the stack helps no user.
  detail: e instanceof Error ? e.message : String(e),
});

export const plotEmptyError = (what: PlotFile, file: string): PlotError => ({ kind: "empty", what, file });

/** One line naming the file: `cannot write the chart runs/x/curves.png: EACCES: ...`. */
export function renderPlotError(e: PlotError): string {
  switch (e.kind) {
    case "write":
      return `cannot write the ${e.what} ${e.file}: ${e.detail}`;
    case "empty":
      return `cannot write the ${e.what} ${e.file}: no panels to draw`;
    default: {
      const never: never = e;
      return never;
    }
  }
}
