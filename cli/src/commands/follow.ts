/** `watch` and `events`. */
import { InvalidArgumentError, Option, type Command } from 'commander';
import { type HistoryJson, type HistoryStateName, isTerminal, metaloop, type RunStateName, stateFromProto, stateToProto } from '@metaloop/shared';
import { EXIT } from '@metaloop/client';
import { summaryJson, summaryLines } from '../format.js';
import { eventJson, eventLine, followRun } from '../watch.js';
import { examples, jsonOption, outputOption, wantsJson, type CliContext } from './context.js';
import { watchToEnd } from './control.js';

const STATE_AFTER: Record<HistoryStateName, RunStateName> = {
  submitted: 'pending',
  running: 'running',
  paused: 'paused',
  resumed: 'running',
  cancelled: 'cancelled',
  succeeded: 'succeeded',
  failed: 'failed',
};

/** The kinds `events --kind` takes. */
export const EVENT_KINDS = ['step', 'eval', 'state', 'checkpoint'] as const;

/** `--kind step,eval`: a set of known kinds, else a usage error naming the valid ones. */
export function parseKinds(value: string): Set<string> {
  const kinds = value.split(',').map((k) => k.trim().toLowerCase()).filter((k) => k !== '');
  const unknown = kinds.filter((k) => !(EVENT_KINDS as readonly string[]).includes(k));
  if (unknown.length > 0 || kinds.length === 0) {
    throw new InvalidArgumentError(`unknown event kind ${unknown.map((k) => JSON.stringify(k)).join(', ') || '""'}: the kinds are ${EVENT_KINDS.join(', ')} (comma-separated)`);
  }
  return new Set(kinds);
}

/** The durable history of a run as the events it recorded (steps, evaluations, checkpoints, state changes), in step order. */
export function historyEvents(h: HistoryJson): metaloop.IEvent[] {
  const out: metaloop.IEvent[] = [];
  h.steps.forEach((step, i) =>
    out.push({
      runId: h.runId,
      kind: metaloop.Event.Kind.KIND_STEP,
      step,
      preLoss: h.preLoss[i],
      postLoss: h.postLoss[i],
      ...(h.preReturn && h.postReturn ? { rl: true, preReturn: h.preReturn[i], postReturn: h.postReturn[i] } : {}),
      timestampMs: h.timeMs[i],
    }),
  );
  for (const e of h.evals) {
    out.push({
      runId: h.runId,
      kind: metaloop.Event.Kind.KIND_EVAL,
      step: e.step,
      timestampMs: e.timeMs,
      eval: {
        step: e.step,
        tasks: e.tasks,
        innerSteps: e.innerSteps,
        preLoss: e.preLoss,
        postLoss: e.postLoss,
        accuracy: e.accuracy,
        ci95: e.ci95,
        lossCi95: e.lossCi95 ?? [],
        ...(e.preLossCi95 ? { preLossCi95: e.preLossCi95 } : {}),
        ...(e.postReturn
          ? { preReturn: e.preReturn, postReturn: e.postReturn, preReturnCi95: e.preReturnCi95, returnCi95: e.returnCi95 ?? [], gain: e.gain ?? [], gainCi95: e.gainCi95 ?? [] }
          : {}),
      },
    });
  }
  for (const c of h.checkpoints) out.push({ runId: h.runId, kind: metaloop.Event.Kind.KIND_CHECKPOINT, step: c.step, timestampMs: c.timeMs, message: `checkpoint at step ${c.step}` });
  // The message names the change (`resumed`, `submitted`); the state is the run's state after it.
  for (const c of h.states ?? []) out.push({ runId: h.runId, kind: metaloop.Event.Kind.KIND_STATE, step: c.step, timestampMs: c.timeMs, state: stateToProto(STATE_AFTER[c.state]), message: c.state });
  const order = (k: metaloop.Event.Kind | null | undefined) => (k === metaloop.Event.Kind.KIND_STEP ? 0 : k === metaloop.Event.Kind.KIND_EVAL ? 1 : k === metaloop.Event.Kind.KIND_CHECKPOINT ? 2 : 3);
  return out.sort((a, b) => (a.step ?? 0) - (b.step ?? 0) || order(a.kind) - order(b.kind));
}

export function registerFollowCommands(program: Command, ctx: CliContext): void {
  const { out } = ctx;

  examples(
    program
      .command('watch <run>')
      .description(
        'follow a run until it ends: a live progress bar (step, tasks/s, loss, eval, ETA) on a terminal, plain lines otherwise; ' +
          'exit 0 when it succeeded, 1 when it failed or was cancelled',
      )
      .addOption(jsonOption())
      .addOption(outputOption())
      .action(async (runId: string, opts: { json?: boolean; output?: string }) => {
        const json = wantsJson(opts);
        await ctx.withClient(async (client, transport) => {
          const final = await watchToEnd(ctx, client, transport, runId, json);
          if (json) out(JSON.stringify(summaryJson(final)));
          else summaryLines(final).forEach((l) => out(l));
          if (stateFromProto(final.state) !== 'succeeded') process.exitCode = EXIT.FAILURE;
        });
      }),
    'metaloop watch sinusoid-maml-3f2a1c',
    'metaloop watch sinusoid-maml-3f2a1c | tee progress.log   # plain lines when not a terminal',
  );

  examples(
    program
      .command('events <run>')
      .description(
        "print the run's recorded events (every step's losses, evaluations, checkpoints) from its durable history; " +
          'with --follow, then the live events until the run ends',
      )
      .option('-f, --follow', 'keep printing live events until the run ends')
      .addOption(new Option('--kind <kinds>', `only these kinds, comma-separated: ${EVENT_KINDS.join(',')} (default: all)`).argParser(parseKinds))
      .addOption(jsonOption())
      .addOption(outputOption())
      .action(async (runId: string, opts: { follow?: boolean; kind?: Set<string>; json?: boolean; output?: string }) => {
        const json = wantsJson(opts);
        const kinds = opts.kind ?? null;
        const print = (ev: metaloop.IEvent) => {
          const j = eventJson(ev);
          if (kinds && !kinds.has(String(j.kind))) return;
          out(json ? JSON.stringify(j) : eventLine(ev));
        };
        await ctx.withClient(async (client, transport) => {
          const blob = await client.history(runId);
          const history = JSON.parse(Buffer.from(blob.data).toString('utf8')) as HistoryJson;
          const past = historyEvents(history);
          past.forEach(print);
          if (!opts.follow) return;
          const status = await client.status(runId);
          if (isTerminal(stateFromProto(status.state))) {
            // Histories record their end since issue 16; older ones get it from the record.
            if (!history.states?.length) print({ runId, kind: metaloop.Event.Kind.KIND_STATE, step: status.step, state: status.state, timestampMs: status.finishedMs || status.updatedMs });
            return;
          }
          const lastStep = past.length ? (past[past.length - 1]!.step ?? 0) : 0;
          let ended = false;
          const aborter = new AbortController();
          const onSignal = () => aborter.abort();
          process.once('SIGINT', onSignal);
          try {
            await followRun({
              client,
              transport,
              prefix: ctx.globals().prefix,
              runId,
              signal: aborter.signal,
              onEvent: (ev) => {
                // Steps already printed from the history are not printed twice.
                if (ev.kind === metaloop.Event.Kind.KIND_STEP && (ev.step ?? 0) <= lastStep) return;
                if (ev.kind === metaloop.Event.Kind.KIND_STATE && isTerminal(stateFromProto(ev.state))) ended = true;
                print(ev);
              },
            }).then((final) => {
              if (!ended) print({ runId, kind: metaloop.Event.Kind.KIND_STATE, step: final.step, state: final.state, timestampMs: final.finishedMs || Date.now() });
            });
          } catch (e) {
            if (!aborter.signal.aborted) throw e;
          } finally {
            process.removeListener('SIGINT', onSignal);
          }
        });
      }),
    'metaloop events sinusoid-maml-3f2a1c --kind eval,checkpoint',
    'metaloop events sinusoid-maml-3f2a1c --follow --output json   # NDJSON, one event per line',
  );
}
