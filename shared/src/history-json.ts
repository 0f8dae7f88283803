/**
 * The JSON of a run's history (version 1) as the `history` verb serves it and `metaloop report`,
 * `events` and `watch` read it; the coordinator keeps it (coordinator/src/history.ts, RunHistory).
 */

/** The state changes a history records (`metaloop events RUN --kind state`). */
export const HISTORY_STATES = ['submitted', 'running', 'paused', 'resumed', 'cancelled', 'succeeded', 'failed'] as const;
export type HistoryStateName = (typeof HISTORY_STATES)[number];

export interface HistoryState {
  /** The run's step when its state changed. */
  readonly step: number;
  readonly state: HistoryStateName;
  /** Unix ms. */
  readonly timeMs: number;
}

export interface HistoryEval {
  readonly step: number;
  readonly tasks: number;
  readonly innerSteps: number[];
  readonly preLoss: number;
  readonly postLoss: number[];
  readonly accuracy: number[];
  /** 95% CI half-widths of the reported metric (accuracy for classification, else post-adaptation loss). */
  readonly ci95: number[];
  /** 95% CI half-widths of postLoss and preLoss (absent from older histories). */
  readonly lossCi95?: number[];
  readonly preLossCi95?: number;
  /** Meta-RL evaluations (docs/meta-rl.md): mean return before and after innerSteps[i], CIs, paired gains. */
  readonly preReturn?: number;
  readonly postReturn?: number[];
  readonly preReturnCi95?: number;
  readonly returnCi95?: number[];
  readonly gain?: number[];
  readonly gainCi95?: number[];
  /** Unix ms. */
  readonly timeMs: number;
}

export interface HistoryJson {
  readonly version: 1;
  readonly runId: string;
  /** Columns of the meta-train steps: step number (1-based, after the update), losses, Unix ms. */
  readonly steps: number[];
  readonly preLoss: number[];
  readonly postLoss: number[];
  readonly timeMs: number[];
  readonly evals: HistoryEval[];
  readonly checkpoints: { step: number; timeMs: number }[];
  /** State changes in the order they happened (absent from older histories). */
  readonly states?: HistoryState[];
  /** Meta-RL runs: mean returns of θ's and θ′'s rollouts per step (their loss columns are 0). */
  readonly preReturn?: number[];
  readonly postReturn?: number[];
}
