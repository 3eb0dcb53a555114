/**
 * Words the renderers print, per report language. Only the selection matrix is translated:
 * `zh` uses the article's own wording (适用场景, 显存占用, …); everything else stays English.
 *
 * @module
 */
import type { StrategyName } from "../core/run_types.ts";
import type { Aspect } from "../analysis/matrix.ts";

/** Report languages. */
export type Lang = "en" | "zh";

/** Every report language, for the CLI's choices. */
export const LANGS: readonly Lang[] = ["en", "zh"];

/** Matrix headings in one language. */
export interface MatrixLabels {
  section: string;
  corner: string;
  strategies: Record<StrategyName, string>;
  aspects: Record<Aspect, string>;
  recommendations: string;
  /** The first section: the verdicts. */
  answer: string;
}

/** Matrix headings per language; `zh` is the article's wording. */
export const MATRIX_LABELS: Record<Lang, MatrixLabels> = {
  en: {
    section: "Selection matrix, measured on this machine",
    corner: "aspect",
    strategies: {
      single: "single device",
      dp: "DataParallel (DP)",
      ddp: "DistributedDataParallel (DDP)",
    },
    aspects: {
      useCase: "use case",
      memoryPerDevice: "memory per device",
      parallelEfficiency: "parallel efficiency",
      implementationComplexity: "implementation complexity",
      scalability: "scalability",
    },
    recommendations: "Recommendations",
    answer: "The answer",
  },
  zh: {
    section: "对比与选择建议（本机实测）",
    corner: "特性",
    strategies: { single: "单卡训练", dp: "DataParallel(DP)", ddp: "DDP" },
    aspects: {
      useCase: "适用场景",
      memoryPerDevice: "显存占用",
      parallelEfficiency: "并行效率",
      implementationComplexity: "实现复杂度",
      scalability: "扩展性",
    },
    recommendations: "选择建议",
    answer: "结论",
  },
};
