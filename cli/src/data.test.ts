/**
 * `metaloop data pack|info` as a user runs them (the real bin), and the content hash a submitted
 * run carries (withDatasetHashes): computed where the data is readable, checked against a hash
 * written in the spec, required when the data cannot be read.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { validateSpec } from '@metaloop/shared';
import { EXIT } from '@metaloop/client';
import { childPids, freePort, runMetaloop } from '@metaloop/testing';
import { fixtureDir, removeFixtures, writeImageFixture } from '@metaloop/testing/datasets';
import { withDatasetHashes } from './data.js';

const children = childPids();
const metaloop = (args: string[]) => runMetaloop(children, args, {}, 120_000);
after(removeFixtures);

const imageSpec = (path: string, extra: Record<string, unknown> = {}) =>
  validateSpec({ name: 'img', task: { family: 'fewshot-images', path, ways: 2, shots: 1, queries: 1, imageSize: 8, channels: 3, ...extra }, model: { kind: 'conv4', pool: 'stride' }, algorithm: { kind: 'maml' } });

describe('metaloop data', () => {
  it('pack <folder> writes one file with a progress report; info prints its splits, classes and hash; a spec packs the same bytes', async () => {
    const root = await writeImageFixture({ layout: 'csv', classes: 2, perClass: 3 });
    const out = join(fixtureDir(), 'mini.mlpack');
    const packed = await metaloop(['data', 'pack', root, '--image-size', '8', '--out', out, '--json']);
    assert.equal(packed.code, 0, packed.stderr);
    assert.match(packed.stderr, /packed 18\/18 images \(100%/);
    const { sha256, bytes } = JSON.parse(packed.stdout) as { sha256: string; bytes: number };
    assert.ok(bytes > 3 * 6 * 8 * 8 * 3);
    const info = await metaloop(['data', 'info', out]);
    assert.equal(info.code, 0, info.stderr);
    assert.match(info.stdout, new RegExp(`sha256: {2}${sha256}`));
    assert.match(info.stdout, /format: {2}metaloop-pack v1, 8×8×3 uint8 HWC/);
    assert.match(info.stdout, /split val: 2 classes, 6 images \(3–3 per class\)/);
    assert.match(info.stdout, /^ {2}n00000002\t3$/m);
    const specFile = join(fixtureDir(), 'spec.yaml');
    writeFileSync(specFile, JSON.stringify({ name: 'mini', task: { family: 'fewshot-images', path: root, ways: 2, shots: 1, queries: 1, imageSize: 8, channels: 3 }, model: { kind: 'conv4', pool: 'stride' }, algorithm: { kind: 'maml' } }));
    const fromSpec = await metaloop(['data', 'pack', specFile, '--out', join(fixtureDir(), 'b.mlpack'), '--json']);
    assert.equal(fromSpec.code, 0, fromSpec.stderr);
    assert.equal((JSON.parse(fromSpec.stdout) as { sha256: string }).sha256, sha256, 'the same data packed from its spec has the same content hash');
    const folderInfo = await metaloop(['data', 'info', root, '--json']);
    assert.equal((JSON.parse(folderInfo.stdout) as { kind: string; layout: string }).layout, 'csv');
  });

  it('pack refuses a folder without --image-size, and a corrupt image by name, leaving no file', async () => {
    const root = await writeImageFixture({ layout: 'classes', classes: 2, perClass: 2 });
    const out = join(fixtureDir(), 'x.mlpack');
    const noSize = await metaloop(['data', 'pack', root, '--out', out]);
    assert.equal(noSize.code, EXIT.USAGE, noSize.stderr);
    assert.match(noSize.stderr, /needs --image-size/);
    writeFileSync(join(root, 'class01', '000.jpg'), 'garbage');
    const bad = await metaloop(['data', 'pack', root, '--image-size', '8', '--out', out]);
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /cannot decode image .*class01\/000\.jpg/);
    const info = await metaloop(['data', 'info', out]);
    assert.match(info.stderr, /does not exist/, 'a failed pack leaves no file');
  });
});

describe('the content hash a submitted run carries', () => {
  it('is computed where the data is readable, and a wrong one in the spec is refused', async () => {
    const root = await writeImageFixture({ layout: 'classes', classes: 10, perClass: 2 });
    const { spec, notes } = await withDatasetHashes(imageSpec(root));
    assert.ok(spec.task.family === 'fewshot-images' && /^[0-9a-f]{64}$/.test(spec.task.sha256 ?? ''), notes.join('\n'));
    const sha = spec.task.family === 'fewshot-images' ? spec.task.sha256 : '';
    await assert.rejects(withDatasetHashes(imageSpec(root, { queries: 5 })), /cannot serve this spec: .*fewer than shots \+ queries = 6 images/, 'bad data is refused at submit');
    await assert.rejects(
      withDatasetHashes(imageSpec(root, { ways: 3 })),
      /cannot serve this spec: the test split of .* has 2 classes, fewer than ways = 3, and evaluation \(eval\.split: test\) draws 3-way tasks from it: give it more with task\.classes/,
      'an evaluation split too small for the ways is refused at submit (every run ends with an evaluation)',
    );
    await assert.rejects(withDatasetHashes(imageSpec(root, { sha256: 'a'.repeat(64) })), new RegExp(`hashes to ${sha}, but the spec says task\\.sha256: a{64}`));
  });

  it('unreadable data needs its hash in the spec (or --no-data-hash); submit says so before connecting', async () => {
    const missing = join(fixtureDir(), 'nowhere');
    await assert.rejects(withDatasetHashes(imageSpec(missing)), /cannot hash task\.path .*nowhere: .*put its sha256 in the spec \(task\.sha256/);
    const given = await withDatasetHashes(imageSpec(missing, { sha256: 'b'.repeat(64) }));
    assert.match(given.notes[0]!, /not readable here; the workers check it against the spec's sha256 b{64}/);
    const skipped = await withDatasetHashes(imageSpec(missing), { skipUnreadable: true });
    assert.match(skipped.notes[0]!, /workers will NOT check/);
    const file = join(fixtureDir(), 'spec.json');
    writeFileSync(file, JSON.stringify({ name: 'img', task: { family: 'fewshot-images', path: missing, imageSize: 8 }, model: { kind: 'conv4', pool: 'stride' }, algorithm: { kind: 'maml' } }));
    const r = await metaloop(['submit', file, '--nats', `nats://127.0.0.1:${await freePort()}`]);
    assert.equal(r.code, EXIT.USAGE, r.stderr);
    assert.match(r.stderr, /cannot hash task\.path/);
  });
});
