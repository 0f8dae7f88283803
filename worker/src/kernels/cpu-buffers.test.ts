/**
 * The cpu output-buffer pool: outputs of the training kernels are reused after their tensors are
 * disposed, zero-filled; never while a tensor still uses them, never once their values were read
 * out (dataSync/data/arraySync hand out the backend's own array) or aliased by another tensor (a
 * contiguous Slice is a subarray of its input), and training results do not change.
 */
import assert from 'node:assert/strict';
import { before, beforeEach, describe, test } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { cpuBufferPoolBytes, drainCpuBufferPool, POOL_BYTES, setCpuBufferPoolLimit } from './cpu-buffers.js';
import { ioFor } from './io.js';
import { registerTrainingKernels, upstreamKernel } from './register.js';

/** The backend's array behind a tensor, without marking it read. */
function backing(t: tf.Tensor): Float32Array {
  const cpu = tf.findBackend('cpu') as unknown as { data: { get(id: object): { values: Float32Array } } };
  return cpu.data.get(t.dataId).values;
}

describe('cpu output-buffer pool', () => {
  before(async () => {
    registerTrainingKernels();
    await tf.setBackend('cpu');
  });
  beforeEach(() => drainCpuBufferPool());

  test('a disposed output is reused (zero-filled) and results stay correct', () => {
    const x = tf.tensor4d(Array.from({ length: 2 * 4 * 4 * 3 }, (_, i) => Math.sin(i)), [2, 4, 4, 3]);
    const y1 = tf.relu(x);
    const mem = backing(y1);
    y1.dispose();
    assert.equal(cpuBufferPoolBytes(), mem.byteLength);
    const y2 = tf.relu(tf.neg(x)); // same length: gets the recycled array
    assert.equal(backing(y2), mem, 'the array was reused');
    assert.equal(cpuBufferPoolBytes(), 0);
    assert.deepEqual(Array.from(y2.dataSync()), Array.from(x.dataSync().map((v) => Math.max(0, -v))));
    // io.alloc promises zeros on cpu: a recycled array is cleared first.
    const z = tf.relu(tf.abs(x));
    const zMem = backing(z);
    z.dispose();
    const io = ioFor('cpu', tf.findBackend('cpu'));
    const fresh = io.alloc(x.shape);
    assert.equal(io.view(fresh), zMem);
    assert.ok(io.view(fresh).every((v) => v === 0));
    io.dispose(fresh);
    tf.dispose([x, y2]);
  });

  test('an array read out through dataSync/data/arraySync is never reused', async () => {
    const x = tf.tensor1d([-1, 2, -3, 4]);
    const read = [tf.relu(x), tf.relu(x), tf.relu(x)];
    const held = [read[0]!.dataSync() as Float32Array, (await read[1]!.data()) as Float32Array];
    read[2]!.arraySync();
    const third = backing(read[2]!);
    tf.dispose(read);
    assert.equal(cpuBufferPoolBytes(), 0, 'nothing was pooled');
    const others = Array.from({ length: 5 }, () => tf.relu(tf.neg(x)));
    for (const o of others) assert.ok(backing(o) !== held[0] && backing(o) !== held[1] && backing(o) !== third);
    assert.deepEqual(Array.from(held[0]!), [0, 2, 0, 4], 'values read out stay intact');
    assert.deepEqual(Array.from(held[1]!), [0, 2, 0, 4]);
    tf.dispose([x, ...others]);
  });

  test('an array another tensor aliases (tfjs-backend-cpu\'s contiguous Slice is a subarray) is never reused', () => {
    const x = tf.tensor2d([[1, -2], [-3, 4], [5, -6]]);
    const y = tf.relu(x);
    const mem = backing(y);
    const cpu = tf.findBackend('cpu');
    const info = upstreamKernel('Slice', 'cpu')!.kernelFunc({ inputs: { x: y }, backend: cpu, attrs: { begin: [1, 0], size: [2, 2] } }) as tf.TensorInfo;
    const view = tf.engine().makeTensorFromTensorInfo(info, cpu);
    assert.equal(backing(view).buffer, mem.buffer, 'upstream Slice aliases its input');
    y.dispose();
    assert.equal(cpuBufferPoolBytes(), 0, 'the aliased array was not pooled');
    const again = tf.relu(tf.neg(x));
    assert.notEqual(backing(again), mem);
    assert.deepEqual(Array.from(view.dataSync()), [0, 4, 5, 0], 'the slice still reads its own values');
    tf.dispose([x, view, again]);
  });

  test('the pool stays under its cap, evicting other lengths first', () => {
    const before = setCpuBufferPoolLimit(2 ** 20);
    try {
      const small = tf.relu(tf.zeros([1000]));
      small.dispose();
      assert.equal(cpuBufferPoolBytes(), 4000);
      const n = Math.floor(2 ** 20 / 4 / 3) + 1; // three such arrays exceed the cap
      const x = tf.zeros([n]);
      tf.dispose([tf.relu(x), tf.relu(x), tf.relu(x)]);
      assert.ok(cpuBufferPoolBytes() <= 2 ** 20);
      assert.equal(cpuBufferPoolBytes(), 2 * n * 4, 'two of the large ones kept, the small one evicted');
      drainCpuBufferPool();
      assert.equal(cpuBufferPoolBytes(), 0);
      x.dispose();
    } finally {
      setCpuBufferPoolLimit(before);
    }
    assert.equal(POOL_BYTES, 512 * 2 ** 20);
  });
});
