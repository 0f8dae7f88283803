/**
 * Issue 18: a worker's GPU travels in its heartbeat to the coordinator's live-worker view, the
 * `metaloop workers` table and JSON, and the worker's `metaloop_worker_gpu_info` metric. Real
 * Worker (its own heartbeat timer) over the in-process transport; the GPU is given to the worker
 * (WorkerOptions.gpu) because our machines have none; without it the worker says "no GPU".
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createWorkerMetrics, InProcTransport, MetricsRegistry, subjects } from '@metaloop/shared';
import { Worker, type GpuInfo } from '@metaloop/worker';
import { gpuCell, workersJson, workersTable } from './commands/control.js';
import { WorkerView } from '@metaloop/coordinator/internal';

const H100: GpuInfo = { name: 'NVIDIA H100 80GB HBM3', memoryBytes: 81559 * 2 ** 20, driver: '550.54.15', computeCapability: '9.0' };

async function seen(gpu: GpuInfo | null | undefined, id: string) {
  const bus = await InProcTransport.create({ leaseMs: 5000, maxDeliver: 3 });
  const registry = new MetricsRegistry();
  const metrics = createWorkerMetrics(registry, { workerId: id });
  const view = new WorkerView();
  const watching = view.watch(bus, subjects());
  const worker = await Worker.create({ transport: bus, id, backend: 'cpu', heartbeatMs: 20, metrics, ...(gpu !== undefined ? { gpu } : {}) });
  const running = worker.run();
  try {
    const end = Date.now() + 10_000;
    while (view.list().length === 0 && Date.now() < end) await new Promise((r) => setTimeout(r, 10));
    const [hb] = view.list();
    assert.ok(hb, 'no heartbeat reached the view');
    return { hb, metricsText: await registry.metrics() };
  } finally {
    await worker.close();
    await running;
    await watching.close();
    await bus.close();
  }
}

describe('GPU in heartbeats, `metaloop workers` and the worker metric', () => {
  it('a worker on a GPU: name, memory, driver, compute capability everywhere', async () => {
    const { hb, metricsText } = await seen(H100, 'gpu-w1');
    assert.equal(hb.gpuName, 'NVIDIA H100 80GB HBM3');
    assert.equal(hb.gpuMemoryBytes, 81559 * 2 ** 20);
    const table = workersTable([hb]);
    assert.match(table[0]!, /^WORKER\s+BACKEND\s+DEVICE\s+GPU\s+STATE/);
    assert.match(table[1]!, /^gpu-w1\s+cpu\s+cpu \(js\)\s+NVIDIA H100 80GB HBM3 \(79\.6 GiB\)\s+(ready|busy)/);
    const json = workersJson(hb);
    assert.deepEqual([json.gpu, json.gpuMemoryBytes, json.gpuDriver, json.gpuComputeCapability], ['NVIDIA H100 80GB HBM3', 81559 * 2 ** 20, '550.54.15', '9.0']);
    assert.match(metricsText, /^metaloop_worker_gpu_info\{gpu="NVIDIA H100 80GB HBM3",memory_bytes="85520809984",driver="550\.54\.15",compute_capability="9\.0",worker="gpu-w1"\} 1$/m);
  });

  it('a worker on a CPU (detected, nothing given): "no GPU"', async () => {
    const { hb, metricsText } = await seen(undefined, 'cpu-w1');
    assert.equal(hb.gpuName, 'no GPU');
    assert.equal(gpuCell(hb), 'no GPU');
    assert.equal(workersJson(hb).gpu, 'no GPU');
    assert.match(metricsText, /^metaloop_worker_gpu_info\{gpu="no GPU",memory_bytes="0",driver="",compute_capability="",worker="cpu-w1"\} 1$/m);
  });

  it('a worker older than the GPU fields: "-" in the table, null in JSON', () => {
    assert.equal(gpuCell({ workerId: 'old' }), '-');
    assert.equal(workersJson({ workerId: 'old' }).gpu, null);
  });
});
