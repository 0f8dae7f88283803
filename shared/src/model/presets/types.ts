import type { SpecIssue } from '../../errors.js';

/** What a preset needs to know about the task: its input shape and output count. */
export interface PresetDims {
  readonly inputShape: readonly number[];
  readonly outputs: number;
  /** Image families: side and channels. */
  readonly image?: { readonly size: number; readonly channels: number };
  /** The task family's name (for messages). */
  readonly family: string;
}

/** A preset that does not fit the task says so at a spec path (`model.kind`, `model.channels`, …). */
export type PresetIssues = SpecIssue[];
