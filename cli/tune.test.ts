// npm run tune's options and its default program set (the tuning itself: runtime/*tune.test.ts).

import * as E from "fp-ts/lib/Either.js";
import { describe, expect, it } from "vitest";
import { defaultPrograms, parseTuneOptions } from "./tune";

describe("npm run tune options", () => {
  it("reads repeated --program and --module, and --force", () => {
    expect(parseTuneOptions(["--program", "a", "--program", "b", "--module", "m.ts", "--force"])).toEqual(
      E.right({ programs: ["a", "b"], modules: ["m.ts"], force: true }),
    );
    expect(parseTuneOptions([])).toEqual(E.right({ programs: [], modules: [], force: false }));
  });

  it.each([[["--programme", "a"]], [["stray"]]])("refuses %j as a bad request", (argv) => {
    const r = parseTuneOptions(argv);
    expect(E.isLeft(r) && r.left.kind).toBe("options");
  });

  it("tunes the cpu-demo programs when none is named", () => {
    expect(defaultPrograms(["multi-level-cpu-demo", "multi-level-gta5-cityscapes", "eval-oracle-cpu-demo"])).toEqual(["multi-level-cpu-demo", "eval-oracle-cpu-demo"]);
  });
});
