/**
 * The report's tables as rows of strings (header first), shared by the Markdown and HTML
 * renderers so both show the same figures at the same precision.
 *
 * @module
 */
import { type AllreduceResult, rawGBps } from "../bench/allreduce.ts";
import { EQUIVALENCE_BOUND, phasesOf, type Results, type RunRecord } from "../analysis/results.ts";
import { PHASES, type StepPhases } from "../core/phases.ts";
import { type Lang, MATRIX_LABELS } from "./_labels.ts";
import { EQUIVALENCE_STEPS, runLabel } from "../core/run_types.ts";
import { bytes, fixed, percent, sci } from "../analysis/format.ts";
import {
  type AspectRow,
  bestOf,
  intervalText,
  type MatrixEntry,
  type Recommendation,
  vsBest,
  vsBestInterval,
  WORTHWHILE_SPEEDUP,
} from "../analysis/matrix.ts";
import { INTERVAL_METHOD } from "../core/stats.ts";
import { markdownTableText } from "./_markdown.ts";
import { runSets } from "../analysis/_runs.ts";
import { RECOMMENDATION_RULES } from "../analysis/matrix.ts";
import { STRATEGY_NAMES } from "../core/run_types.ts";
import {
  hasProvisionalVerdicts,
  provisionalNote,
  provisionalWhy,
} from "../analysis/provisional.ts";

/** A table: header row, then body rows; `align` per column (`l` or `r`). */
export interface Table {
  rows: string[][];
  align: ("l" | "r")[];
}

/**
 * A table in Markdown; a `|` inside a cell is escaped so it cannot split the cell.
 *
 * @param table the rows and alignment
 * @returns the Markdown table
 * @example
 * ```ts
 * toMarkdown({ rows: [["a"], ["1"]], align: ["r"] });
 * ```
 */
export function toMarkdown(table: Table): string {
  return markdownTableText(table.rows, table.align);
}

/**
 * What batch each run of a workload trained on, and how the DDP knobs were set: the line
 * under each workload's heading.
 *
 * @param runs the workload's runs
 * @returns one paragraph (Markdown inline code in backticks)
 * @example
 * ```ts
 * import type { RunRecord } from "../analysis/results.ts";
 * declare const runs: RunRecord[];
 * batchLine(runs); // "Global batch 256; strong scaling: …"
 * ```
 */
export function batchLine(runs: RunRecord[]): string {
  const single = runs.find((r) => r.strategy === "single") ?? runs[0];
  const batch = single.globalBatch;
  const k = single.accumulate ?? 1;
  const parts: string[] = [];
  parts.push(
    k > 1
      ? `Global batch ${batch} per micro-step, ${k} micro-batches per optimizer step (${
        batch * k
      } samples), gradients accumulated locally and communicated once per optimizer step; per-step figures are per optimizer step`
      : `Global batch ${batch}`,
  );
  const parallel = runs.filter((r) => r.strategy !== "single");
  if (parallel.some((r) => r.scaling === "weak")) {
    const examples = parallel.slice(0, 2).map((r) => `${runLabel(r)}: ${r.globalBatch}`);
    parts.push(
      `weak scaling: each worker keeps the batch of ${batch}, so a world of N trains on N × ${batch} (${
        examples.join(", ")
      }); speedup is throughput against single at the per-worker batch. Weak scaling changes the optimisation — scaling the learning rate with the batch is the user's call — so parameters are not compared with single's`,
    );
  } else if (parallel.length) {
    parts.push("strong scaling: the workers share the global batch");
  }
  const compressed = parallel.find((r) => r.gradCompression && r.gradCompression !== "none");
  if (compressed) {
    parts.push(
      `runs marked \`-${compressed.gradCompression}\` send their gradients cast to ${compressed.gradCompression} (reduced in float32), beside the same runs uncompressed; their max |Δparam| is held to ${
        sci(compressed.equivalenceBoundUsed ?? null)
      }, not ${sci(EQUIVALENCE_BOUND)}`,
    );
  }
  if (parallel.some((r) => r.batchNorm)) {
    parts.push(
      "BatchNorm: runs without a suffix normalise each replica's slice with its own batch statistics, the running statistics broadcast from the main replica (DP) or rank 0 (DDP) before every step as PyTorch's `broadcast_buffers=True` does — so their gradient is not single's, and max |Δparam| shows by how much (measured, not held to a bound); `-syncbn` runs are SyncBatchNorm: mean and variance summed over the global batch in the forward, their gradients in the backward, held to the bound like every other run",
    );
  }
  const steps = runs[0].equivalenceSteps;
  if (parallel.length && steps !== EQUIVALENCE_STEPS) {
    parts.push(
      `parameters are compared with single's after ${steps} step${
        steps === 1 ? "" : "s"
      } (the workload's choice, stated where it is set), not ${EQUIVALENCE_STEPS}`,
    );
  }
  const ddp = parallel.filter((r) => r.strategy === "ddp" && r.overlap != null);
  if (ddp.length) {
    parts.push(
      ddp[0].overlap
        ? "DDP calls each bucket's all-reduce as soon as its gradients exist, during the backward (`comm exposed` is what the step still waited for)"
        : "DDP all-reduces its buckets after the backward (`--no-overlap`)",
    );
  }
  return `${parts.join("; ")}.`;
}

/**
 * What a report says about a model brought from outside (a TensorFlow.js Layers model): where
 * it came from, its loss, its data, its FLOPs — counted from every layer, or the layers that
 * were not, in which case no GFLOP/s is given — and how its training differs from its own
 * `fit`. None for a built-in workload.
 *
 * @param runs the workload's runs
 * @returns the lines (empty for a built-in)
 * @example
 * ```ts
 * import type { RunRecord } from "../analysis/results.ts";
 * declare const runs: RunRecord[];
 * modelLines(runs); // ["Model: a TensorFlow.js Layers model, saved model …", …]
 * ```
 */
export function modelLines(runs: RunRecord[]): string[] {
  const run = runs.find((r) => r.model);
  if (!run?.model) return [];
  const { model } = run;
  const perSample = run.flopsPerStep != null
    ? run.flopsPerStep / (run.globalBatch * (run.accumulate ?? 1))
    : null;
  const flops = perSample === null
    ? `FLOPs: not counted for ${
      model.flopsNotCounted.map((l) => `${l.layer} ×${l.count} (${l.reason})`).join(", ")
    } — the FLOPs of a step are unknown, so GFLOP/s and % of GEMM peak are n/a`
    : `FLOPs: ${
      fixed(perSample / 1e6, 3)
    } MFLOP per sample per training step, counted from every layer's configuration (forward × 3)`;
  return [
    `Model: a TensorFlow.js Layers model, ${model.source}; ${run.params ?? "?"} parameters`,
    `Loss: ${model.loss}`,
    `Data: ${model.data}`,
    flops,
    ...model.notes.map((note) => `Note: ${note}`),
  ];
}

/**
 * The bucket-size sweep (`bench --bucket-mb X,Y…`): each DDP run's step time and
 * communication against its bucket cap; null when no sweep was run.
 *
 * @param runs the workload's runs
 * @returns the table, or null
 */
export function bucketSweepTable(runs: RunRecord[]): Table | null {
  const ddp = runs.filter((r) => r.strategy === "ddp" && r.bucketBytes != null);
  if (new Set(ddp.map((r) => r.bucketBytes)).size < 2) return null;
  const sorted = [...ddp].sort((a, b) =>
    a.worldSize - b.worldSize ||
    (a.gradCompression ?? "").localeCompare(b.gradCompression ?? "") ||
    a.bucketBytes! - b.bucketBytes!
  );
  return {
    rows: [
      [
        "run",
        "bucket cap",
        "all-reduce calls/step",
        "step p50 ms",
        "samples/s",
        "comm ms",
        "comm exposed ms",
        "comm bytes/step",
      ],
      ...sorted.map((r) => [
        runLabel(r),
        bytes(r.bucketBytes!),
        fixed(r.comm.messagesPerStep ?? 0, 0),
        fixed(r.stepMs.p50, 1),
        fixed(r.samplesPerSec, 0),
        fixed(r.comm.msPerStep, 2),
        r.comm.exposedMsPerStep == null ? "–" : fixed(r.comm.exposedMsPerStep, 2),
        bytes(r.comm.bytesPerStep),
      ]),
    ],
    align: ["l", ...Array<"r">(7).fill("r")],
  };
}

/** Environment lines (Markdown inline code in backticks). */
export function environmentLines(results: Results): string[] {
  const { env, config } = results;
  return [
    `Machine: ${env.cpuModel}, ${env.logicalCpus} logical CPUs, ${env.os}`,
    `Runtime: Deno ${env.deno} (V8 ${env.v8}), TensorFlow.js ${env.tfjs}, backend \`${env.backend}\`${
      env.backend === "cpu" ? "" : ` (fast kernels ${env.fastKernels ? "on" : "off"})`
    }${env.threads ? `, ${env.threads} compute thread(s) per worker` : ""}`,
    ...(env.blas
      ? [
        `BLAS: ${
          env.blas.config || "OpenBLAS"
        } (${env.blas.parallel} build, ${env.blas.coreName} kernels), \`${env.blas.path}\``,
      ]
      : []),
    ...(env.adapter
      ? [
        `GPU: ${env.adapter.description} (vendor ${env.adapter.vendor}${
          env.adapter.architecture ? `, ${env.adapter.architecture}` : ""
        })${
          env.adapter.fallback ? " — a software fallback adapter: its figures are not a GPU's" : ""
        }${
          env.adapter.count === 1 ? "; the only adapter here: every rank and worker shares it" : ""
        }`,
      ]
      : []),
    `Started: ${env.startedAt}${env.gitCommit ? `, commit \`${env.gitCommit.slice(0, 10)}\`` : ""}${
      env.gitCommitDate ? ` (committed ${env.gitCommitDate})` : ""
    }`,
    ...(config.nodes
      ? [
        `Across hosts: DDP ran on ${config.nodes.nnodes} hosts × ${config.nodes.nprocPerNode} rank(s), ${
          config.nodes.hosts.map((h) => `node ${h.nodeRank} ${h.host} (${h.address})`).join(", ")
        }; links between hosts over TCP (each run's \`transport\`), single and DP on node 0 only`,
      ]
      : []),
    `Per run: ${
      config.steps ?? "workload default"
    } timed steps after ${config.warmup} warm-up steps, ${config.repeats} repeat(s), seed ${config.seed}${
      config.quick ? " (`--quick` preset)" : ""
    }`,
    "samples/s is the global batch over a repeat's median step time, median over repeats; step p50/p95 pool every timed step of every repeat; speedup, efficiency and the ceiling ratios are taken within each repeat (the run, its `single` reference and its ceiling run back to back) and the median over repeats is quoted; % GEMM peak compares the achieved GFLOP/s of all workers with world size × one worker's plain GEMM, measured in the run's own process.",
    ...(config.bestSingleThreads
      ? [
        `The best single process: \`single\` also ran with ${config.bestSingleThreads} compute threads (every logical CPU); "vs best single" and the verdicts compare each parallel run with the faster of the two \`single\` runs, while speedup (scaling) and efficiency stay against the one-worker \`single\`.`,
      ]
      : config.bestSingleThreads === null && env.backend !== "native"
      ? [
        `No best single process with more threads: the ${env.backend} backend computes on one thread (the threaded wasm build fails to start in Deno with ERR_WORKER_PATH: it names its worker script by a bare file name), so the verdicts compare with the one-worker \`single\`; \`--backend native\` runs one with every core.`,
      ]
      : []),
    `Intervals [low–high] are a ${INTERVAL_METHOD}.`,
  ];
}

/**
 * The run sets in first-seen order, each with its runs: one per workload, or per workload and
 * global batch where a bench swept batches (named `workload, batch N`).
 */
export function byWorkload(results: Results): [string, RunRecord[]][] {
  return runSets(results).map((s) => [s.label, s.runs]);
}

/**
 * How charts and tables name each run's set.
 *
 * @param results the results
 * @returns a run → its set's label
 */
export function setLabels(results: Results): (run: RunRecord) => string {
  const labels = new Map<RunRecord, string>();
  for (const set of runSets(results)) for (const run of set.runs) labels.set(run, set.label);
  return (run) => labels.get(run) ?? run.workload;
}

/** One row per run: throughput, ratios, compute, memory, loss and equivalence. */
export function workloadTable(runs: RunRecord[]): Table {
  return {
    rows: [
      [
        "strategy",
        "samples/s",
        "step p50 ms",
        "step p95 ms",
        "speedup (scaling)",
        "vs best single",
        "efficiency",
        "GFLOP/s",
        "% GEMM peak",
        "peak memory (max worker)",
        "final loss",
        "accuracy",
        "max |Δparam| vs single",
      ],
      ...runs.map((r) => [
        runLabel(r),
        fixed(r.samplesPerSec, 0),
        fixed(r.stepMs.p50, 1),
        fixed(r.stepMs.p95, 1),
        `${fixed(r.speedup, 2)}x ${intervalText(r.speedupInterval)}`.trim(),
        r.strategy === "single" || r.speedupVsBestSingle == null
          ? "–"
          : `${fixed(r.speedupVsBestSingle, 2)}x ${intervalText(r.speedupVsBestSingleInterval)}`
            .trim(),
        percent(r.efficiency),
        fixed(r.compute.gflops, 2),
        percent(r.compute.fractionOfPeak),
        bytes(Math.max(...r.memory.workers.map((w) => w.peakBytes))),
        fixed(r.finalLoss, 3),
        fixed(r.accuracy, 3),
        r === runs.find((x) => x.strategy === "single")
          ? "reference"
          : sci(r.paramMaxAbsDiffVsSingle),
      ]),
    ],
    align: ["l", ...Array<"r">(12).fill("r")],
  };
}

/** How the phase table names each phase. */
const PHASE_LABELS: Record<keyof StepPhases, string> = {
  compute: "compute",
  replicate: "replicate",
  scatter: "scatter",
  gather: "gather",
  allReduce: "all-reduce",
  update: "update",
};

/**
 * Where a step's time goes, per run: the phases that add up to the step (those any run has),
 * then how communication splits into waiting for the slowest worker and moving bytes.
 */
export function phaseTable(runs: RunRecord[]): Table {
  const phases = runs.map(phasesOf);
  const shown = PHASES.filter((p) => phases.some((ph) => ph[p] > 0));
  const predicted = runs.some((r) => r.comm.predictedMsPerStep != null);
  const labelled = runs.some((r) => r.bound != null);
  // Communication hidden behind compute is in no phase: show the total and the exposed part.
  const hidden = runs.some((r) =>
    r.comm.exposedMsPerStep != null && r.comm.exposedMsPerStep < r.comm.msPerStep - 0.005
  );
  const exposedShown = runs.some((r) => r.strategy !== "single" && r.comm.exposedMsPerStep != null);
  return {
    rows: [
      [
        "strategy",
        "step p50 ms",
        ...shown.map((p) => `${PHASE_LABELS[p]} ms`),
        ...(hidden ? ["comm hidden ms"] : []),
        ...(exposedShown ? ["comm ms", "comm exposed ms"] : []),
        "of comm: waiting ms",
        "of comm: moving bytes ms",
        ...(predicted ? ["comm predicted ms"] : []),
        "comm bytes/step",
        "comm share",
        ...(labelled ? ["bound"] : []),
      ],
      ...runs.map((r, i) => [
        runLabel(r),
        fixed(r.stepMs.p50, 1),
        ...shown.map((p) => phases[i][p] > 0 ? fixed(phases[i][p], 2) : "–"),
        ...(hidden
          ? [
            r.comm.exposedMsPerStep == null || r.strategy === "single"
              ? "–"
              : fixed(Math.max(0, r.comm.msPerStep - r.comm.exposedMsPerStep), 2),
          ]
          : []),
        ...(exposedShown
          ? r.strategy === "single" ? ["–", "–"] : [
            fixed(r.comm.msPerStep, 2),
            fixed(r.comm.exposedMsPerStep ?? r.comm.msPerStep, 2),
          ]
          : []),
        fixed(r.comm.waitMsPerStep, 2),
        fixed(r.comm.transferMsPerStep, 2),
        ...(predicted
          ? [r.comm.predictedMsPerStep == null ? "–" : fixed(r.comm.predictedMsPerStep, 2)]
          : []),
        bytes(r.comm.bytesPerStep),
        percent(r.comm.share),
        ...(labelled ? [r.bound ?? "–"] : []),
      ]),
    ],
    align: [
      "l",
      ...Array<"r">(
        shown.length + 5 + (predicted ? 1 : 0) + (hidden ? 1 : 0) + (exposedShown ? 2 : 0),
      ).fill("r"),
      ...(labelled ? ["l" as const] : []),
    ],
  };
}

/** The stored matrix, split into its rows and recommendations. */
export function matrixParts(results: Results): {
  aspects: AspectRow[];
  recommendations: Recommendation[];
} {
  const entries = results.matrix as MatrixEntry[];
  return {
    aspects: entries.filter((e): e is AspectRow => e.aspect !== "recommendation"),
    recommendations: entries.filter((e): e is Recommendation => e.aspect === "recommendation"),
  };
}

/** The five-row matrix, headers in `lang`. */
export function matrixTable(aspects: AspectRow[], lang: Lang): Table {
  const labels = MATRIX_LABELS[lang];
  return {
    rows: [
      [labels.corner, ...STRATEGY_NAMES.map((s) => labels.strategies[s])],
      ...aspects.map((row) => [
        labels.aspects[row.aspect],
        ...STRATEGY_NAMES.map((s) => row.cells.find((c) => c.strategy === s)?.text ?? "n/a"),
      ]),
    ],
    align: ["l", "l", "l", "l"],
  };
}

/** What each matrix row counts, in English. */
export const MATRIX_NOTES: string[] = [
  "use case: the workloads each strategy was chosen (or single kept) for by the rules below, and where a strategy's best run reached the threshold over the best single process.",
  "memory per device: each worker's peak tensor memory (`tf.memory().numBytes`, plus the wasm heap on wasm and native), the analogue of a GPU's memory; max/mean is the imbalance between workers; DP's main holds the master copy, so its ratio to the replicas is shown.",
  "parallel efficiency: scaling speedup = samples/s against the one-worker single on the same workload in this run (efficiency = speedup / world size, in brackets); of the ceiling = speedup over what N workers with no communication reached on this machine.",
  "implementation complexity: the code lines (neither blank nor comment-only) of every module a strategy's run reaches — its imports, followed through, and the workers and processes it starts — outside core/ and workloads/, which all three share; DP and DDP leave out what single's run reaches too, so theirs is what each adds to the plain loop. Counted when the results were built.",
  "scalability: what the implementation supports, and the world sizes actually run.",
];

/** The rules, one line each, in the order they apply. */
export const RULE_LINES: string[] = [
  RECOMMENDATION_RULES.fastest,
  RECOMMENDATION_RULES["tie-balanced-memory"],
  RECOMMENDATION_RULES["keep-single"],
  RECOMMENDATION_RULES.inconclusive,
];

/** The all-reduce rows: time, algorithm and bus bandwidth, bus bandwidth against raw. */
export function allreduceTable(result: AllreduceResult): Table {
  // Files with collectives (allreduce's nccl-tests knobs) get nccl-tests' columns.
  if (result.rows.some((r) => r.collective !== undefined)) {
    // A transport column once anything other than Unix sockets ran (`--transport tcp`).
    const transports = result.rows.some((r) => r.transport !== "unix");
    const lead = <T>(cells: T[], first: T): T[] => transports ? [first, ...cells] : cells;
    return {
      rows: [
        lead([
          "collective",
          "ranks",
          "size",
          "count",
          "type",
          "redop",
          "in place",
          "time (µs)",
          "algbw (GB/s)",
          "busbw (GB/s)",
          "#wrong",
          "busbw / raw",
        ], "transport"),
        ...result.rows.map((row) =>
          lead([
            row.collective ?? "all-reduce",
            String(row.worldSize),
            bytes(row.bytes),
            String(row.count ?? row.bytes / 4),
            "float",
            row.op ?? "–",
            row.inPlace === false ? "no" : "yes",
            fixed(row.usPerOp, 1),
            fixed(row.algbwGBps, 3),
            fixed(row.busbwGBps, 3),
            row.wrong == null ? "N/A" : String(row.wrong),
            percent(row.busbwGBps / rawGBps(result, row.transport)),
          ], row.transport)
        ),
      ],
      align: lead<"l" | "r">(["l", "r", "r", "r", "l", "l", "l", "r", "r", "r", "r", "r"], "l"),
    };
  }
  return {
    rows: [
      ["transport", "ranks", "size", "time (µs)", "algbw (GB/s)", "busbw (GB/s)", "busbw / raw"],
      ...result.rows.map((row) => [
        row.transport,
        String(row.worldSize),
        bytes(row.bytes),
        fixed(row.usPerOp, 1),
        fixed(row.algbwGBps, 3),
        fixed(row.busbwGBps, 3),
        percent(row.busbwGBps / rawGBps(result, row.transport)),
      ]),
    ],
    align: ["l", "r", "r", "r", "r", "r", "r"],
  };
}

/** The all-reduce section's text above its table: the raw ceiling, and what busbw is. */
export function allreduceLines(result: AllreduceResult): string[] {
  return [
    ...(result.raws ?? [result.raw]).map((raw) => {
      const samples = raw.samplesGBps
        ? ` (the better of ${
          raw.samplesGBps.map((g) => fixed(g, 3)).join(" and ")
        }, measured before and after the all-reduce runs)`
        : "";
      return `Raw ${raw.transport} socket throughput between two Deno processes, both directions at once (${
        raw.bytes / 2 ** 20
      } MiB): **${fixed(raw.GBps, 3)} GB/s** per direction${samples}.`;
    }),
    "busbw = algbw · 2(n−1)/n: the bytes each link carried per second, the figure to compare with the raw throughput. Time is the median over iterations of the slowest rank.",
    ...(result.linkModel?.length
      ? [
        `Link model (time = 2(n−1)·α + 2(n−1)/n · bytes / β, least squares on relative error over the in-place rows; \`predict --allreduce\` reads it): ${
          result.linkModel.map((m) =>
            `${m.transport} ${m.worldSize} ranks: α ${fixed(m.alphaUs, 1)} µs per message, β ${
              fixed(m.betaGBps, 3)
            } GB/s per link, residual ${fixed(m.residual * 100, 1)}%`
          ).join("; ")
        }.`,
      ]
      : []),
  ];
}

/** A recommendation's text as a sentence: capitalised, with a full stop. */
export function sentence(text: string): string {
  return `${text.charAt(0).toUpperCase()}${text.slice(1)}.`;
}

/** How the answer table words each verdict. */
const VERDICT_WORDS = {
  choose: "choose",
  "keep-single": "keep single",
  inconclusive: "inconclusive",
};

/**
 * The answer first: per workload, the verdict, what to run, how its best parallel run
 * compares with the best single process (with the interval over repeats), that single
 * process, and why in a few words.
 */
export function answerTable(results: Results): Table {
  const { recommendations } = matrixParts(results);
  const threshold = `${fixed(WORTHWHILE_SPEEDUP, 2)}x`;
  const sets = runSets(results);
  const rows = recommendations.map((rec) => {
    const set = sets.find((s) =>
      s.workload === rec.workload && s.globalBatch === (rec.globalBatch ?? null)
    );
    const runs = set?.runs ?? results.runs.filter((r) => r.workload === rec.workload);
    const parallel = runs.filter((r) => r.strategy !== "single");
    const bestThreads = parallel[0]?.bestSingleThreads ?? 1;
    const single = runs.find((r) => r.strategy === "single" && (r.threads ?? 1) === bestThreads) ??
      runs.find((r) => r.strategy === "single");
    const bestSingle = single ? `${runLabel(single)}, ${fixed(single.stepMs.p50, 1)} ms/step` : "–";
    const verdict = rec.verdict ?? (rec.strategy === "single" ? "keep-single" : "choose");
    const decisive = rec.strategy === "single"
      ? bestOf(parallel)
      : parallel.find((r) => r.strategy === rec.strategy && r.worldSize === rec.worldSize);
    const compared = decisive
      ? `${runLabel(decisive)} ${fixed(vsBest(decisive), 2)}x ${
        intervalText(vsBestInterval(decisive))
      }`.trim()
      : "–";
    const choice = rec.strategy === "single"
      ? (single ? runLabel(single) : "single")
      : `${runLabel(rec)}${verdict === "inconclusive" ? "?" : ""}`;
    const bound = decisive?.bound ? `; ${decisive.bound}-bound` : "";
    const why = rec.rule === "only-single"
      ? "only single ran"
      : verdict === "choose"
      ? `interval ≥ ${threshold}${
        rec.rule === "tie-balanced-memory" ? "; tie: less memory imbalance" : ""
      }`
      : verdict === "keep-single"
      ? `every interval < ${threshold}`
      : `straddles ${threshold}${rec.repeatsSuggested ? `; ~${rec.repeatsSuggested} repeats` : ""}`;
    // A fallback backend's verdicts say so in the row itself, so that a row quoted alone does.
    const provisional = rec.provisional
      ? `; provisional — ${provisionalWhy(results.env.backend) ?? results.env.backend}`
      : "";
    const name = set?.label ?? rec.workload;
    return [
      name,
      `${VERDICT_WORDS[verdict]}${rec.provisional ? " (provisional)" : ""}`,
      choice,
      compared,
      bestSingle,
      `${why}${bound}${provisional}`,
    ];
  });
  return {
    rows: [[
      "workload",
      "verdict",
      "run",
      "best parallel vs best single",
      "best single process",
      "why",
    ], ...rows],
    align: ["l", "l", "l", "r", "l", "l"],
  };
}

/**
 * The line above the answer table when its verdicts are provisional (a fallback backend):
 * why, and how to get `native`; null otherwise.
 *
 * @param results the results
 * @returns one paragraph (Markdown inline code and **bold**), or null
 * @example
 * ```ts
 * import type { Results } from "../analysis/results.ts";
 * declare const results: Results;
 * provisionalLine(results); // "**Provisional verdicts** — wasm: …"
 * ```
 */
export function provisionalLine(results: Results): string | null {
  return hasProvisionalVerdicts(results) ? provisionalNote(results.env) : null;
}

/** The line under the answer table. */
export const ANSWER_NOTE =
  `Each parallel run is compared with the best single process (the faster \`single\` run, which may use every core through threads) by the interval of its speedup over the repeats; "choose" needs the whole interval at or above ${
    fixed(WORTHWHILE_SPEEDUP, 2)
  }x. The rules, the evidence and the selection matrix follow.`;

/**
 * Stragglers: for each run whose ranks recorded their arrival at the collectives, the rank
 * that arrives last (by its median lag behind the first) and how much of the communication
 * time is spent waiting for the slowest rank.
 */
export function stragglerLines(runs: RunRecord[]): string[] {
  return runs.flatMap((r) => {
    const ranks = r.memory.workers.filter((w) => w.arrivalLagMs);
    if (ranks.length < 2) return [];
    const slowest = ranks.reduce((a, b) => (b.arrivalLagMs!.p50 > a.arrivalLagMs!.p50 ? b : a));
    const lag = slowest.arrivalLagMs!;
    const share = r.comm.msPerStep > 0 ? r.comm.waitMsPerStep / r.comm.msPerStep : 0;
    return [
      `${
        runLabel(r)
      }: rank ${slowest.index} arrives last at the collective (lag behind the first: p50 ${
        fixed(lag.p50, 2)
      } ms, p95 ${fixed(lag.p95, 2)} ms); waiting for the slowest rank is ${
        percent(share)
      } of its communication (${fixed(r.comm.waitMsPerStep, 2)} of ${
        fixed(r.comm.msPerStep, 2)
      } ms per step).`,
    ];
  });
}

/** The line under the crossover section's heading. */
export const CROSSOVER_NOTE =
  `For each workload family run at several configurations (sizes, and global batches with \`--batches\`): each parallel run's speedup over the best single process of the same configuration, with its interval over the repeats, against the work of a step and the gradient a step all-reduces; **choose** marks the configurations where the verdict rule would choose the run (parameters within the bound, whole interval at or above ${
    fixed(WORTHWHILE_SPEEDUP, 2)
  }x). Where parallel starts to pay is the smallest such configuration, by work per step.`;

/**
 * Where parallel starts to pay, per family: one sentence (the smallest configuration each
 * strategy pays from, or not within the measured range) and a table of its configurations;
 * empty when the results have no crossover.
 *
 * @param results the results
 * @returns per family, its sentence and table
 */
export function crossoverTables(
  results: Results,
): { family: string; line: string; table: Table }[] {
  const crossover = results.crossover ?? [];
  const families = [...new Set(crossover.map((c) => c.family))];
  return families.map((family) => {
    const entries = crossover.filter((c) => c.family === family);
    const name = (c: (typeof entries)[number]) => `${c.strategy.toUpperCase()}-${c.worldSize}`;
    const line = `**${family}**: ${
      entries.map((c) =>
        `${name(c)} ${
          c.firstChoose
            ? `pays from ${c.firstChoose.workload}, batch ${c.firstChoose.globalBatch}`
            : "does not pay within the measured range"
        }`
      ).join("; ")
    }.`;
    const key = (p: { workload: string; globalBatch: number }) => `${p.workload}|${p.globalBatch}`;
    const configurations = [
      ...new Map(entries.flatMap((c) => c.points).map((p) => [key(p), p])).values(),
    ].sort((a, b) => a.flopsPerStep - b.flopsPerStep || a.gradientBytes - b.gradientBytes);
    const rows = configurations.map((p) => [
      p.workload,
      String(p.globalBatch),
      p.params >= 1e6 ? `${fixed(p.params / 1e6, 2)} M` : `${fixed(p.params / 1e3, 1)} k`,
      fixed(p.flopsPerStep / 1e9, 2),
      bytes(p.gradientBytes),
      ...entries.map((c) => {
        const at = c.points.find((q) => key(q) === key(p));
        return at
          ? `${fixed(at.speedupVsBestSingle, 2)}x ${intervalText(at.interval)}${
            at.chosen ? " choose" : ""
          }`.replace(/\s+/g, " ").trim()
          : "–";
      }),
    ]);
    return {
      family,
      line,
      table: {
        rows: [
          [
            "configuration",
            "global batch",
            "params",
            "GFLOP/step",
            "gradient/step",
            ...entries.map((c) => `${name(c)} vs best single`),
          ],
          ...rows,
        ],
        align: ["l", "r", "r", "r", "r", ...entries.map(() => "r" as const)],
      },
    };
  });
}
