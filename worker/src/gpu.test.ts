/**
 * The GPU description: nvidia-smi's CSV, CUDA_VISIBLE_DEVICES, which GPU a worker reports. The
 * nvidia-smi here is a stand-in executable (a shell script printing what a driver's nvidia-smi
 * prints): there is no GPU on our machines. The real one is exercised by `--self-test` on a GPU node.
 */
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import type { BackendInfo } from './backend.js';
import { describeGpu, describeGpuLine, formatBytes, heartbeatGpuFields, NO_GPU, parseNvidiaSmi, queryGpus, visibleGpus } from './gpu.js';

// Two GPUs as `nvidia-smi --query-gpu=index,uuid,name,memory.total,driver_version,compute_cap --format=csv,noheader,nounits` prints them.
const TWO = '0, GPU-1a2b3c4d-0000-1111-2222-333344445555, NVIDIA A100-SXM4-80GB, 81920, 550.54.15, 8.0\n1, GPU-9f8e7d6c-aaaa-bbbb-cccc-ddddeeeeffff, NVIDIA H100 80GB HBM3, 81559, 550.54.15, 9.0\n';
const onGpu: BackendInfo = { name: 'tensorflow', device: 'gpu (libtensorflow, tfjs-node)', tried: [], gpu: true };
const onCpu: BackendInfo = { name: 'tensorflow', device: 'cpu (libtensorflow, tfjs-node)', tried: [] };

const dir = mkdtempSync(join(tmpdir(), 'metaloop-gpu-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** An nvidia-smi stand-in: prints `csv` for the full query; with `oldDriver`, refuses compute_cap like drivers before ~510. */
function smi(name: string, csv: string, oldDriver = false): string {
  const file = join(dir, name);
  const refuse = oldDriver ? 'case "$1" in *compute_cap*) echo \'Field "compute_cap" is not a valid field to query.\' >&2; exit 2;; esac\n' : '';
  const body = oldDriver ? csv.replace(/, [0-9.]+\n/g, '\n') : csv;
  writeFileSync(file, `#!/bin/sh\n${refuse}cat <<'CSV'\n${body}CSV\n`);
  chmodSync(file, 0o755);
  return file;
}

describe('gpu', () => {
  it('parses nvidia-smi CSV (MiB to bytes; [N/A] and missing fields are unknown)', () => {
    const rows = parseNvidiaSmi(TWO + '2, GPU-x, Tesla K80, [N/A], 470.82.01, [N/A]\nnot a row\n');
    assert.equal(rows.length, 3);
    assert.deepEqual(rows[1], { index: '1', uuid: 'GPU-9f8e7d6c-aaaa-bbbb-cccc-ddddeeeeffff', name: 'NVIDIA H100 80GB HBM3', memoryBytes: 81559 * 2 ** 20, driver: '550.54.15', computeCapability: '9.0' });
    assert.equal(rows[2]!.memoryBytes, 0);
    assert.equal(rows[2]!.computeCapability, '');
    assert.equal(describeGpuLine(rows[1]), 'NVIDIA H100 80GB HBM3, 79.6 GiB, sm_90, driver 550.54.15');
    assert.equal(describeGpuLine(undefined), NO_GPU);
    assert.equal(formatBytes(512 * 2 ** 20), '512 MiB');
  });

  it('follows CUDA_VISIBLE_DEVICES (indices, UUID prefixes; an unknown entry ends the list)', () => {
    const rows = parseNvidiaSmi(TWO);
    assert.deepEqual(visibleGpus(rows, undefined).map((r) => r.index), ['0', '1']);
    assert.deepEqual(visibleGpus(rows, '1').map((r) => r.index), ['1']);
    assert.deepEqual(visibleGpus(rows, 'GPU-9f8e,0').map((r) => r.index), ['1', '0']);
    assert.deepEqual(visibleGpus(rows, '0,7,1').map((r) => r.index), ['0']);
    assert.deepEqual(visibleGpus(rows, ''), []);
  });

  it('reports the last visible GPU on a GPU backend (what tfjs-node computes on)', async () => {
    const nvidiaSmi = smi('nvidia-smi', TWO);
    const all = await describeGpu(onGpu, { nvidiaSmi, env: {} });
    assert.equal(all.gpu?.name, 'NVIDIA H100 80GB HBM3');
    assert.equal(all.note, '');
    const first = await describeGpu(onGpu, { nvidiaSmi, env: { CUDA_VISIBLE_DEVICES: '0' } });
    assert.deepEqual(first.gpu, { name: 'NVIDIA A100-SXM4-80GB', memoryBytes: 81920 * 2 ** 20, driver: '550.54.15', computeCapability: '8.0' });
    assert.deepEqual(heartbeatGpuFields(first.gpu), { gpuName: 'NVIDIA A100-SXM4-80GB', gpuMemoryBytes: 81920 * 2 ** 20, gpuDriver: '550.54.15', gpuComputeCapability: '8.0' });
  });

  it('asks again without compute_cap for old drivers', async () => {
    const r = await queryGpus({ nvidiaSmi: smi('nvidia-smi-470', TWO, true) });
    assert.equal(r.error, '');
    assert.deepEqual(r.rows.map((g) => [g.name, g.computeCapability]), [['NVIDIA A100-SXM4-80GB', ''], ['NVIDIA H100 80GB HBM3', '']]);
  });

  it('says no GPU on a CPU backend, listing the GPUs it does not use', async () => {
    const r = await describeGpu(onCpu, { nvidiaSmi: smi('nvidia-smi', TWO), env: {} });
    assert.equal(r.gpu, undefined);
    assert.deepEqual(r.unusedGpus.map((g) => g.name), ['NVIDIA A100-SXM4-80GB', 'NVIDIA H100 80GB HBM3']);
    assert.deepEqual(heartbeatGpuFields(r.gpu), { gpuName: NO_GPU, gpuMemoryBytes: 0, gpuDriver: '', gpuComputeCapability: '' });
    // wasm/cpu never sit on a GPU: nvidia-smi is not even asked (a missing one is no error).
    const wasm = await describeGpu({ name: 'wasm', device: 'wasm simd', tried: [] }, { nvidiaSmi: join(dir, 'missing'), env: {} });
    assert.deepEqual(wasm, { gpu: undefined, unusedGpus: [], note: '' });
  });

  it('on a GPU without nvidia-smi: a GPU of unknown details, and why', async () => {
    const r = await describeGpu(onGpu, { nvidiaSmi: join(dir, 'no-such-nvidia-smi'), env: {} });
    assert.equal(r.gpu?.name, 'NVIDIA GPU (details unknown)');
    assert.match(r.note, /no-such-nvidia-smi not found/);
  });
});
