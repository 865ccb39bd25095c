// npm run bench -- [--suite kernels|step|all] [--runs N] [--json FILE] [--only TEXT] [--no-torch] [--no-tfjs] [--threads N]
//
// Our compiled kernels and training step against PyTorch (CPU with --threads threads, or CUDA
// when the machine has it) and, for the kernel suite, TF.js's WebGPU backend on the same Dawn
// device, measured in the same run and interleaved (bench/measure.ts). A markdown summary goes
// to stdout, progress to stderr; --json writes {"results": [{name, impl, ms, gflops}], "ratios",
// "targets", "machine", "cases"}. docs/benchmarks.md keeps the latest figures.

import * as E from "fp-ts/lib/Either.js";
import { readFileSync, writeFileSync } from "node:fs";
import { availableParallelism, cpus, loadavg, totalmem } from "node:os";
import { parseArgs } from "node:util";
import { describeAdapter } from "../runtime/device";
import { PRECISE_TIMESTAMPS, acquireNodeDevice, nodeGPU } from "../runtime/node-gpu";
import { runKernelSuite } from "./kernels";
import { type CaseReport, type Machine, ratios, renderMarkdown, resultRows, targets } from "./results";
import { runStepSuite } from "./step";
import { type TfjsSide, startTfjs } from "./tfjs";
import { type OmpWait, type TorchPeer, startTorch } from "./torch";

const USAGE =
  "usage: npm run bench -- [--suite kernels|step|all] [--runs N] [--json FILE] [--only TEXT] [--no-torch] [--no-tfjs] [--threads N] [--torch-wait auto|active|passive]";

const { values } = parseArgs({
  options: {
    suite: { type: "string", default: "all" },
    runs: { type: "string", default: "5" },
    json: { type: "string" },
    only: { type: "string", multiple: true },
    "no-torch": { type: "boolean", default: false },
    "no-tfjs": { type: "boolean", default: false },
    threads: { type: "string", default: "2" },
    "torch-wait": { type: "string", default: "auto" },
    help: { type: "boolean", default: false },
  },
});
if (values.help) {
  console.log(USAGE);
  process.exit(0);
}
const suite = values.suite;
const runs = Number(values.runs);
if (!["kernels", "step", "all"].includes(suite) || !Number.isInteger(runs) || runs < 1 || !["auto", "active", "passive"].includes(values["torch-wait"])) {
  console.error(USAGE);
  process.exit(2);
}
const only = (values.only ?? []).map((s) => s.toLowerCase());
/** A case runs when --only is absent or one of its texts occurs in the case's name. */
const selected = (name: string) => only.length === 0 || only.some((o) => name.toLowerCase().includes(o));
const log = (line: string) => process.stderr.write(`${line}\n`);

function cpuModel(): string {
  try {
    const m = /^model name\s*:\s*(.*)$/m.exec(readFileSync("/proc/cpuinfo", "utf8"));
    if (m?.[1]) return m[1].trim();
  } catch {
    // not Linux
  }
  return cpus()[0]?.model ?? "unknown CPU";
}

const machine: Machine = {
  date: new Date().toISOString().slice(0, 16).replace("T", " ") + " UTC",
  cpu: cpuModel(),
  cores: availableParallelism(),
  memoryGiB: Math.round(totalmem() / 2 ** 30),
  node: process.version,
  adapter: "-",
  loadavgStart: loadavg(),
  notes: [],
};

const cases: CaseReport[] = [];
const busy = machine.loadavgStart[0]! > machine.cores / 2;
if (busy) {
  machine.notes.push(
    `the machine was busy (load average ${machine.loadavgStart[0]!.toFixed(1)} on ${machine.cores} cores): times are inflated for every ` +
      "implementation; compare ratios from one run, never absolute times across runs",
  );
}
/** bench/torch.ts OmpWait: passive on a busy machine unless told otherwise. */
const torchWait: OmpWait = values["torch-wait"] === "auto" ? (busy ? "passive" : "active") : (values["torch-wait"] as OmpWait);

if (suite === "kernels" || suite === "all") {
  const acquired = await acquireNodeDevice({ maxBufferSize: 1 << 20, maxStorageBufferBindingSize: 1 << 20, maxStorageBuffersPerShaderStage: 8 }, [PRECISE_TIMESTAMPS])();
  if (E.isLeft(acquired)) {
    log(acquired.left.message);
    process.exit(1);
  }
  const dev = acquired.right;
  machine.adapter = `${describeAdapter(dev.info)}, ${dev.adapterClass} class, features: ${[...dev.device.features].join(", ")}`;
  if (!dev.device.features.has("timestamp-query")) machine.notes.push("the adapter has no timestamp queries: no per-dispatch GPU times");
  let tfjs: TfjsSide | undefined;
  if (!values["no-tfjs"]) {
    const t = await startTfjs(dev, nodeGPU([PRECISE_TIMESTAMPS]));
    if ("missing" in t) machine.notes.push(`TF.js skipped: ${t.missing}`);
    else {
      tfjs = t;
      machine.tfjs = `@tensorflow/tfjs-backend-webgpu ${t.version}, default flags, same GPUDevice as ours`;
    }
  }
  let torch: TorchPeer | undefined;
  if (!values["no-torch"]) {
    const t = await startTorch(Number(values.threads), torchWait);
    if ("missing" in t) machine.notes.push(`PyTorch skipped: ${t.missing}`);
    else torch = t;
  }
  if (torch) {
    const i = torch.info;
    machine.torch = `${i.torch} on ${i.device}${i.threads ? `, ${i.threads} threads, OpenMP wait ${torchWait}` : ""}${i.gpu ? ` (${i.gpu}, TF32 ${i.tf32 ? "on" : "off"})` : ""}${i.blas ? `; BLAS ${i.blas}` : ""}`;
    if (i.blas?.includes("/blas/libblas")) {
      machine.notes.push("PyTorch's matmul calls Debian's reference BLAS here (install libopenblas0-openmp for a fair matmul figure); its convolutions use oneDNN and are unaffected");
    }
  }
  cases.push(...(await runKernelSuite({ acquired: dev, tfjs, torch, runs, selected, log })));
  await torch?.peer.close();
}

if (suite === "step" || suite === "all") {
  const ctx = { runs, torch: !values["no-torch"], torchThreads: Number(values.threads), torchWait, selected, log } as Parameters<typeof runStepSuite>[0];
  cases.push(...(await runStepSuite(ctx)));
  if (machine.adapter === "-" && ctx.adapter) machine.adapter = ctx.adapter;
  if (!machine.torch && ctx.torchInfo) machine.torch = ctx.torchInfo;
}

machine.loadavgEnd = loadavg();
console.log(renderMarkdown(machine, cases, runs));
if (values.json) {
  const out = { results: resultRows(cases), ratios: ratios(cases), targets: targets(cases), machine, runs, cases };
  writeFileSync(values.json, `${JSON.stringify(out, null, 1)}\n`);
  log(`wrote ${values.json}`);
}
// Dawn keeps the event loop alive; everything is done.
process.exit(0);
