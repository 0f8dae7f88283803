/**
 * The shard: a run's meta-batch (or its held-out evaluation) cut into fixed-size pieces of task
 * seeds, in shard order. What defines one lives here: how many tasks each shard holds, which task
 * seeds it carries (independent of who computes it), and its message id (the de-duplication key
 * of a shard and its result). Sums over shards are always taken in shard order (aggregator.ts).
 */
import { metaloop } from './gen/metaloop.js';
import { taskSeed, type SeedDomainName } from './seeds.js';

/** The kind of a shard, the one form every package uses (the proto enum only at the wire). */
export type ShardKindName = 'train' | 'eval';

/** The kind a proto enum value names (unset = train), or null when it is none we know. */
export function kindFromProto(kind: metaloop.ShardKind | null | undefined): ShardKindName | null {
  if (kind === metaloop.ShardKind.SHARD_KIND_TRAIN || kind === undefined || kind === null) return 'train';
  if (kind === metaloop.ShardKind.SHARD_KIND_EVAL) return 'eval';
  return null;
}

/** The proto enum value of a kind. */
export function kindToProto(kind: ShardKindName): metaloop.ShardKind {
  return kind === 'eval' ? metaloop.ShardKind.SHARD_KIND_EVAL : metaloop.ShardKind.SHARD_KIND_TRAIN;
}

/** Number of tasks in each shard when `total` tasks are cut into shards of `shardSize`. */
export function shardSizes(total: number, shardSize: number): number[] {
  const out: number[] = [];
  for (let start = 0; start < total; start += shardSize) out.push(Math.min(shardSize, total - start));
  return out;
}

/**
 * The task seeds of shard `shard` (holding `tasks` tasks, shards of `shardSize`): task index
 * `shard · shardSize + k` of (runSeed, domain, step), so a task's seed does not depend on sharding.
 */
export function shardTaskSeeds(runSeed: number, domain: SeedDomainName, step: number, shard: number, shardSize: number, tasks: number): number[] {
  return Array.from({ length: tasks }, (_, k) => taskSeed(runSeed, domain, step, shard * shardSize + k));
}

/** Message id of a shard or its result: `<run>.<step>.<shard>` (JetStream de-duplication key). */
export function shardMsgId(runId: string, step: number, shard: number, kind: ShardKindName = 'train'): string {
  return kind === 'train' ? `${runId}.${step}.${shard}` : `${runId}.e${step}.${shard}`;
}
