// npm run web [-- --port N] [--build-only] [--screenshot [--iterations N] [--write-docs]]
//
// Builds the page (web/build.ts, esbuild) into out/web and serves it on http://127.0.0.1:PORT/
// (default 8080) until interrupted. Open it in a browser with WebGPU.
//
// --screenshot runs the page in headless Chromium (/usr/bin/chromium, SwiftShader; web/drive.ts)
// for --iterations per model (default 6), with three synthetic target images dropped as "your
// images", saves docs/browser.png, runs the same models under Node (Dawn on lavapipe) and prints
// both speeds. --write-docs also writes them into docs/browser.md between its markers.

import * as E from "fp-ts/lib/Either.js";
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { buildPage } from "./build";
import { CHROMIUM, runPage } from "./drive";
import { nodeReference } from "./node-reference";
import { servePage } from "./server";
import { sampleTargetImages } from "./serve-helpers";

const USAGE = "usage: npm run web -- [--port N] [--build-only] [--screenshot [--iterations N] [--write-docs]]";
const DOC = join("docs", "browser.md");
const SHOT = join("docs", "browser.png");
export const DOC_BEGIN = "<!-- web-results:begin (written by `npm run web -- --screenshot --write-docs`; do not edit) -->";
export const DOC_END = "<!-- web-results:end -->";

async function screenshot(iterations: number, writeDocs: boolean): Promise<number> {
  if (!existsSync(CHROMIUM)) {
    console.error(`--screenshot needs Chromium at ${CHROMIUM} (Debian: apt-get install chromium)`);
    return 1;
  }
  const work = mkdtempSync(join(tmpdir(), "adaptsegnet-web-"));
  try {
    console.log(`Node (Dawn): ${iterations} iterations of each model ...`);
    const ref = await nodeReference(work, iterations);
    if (E.isLeft(ref)) {
      console.error(ref.left.message);
      return 1;
    }
    const built = await buildPage();
    if (E.isLeft(built)) {
      console.error(built.left);
      return 1;
    }
    const server = await servePage(built.right.dir, 0);
    try {
      console.log(`Chromium (headless): the page at ${server.url} ...`);
      const run = await runPage({
        url: server.url,
        iterations,
        ownImages: sampleTargetImages(ref.right.dataDir, 3),
        nodeSnapshot: ref.right.runs.find((r) => r.variant === "multi-level")?.snapshot,
        downloadTo: work,
        screenshot: SHOT,
        timeoutMs: 600_000,
      });
      if (run.errorText !== "" || run.consoleErrors.length > 0) {
        console.error(`the page reported errors:\n${run.errorText}\n${run.consoleErrors.join("\n")}`);
        return 1;
      }
      const page = run.final;
      const rows = ref.right.runs.map((n) => {
        const p = page.models[n.variant]!;
        return `| ${n.variant} | ${iterations} | ${p.itsPerS.toFixed(2)} | ${n.itsPerS.toFixed(2)} | ${(n.itsPerS / p.itsPerS).toFixed(1)}x | ${p.miou!.toFixed(2)} |`;
      });
      const section = [
        DOC_BEGIN,
        "",
        `Measured by \`npm run web -- --screenshot --iterations ${iterations} --write-docs\` on ${cpus()[0]?.model.trim() ?? "?"} (${cpus().length} CPUs).`,
        `Chromium: ${page.adapter?.description} (subgroups of ${page.adapter?.subgroupMinSize ?? "?"} lanes: every dispatch runs its portable variant); Node: ${ref.right.adapter}.`,
        "Iterations per second of the whole run (the first iteration included), each model trained from its seeded initial values:",
        "",
        "| model | iterations | Chromium (SwiftShader) it/s | Node (lavapipe) it/s | Node / Chromium | page mIoU (%) |",
        "|---|---|---|---|---|---|",
        ...rows,
        "",
        DOC_END,
      ].join("\n");
      console.log(`\n${section}\n\nscreenshot: ${SHOT}`);
      if (writeDocs) {
        const doc = readFileSync(DOC, "utf8");
        const a = doc.indexOf(DOC_BEGIN);
        const b = doc.indexOf(DOC_END);
        if (a < 0 || b < a) {
          console.error(`${DOC}: the markers ${DOC_BEGIN} ... ${DOC_END} must be there, in order`);
          return 1;
        }
        const tmp = `${DOC}.tmp`;
        writeFileSync(tmp, doc.slice(0, a) + section + doc.slice(b + DOC_END.length));
        copyFileSync(tmp, DOC);
        rmSync(tmp);
        console.log(`results written to ${DOC}`);
      }
      return 0;
    } finally {
      await server.close();
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

async function main(argv: readonly string[]): Promise<number> {
  let values;
  try {
    values = parseArgs({
      args: [...argv],
      options: {
        port: { type: "string" },
        "build-only": { type: "boolean", default: false },
        screenshot: { type: "boolean", default: false },
        iterations: { type: "string" },
        "write-docs": { type: "boolean", default: false },
        help: { type: "boolean", short: "h" },
      },
    }).values;
  } catch (e) {
    console.error(`${e instanceof Error ? e.message : String(e)}\n${USAGE}`);
    return 2;
  }
  if (values.help === true) {
    console.log(USAGE);
    return 0;
  }
  const port = Number(values.port ?? "8080");
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    console.error(`--port ${values.port}: expected an integer from 0 to 65535\n${USAGE}`);
    return 2;
  }
  const iterations = Number(values.iterations ?? "6");
  if (!Number.isInteger(iterations) || iterations < 1) {
    console.error(`--iterations ${values.iterations}: expected a positive integer\n${USAGE}`);
    return 2;
  }
  if (values.screenshot === true) return screenshot(iterations, values["write-docs"] === true);
  if (values["write-docs"] === true) {
    console.error(`--write-docs goes with --screenshot\n${USAGE}`);
    return 2;
  }
  const built = await buildPage();
  if (E.isLeft(built)) {
    console.error(`the page does not build:\n${built.left}`);
    return 1;
  }
  console.log(`built ${built.right.dir} (main.js ${(built.right.bytes / 1e6).toFixed(1)} MB, ${built.right.inputs.length} modules)`);
  if (values["build-only"] === true) return 0;
  const server = await servePage(built.right.dir, port);
  console.log(`serving the page on ${server.url} (Ctrl-C to stop)`);
  await new Promise<void>((resolve) => {
    process.once("SIGINT", resolve);
    process.once("SIGTERM", resolve);
  });
  await server.close();
  return 0;
}

process.exit(await main(process.argv.slice(2)));
