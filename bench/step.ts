// The step suite: one multi-level AdaptSegNet iteration per configuration, ours (in a worker
// process, bench/step_worker.ts) against PyTorch (a fresh bench/torch_baseline.py per
// configuration, so that each side's peak RSS belongs to that configuration), interleaved.

import { fileURLToPath } from "node:url";
import { STEP_CASES, type StepCase } from "./cases";
import { type Contender, interleave } from "./measure";
import type { DispatchProfile } from "./ours";
import { type Peer, spawnPeer } from "./peer";
import type { CaseReport, TemplateTime } from "./results";
import { type OmpWait, type TorchPeer, startTorch, torchContender, torchMaxRssKiB } from "./torch";

const WORKER = fileURLToPath(new URL("./step_worker.ts", import.meta.url));
/** One timed run lasts about this long: a whole number of iterations, at least one. */
const TARGET_MS = 500;

export interface StepContext {
  readonly runs: number;
  readonly torch: boolean;
  readonly torchThreads: number;
  readonly torchWait: OmpWait;
  readonly selected: (name: string) => boolean;
  readonly log: (line: string) => void;
  /** The adapter the worker got, for the report. */
  adapter?: string;
  torchInfo?: string;
}

interface Setup {
  readonly reps: number;
  readonly adapter: string;
  readonly compileMs: number;
  readonly instantiateMs: number;
  readonly firstStepMs: number;
  readonly dispatches: number;
  readonly shaders: number;
  readonly flops: number;
  readonly persistentBytes: number;
  readonly scratchPeakBytes: number;
  readonly scratchLowerBoundBytes: number;
}

interface Profile {
  readonly gpuMs: number | null;
  readonly templates?: TemplateTime[];
  readonly top?: DispatchProfile[];
}

class OursStep implements Contender {
  readonly impl = "ours";
  setup: Setup | undefined;
  profile: Profile | undefined;
  maxRssKiB = 0;
  private readonly peer: Peer;

  constructor(private readonly c: StepCase) {
    // The worker is TypeScript: run it through tsx's loader in a plain Node process.
    this.peer = spawnPeer(`ours ${c.name}`, process.execPath, ["--import", "tsx", WORKER]);
  }

  async prepare() {
    this.setup = await this.peer.request<Setup>({ cmd: "setup", case: this.c.name, target_ms: TARGET_MS });
    return { reps: this.setup.reps };
  }

  async run(reps: number) {
    const r = await this.peer.request<{ ms: number; cpu_ms: number }>({ cmd: "time", reps });
    return { ms: r.ms, cpuMs: r.cpu_ms };
  }

  async finish() {
    this.profile = await this.peer.request<Profile>({ cmd: "profile" });
  }

  async dispose() {
    this.maxRssKiB = (await this.peer.request<{ max_rss_kib: number }>({ cmd: "rss" }).catch(() => ({ max_rss_kib: 0 }))).max_rss_kib;
    await this.peer.close();
  }
}

function configSummary(c: StepCase): string {
  if (c.other) return c.other.summary;
  const cfg = c.config();
  return `${cfg.variant}, ResNet blocks [${cfg.network.blocks.join(",")}] width ${cfg.network.width}, ASPP ${cfg.network.asppBranches} branches, ndf ${cfg.ndf}, source ${cfg.sourceSize.join("x")}, target ${cfg.targetSize.join("x")}, ${cfg.numClasses} classes`;
}

export async function runStepSuite(ctx: StepContext): Promise<CaseReport[]> {
  const reports: CaseReport[] = [];
  for (const c of STEP_CASES.filter((s) => ctx.selected(s.label))) {
    const ours = new OursStep(c);
    let torch: TorchPeer | undefined;
    if (ctx.torch && c.other === undefined) {
      const t = await startTorch(ctx.torchThreads, ctx.torchWait);
      if ("missing" in t) ctx.log(`[step] PyTorch skipped: ${t.missing}`);
      else {
        torch = t;
        ctx.torchInfo = `${t.info.torch} on ${t.info.device}${t.info.threads ? `, ${t.info.threads} threads, OpenMP wait ${ctx.torchWait}` : ""}${t.info.gpu ? ` (${t.info.gpu})` : ""}`;
      }
    }
    const cfg = c.config();
    const contenders: Contender[] = [ours, ...(torch ? [torchContender(torch, { kind: "step", config: cfg, target_ms: TARGET_MS })] : [])];
    const timings = await interleave(contenders, ctx.runs);
    const torchRss = torch ? await torchMaxRssKiB(torch).catch(() => undefined) : undefined;
    await torch?.peer.close();
    const s = ours.setup;
    if (s) ctx.adapter = s.adapter;
    reports.push({
      suite: "step",
      name: c.label,
      flops: s?.flops ?? 0,
      timings,
      ...(s
        ? {
            ours: {
              compileMs: s.compileMs,
              instantiateMs: s.instantiateMs,
              firstStepMs: s.firstStepMs,
              dispatches: s.dispatches,
              gpuMs: ours.profile?.gpuMs ?? undefined,
              templates: ours.profile?.templates,
            },
            step: {
              config: configSummary(c),
              shaders: s.shaders,
              persistentBytes: s.persistentBytes,
              scratchPeakBytes: s.scratchPeakBytes,
              scratchLowerBoundBytes: s.scratchLowerBoundBytes,
              oursMaxRssKiB: ours.maxRssKiB,
              torchMaxRssKiB: torchRss,
              top: ours.profile?.top ?? [],
            },
          }
        : {}),
    });
    const brief = timings.map((t) => `${t.impl} ${t.status === "ok" ? `${(t.ms / 1000).toFixed(3)} s` : `${t.status}: ${t.reason}`}`).join(", ");
    ctx.log(`[step] ${c.label}: ${brief}${s ? ` (compile ${(s.compileMs / 1000).toFixed(1)} s, first step ${(s.firstStepMs / 1000).toFixed(1)} s)` : ""}`);
  }
  return reports;
}
