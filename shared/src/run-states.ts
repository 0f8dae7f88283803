/**
 * A run's states by name (the run record's `state`, proto `RunState`): what the coordinator writes
 * and every client reads (`metaloop status`, `--watch`).
 */
import { metaloop } from './gen/metaloop.js';

export const RUN_STATES = ['pending', 'running', 'paused', 'succeeded', 'failed', 'cancelled'] as const;
export type RunStateName = (typeof RUN_STATES)[number];

const TO_PROTO: Record<RunStateName, metaloop.RunState> = {
  pending: metaloop.RunState.RUN_STATE_PENDING,
  running: metaloop.RunState.RUN_STATE_RUNNING,
  paused: metaloop.RunState.RUN_STATE_PAUSED,
  succeeded: metaloop.RunState.RUN_STATE_SUCCEEDED,
  failed: metaloop.RunState.RUN_STATE_FAILED,
  cancelled: metaloop.RunState.RUN_STATE_CANCELLED,
};

export function stateToProto(state: RunStateName): metaloop.RunState {
  return TO_PROTO[state];
}

export function stateFromProto(state: metaloop.RunState | null | undefined): RunStateName | 'unspecified' {
  for (const name of RUN_STATES) if (TO_PROTO[name] === state) return name;
  return 'unspecified';
}

export function isTerminal(state: RunStateName | 'unspecified'): boolean {
  return state === 'succeeded' || state === 'failed' || state === 'cancelled';
}
