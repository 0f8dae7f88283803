/**
 * Profile of real shards on the tensorflow backend (issue 27): CPU time by phase of a MAML task,
 * inside TensorFlow by op type, and outside it, with op counts per task. Instruments the worker's
 * own computeShard (nothing re-implemented):
 *
 * - phases come from the nesting of tfjs' gradient calls (`engine.gradients`, which tf.grads and
 *   tf.valueAndGrads call): kernels outside any gradient call (the pre-adaptation query loss, task
 *   tensors, rows and readback), the forward of a gradient call nested in another (support forward
 *   of second-order MAML, recorded for the outer pass), its backward (the inner gradient), the
 *   forward of the outer call outside the nested one (inner update, query forward at θ′) and the
 *   outer backward (the meta-gradient). First order has no nesting: its inner gradient is the first
 *   gradient call, the meta-gradient the second.
 * - kernels: CPU time (process.cpuUsage around each call) of tfjs-node's binding.executeOp, per
 *   TensorFlow op name; outside kernels: everything else (tfjs engine and tape, tfjs-node's and the
 *   worker's JavaScript, task sampling, and the binding's tensor creation, deletion and readback,
 *   also listed by themselves). Kernel time includes TensorFlow's own per-op dispatch (op and attribute set-up, kernel
 *   lookup, allocation), estimated separately as the op count × the measured cost of a 4-element op.
 *
 * The instrumentation costs two getrusage calls per binding call, counted as outside time: read
 * the uninstrumented CPU s per task (the anchor rows) for speed, this for where the time goes.
 */

const DISPATCH_REPS = 3000;

/** CPU µs of one tiny binding op (AddV2 on 4 floats + delete): TensorFlow's per-op floor. */
function dispatchFloorUs(tf) {
  const b = tf.backend();
  const a = tf.ones([4]);
  const c = tf.ones([4]);
  const ids = b.getInputTensorIds([a, c]);
  const attrs = [{ name: 'T', type: b.binding.TF_ATTR_TYPE, value: b.binding.TF_FLOAT }];
  const once = () => b.binding.deleteTensor(b.binding.executeOp('AddV2', attrs, ids, 1)[0].id);
  for (let i = 0; i < 300; i++) once();
  const c0 = process.cpuUsage();
  for (let i = 0; i < DISPATCH_REPS; i++) once();
  const u = process.cpuUsage(c0);
  tf.dispose([a, c]);
  return (u.user + u.system) / DISPATCH_REPS;
}

const PHASES = {
  none: 'task tensors, pre-adaptation query loss, rows and readback',
  innerForward: 'support forward (recorded for the outer gradient)',
  innerBackward: 'inner gradient (support backward)',
  outerForward: 'inner update and query forward at θ′',
  outerBackward: 'meta-gradient (query backward; second order: through the inner gradient)',
};

/**
 * Profiles `tasks` one-task shards of `spec` (after `warmup` unprofiled tasks). Returns per-phase
 * and per-op CPU ms per task, op counts per task and the outside share.
 */
export async function profileShards({ tf, engine, spec, params, tasks, warmup, seedBase = 5000 }) {
  const opts = { batchTasks: false, yieldEveryMs: 1e9 };
  const one = (seed) => engine.computeShard(spec, params, { kind: 'train', taskSeeds: [seed] }, opts);
  for (let i = 0; i < warmup; i++) await one(seedBase - 1 - i);
  const floorUs = dispatchFloorUs(tf);

  const eng = tf.engine();
  // The backend's binding object is read-only: wrap it in an object of our own for the duration.
  const backend = tf.backend();
  const original = backend.binding;
  const binding = Object.create(original);
  backend.binding = binding;
  const cpu = () => {
    const u = process.cpuUsage();
    return u.user + u.system;
  };
  // phase bookkeeping: a stack of gradient calls; each is in 'forward' or 'backward'
  const stack = [];
  let firstOrderCalls = 0;
  const phaseNow = () => {
    if (stack.length === 0) return 'none';
    const top = stack[stack.length - 1];
    if (stack.length >= 2) return top.state === 'forward' ? 'innerForward' : 'innerBackward';
    // one level: second order's outer call (it had a nested one), or a first-order call (1st = inner)
    if (top.nested) return top.state === 'forward' ? 'outerForward' : 'outerBackward';
    if (top.index === 0) return top.state === 'forward' ? 'innerForward' : 'innerBackward';
    return top.state === 'forward' ? 'outerForward' : 'outerBackward';
  };
  const phaseCpu = new Map();
  const phaseKernelUs = new Map();
  const phaseKernels = new Map();
  const phaseOps = new Map();
  const ops = new Map();
  let current = 'none';
  let mark = cpu();
  const switchPhase = () => {
    const next = phaseNow();
    if (next === current) return;
    const now = cpu();
    phaseCpu.set(current, (phaseCpu.get(current) ?? 0) + now - mark);
    mark = now;
    current = next;
  };
  const add = (m, k, v) => m.set(k, (m.get(k) ?? 0) + v);

  const origGradients = eng.gradients;
  eng.gradients = function (f, xs, dy, allowNoGradients) {
    const call = { state: 'forward', nested: false, index: stack.length === 0 ? firstOrderCalls++ : -1 };
    if (stack.length > 0) stack[stack.length - 1].nested = true;
    stack.push(call);
    switchPhase();
    const wrapped = () => {
      try {
        return f();
      } finally {
        call.state = 'backward';
        switchPhase();
      }
    };
    try {
      return origGradients.call(this, wrapped, xs, dy, allowNoGradients);
    } finally {
      stack.pop();
      switchPhase();
    }
  };
  const origRunKernelFunc = eng.runKernelFunc;
  eng.runKernelFunc = function (params) {
    add(phaseKernels, current, 1);
    return origRunKernelFunc.call(this, params);
  };
  const instrument = (name, label) => {
    const orig = original[name].bind(original);
    const instrumented = (...args) => {
      const c0 = cpu();
      try {
        return orig(...args);
      } finally {
        const us = cpu() - c0;
        const key = label(args);
        const e = ops.get(key) ?? { calls: 0, us: 0 };
        e.calls++;
        e.us += us;
        ops.set(key, e);
        if (name === 'executeOp') {
          add(phaseKernelUs, current, us);
          add(phaseOps, current, 1);
        }
      }
    };
    Object.defineProperty(binding, name, { value: instrumented });
  };
  instrument('executeOp', (a) => a[0]);
  instrument('createTensor', () => '(tensor creation)');
  instrument('deleteTensor', () => '(tensor deletion)');
  instrument('tensorDataSync', () => '(readback)');

  const c0 = cpu();
  try {
    for (let i = 0; i < tasks; i++) {
      firstOrderCalls = 0;
      await one(seedBase + i);
    }
  } finally {
    switchPhase();
    eng.gradients = origGradients;
    eng.runKernelFunc = origRunKernelFunc;
    backend.binding = original;
  }
  const totalUs = cpu() - c0;
  const per = (us) => us / 1000 / tasks;
  const phases = Object.keys(PHASES)
    .filter((p) => phaseCpu.has(p))
    .map((p) => ({ phase: PHASES[p], cpuMs: per(phaseCpu.get(p)), kernelMs: per(phaseKernelUs.get(p) ?? 0), kernels: (phaseKernels.get(p) ?? 0) / tasks, tfOps: (phaseOps.get(p) ?? 0) / tasks }));
  const byOp = [...ops]
    .map(([op, e]) => ({ op, callsPerTask: e.calls / tasks, cpuMsPerTask: per(e.us), usPerCall: e.us / e.calls }))
    .sort((a, b) => b.cpuMsPerTask - a.cpuMsPerTask);
  const tfOpsPerTask = byOp.filter((o) => !o.op.startsWith('(')).reduce((s, o) => s + o.callsPerTask, 0);
  const executeUs = [...ops].filter(([op]) => !op.startsWith('(')).reduce((s, [, e]) => s + e.us, 0);
  return {
    tasks,
    cpuMsPerTask: per(totalUs),
    tfjsKernelsPerTask: [...phaseKernels.values()].reduce((a, b) => a + b, 0) / tasks,
    tfOpsPerTask,
    kernelMsPerTask: per(executeUs),
    dispatchFloorUs: floorUs,
    dispatchMsPerTask: (tfOpsPerTask * floorUs) / 1000,
    // outside kernels: everything but executeOp (tensor creation, deletion and readback included)
    outsideMsPerTask: per(totalUs - executeUs),
    outsideShare: (totalUs - executeUs) / totalUs,
    phases,
    byOp,
  };
}
