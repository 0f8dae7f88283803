/**
 * A small deterministic worker for coordinator tests: each task seed s defines a target c_s, the
 * task's loss is ½‖θ − c_s‖² and its meta-gradient θ − c_s (summed over the shard's tasks in task
 * order, in float64, rounded once to float32, like the real worker). It runs the real protocol
 * over a real Transport; hooks let a test delay, drop or corrupt results.
 */
import {
  fromBundle,
  metaloop,
  Rng,
  shardMsgId,
  toBundle,
  specFromJson,
  type TensorSpec,
  type Transport,
  paramLayout,
} from '@metaloop/shared';

export interface QuadraticWorkerOptions {
  readonly transport: Transport;
  readonly id: string;
  /** Extra delay before answering shard (step, shard, delivery). */
  readonly delayMs?: (shard: metaloop.Shard, delivery: number) => number;
  /** Return 'drop' to ack without a result, 'nan' to send a NaN gradient first. */
  readonly fault?: (shard: metaloop.Shard, delivery: number) => 'drop' | 'nan' | undefined;
}

export function target(seed: number, n: number): Float64Array {
  const rng = new Rng(seed);
  return Float64Array.from({ length: n }, () => rng.uniform(-1, 1));
}

export class QuadraticWorker {
  private readonly stopper = new AbortController();
  private loop: Promise<void> | null = null;
  shardsDone = 0;
  private published = 0;

  constructor(private readonly o: QuadraticWorkerOptions) {}

  start(): void {
    this.loop ??= this.consume();
  }

  async close(): Promise<void> {
    this.stopper.abort();
    await this.loop;
  }

  private async consume(): Promise<void> {
    const t = this.o.transport;
    for await (const msg of t.consumeWork({ signal: this.stopper.signal, pollMs: 50 })) {
      const shard = metaloop.Shard.decode(msg.data);
      const delay = this.o.delayMs?.(shard, msg.deliveryCount) ?? 0;
      if (delay > 0) await new Promise((r) => setTimeout(r, delay));
      const fault = this.o.fault?.(shard, msg.deliveryCount);
      if (fault === 'drop') {
        await msg.ack();
        continue;
      }
      const rec = metaloop.RunRecord.decode((await t.getRun(shard.runId))!);
      const spec = specFromJson(rec.specJson);
      const layout: TensorSpec[] = paramLayout(spec);
      let bytes: Uint8Array;
      try {
        bytes = await t.getParams(shard.runId, shard.paramVersion);
      } catch {
        // θ of a version the coordinator has moved past (a late, speculative or stale copy): drop it.
        await msg.ack();
        continue;
      }
      const theta = fromBundle(metaloop.TensorBundle.decode(bytes), layout).data;
      const n = theta.length;
      const kind = shard.kind === metaloop.ShardKind.SHARD_KIND_EVAL ? 'eval' : 'train';
      const base: metaloop.IShardResult = {
        runId: shard.runId,
        step: shard.step,
        shard: shard.shard,
        paramVersion: shard.paramVersion,
        workerId: this.o.id,
        kind: shard.kind,
        tasks: shard.taskSeeds.length,
      };
      let result: metaloop.IShardResult;
      if (kind === 'train') {
        const grad = new Float64Array(n);
        let loss = 0;
        for (const seed of shard.taskSeeds) {
          const c = target(seed, n);
          for (let i = 0; i < n; i++) {
            const d = theta[i]! - c[i]!;
            grad[i] = grad[i]! + d;
            loss += 0.5 * d * d;
          }
        }
        const g32 = Float32Array.from(grad);
        if (fault === 'nan') g32[0] = Number.NaN;
        result = { ...base, grad: toBundle({ layout, data: g32 }), preLossSum: loss, postLossSum: loss * 0.5 };
      } else {
        let loss = 0;
        for (const seed of shard.taskSeeds) {
          const c = target(seed, n);
          for (let i = 0; i < n; i++) loss += 0.5 * (theta[i]! - c[i]!) ** 2;
        }
        result = { ...base, evalLossSums: Array.from({ length: shard.evalInnerSteps + 1 }, (_, k) => loss / 2 ** k) };
      }
      // Unique per computation: a recomputed shard (retry, resumed run) must not be de-duplicated.
      const id = `${shardMsgId(shard.runId, shard.step, shard.shard, kind)}.${this.o.id}.${++this.published}`;
      await t.publishResult(shard.runId, id, metaloop.ShardResult.encode(result).finish());
      await msg.ack();
      this.shardsDone++;
    }
  }
}
