// The metrics log never writes through a symbolic link: a link planted at metrics.jsonl (or a
// --metrics path that is one) would otherwise have its target truncated and overwritten.

import * as E from "fp-ts/lib/Either.js";
import { readFileSync, symlinkSync, unlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { renderTrainError } from "./errors";
import { MetricsLog } from "./metrics";
import { scratch } from "./test-programs";

const open = (path: string, resumeAt?: number): MetricsLog => {
  const r = MetricsLog.open(path, resumeAt);
  if (E.isLeft(r)) throw new Error(renderTrainError(r.left));
  return r.right;
};

describe("metrics log", () => {
  it("refuses a symlink at the metrics path, naming it, and leaves the link's target as it was", () => {
    const dir = scratch();
    const target = join(dir, "precious.txt");
    writeFileSync(target, "do not touch\n");
    const link = join(dir, "metrics.jsonl");
    symlinkSync(target, link);
    for (const resumeAt of [undefined, 10]) {
      const r = MetricsLog.open(link, resumeAt);
      expect(E.isLeft(r) && renderTrainError(r.left)).toContain(`${link} is a symbolic link`);
    }
    expect(readFileSync(target, "utf8")).toBe("do not touch\n");
  });

  it("does not follow a symlink swapped in after it was opened", () => {
    const dir = scratch();
    const path = join(dir, "metrics.jsonl");
    const log = open(path);
    const target = join(dir, "precious.txt");
    writeFileSync(target, "do not touch\n");
    unlinkSync(path);
    symlinkSync(target, path);
    expect(() => log.write({ type: "snapshot", iteration: 1, path: "x" })).toThrow();
    expect(readFileSync(target, "utf8")).toBe("do not touch\n");
  });

  it("an unwritable metrics path is a value naming it, not an exception", () => {
    const r = MetricsLog.open("/proc/version/metrics.jsonl");
    expect(E.isLeft(r) && renderTrainError(r.left)).toContain("/proc/version/metrics.jsonl");
  });
});
