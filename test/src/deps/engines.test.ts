/**
 * Issue 16 item 10: every package npm installs from package-lock.json accepts the Node we run on
 * and the Node range the repository promises (root package.json `engines.node`, ">=20"), so
 * `npm ci` prints no EBADENGINE warning. A dependency bump that needs a newer Node fails here,
 * naming the package, its range and who pulls it in.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import semver from 'semver';
import { ROOT } from '@metaloop/testing';

interface LockEntry {
  version?: string;
  engines?: { node?: string } | string[];
  link?: boolean;
}

const lock = JSON.parse(readFileSync(join(ROOT, 'package-lock.json'), 'utf8')) as { packages: Record<string, LockEntry> };
const root = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { engines?: { node?: string } };

/** Lock entries (path → node range) that declare `engines.node`. */
function nodeRanges(): [string, string][] {
  const out: [string, string][] = [];
  for (const [where, entry] of Object.entries(lock.packages)) {
    if (where === '' || entry.link || entry.engines === undefined || Array.isArray(entry.engines)) continue;
    const range = entry.engines.node;
    if (range !== undefined) out.push([where, range]);
  }
  return out;
}

describe('Node engines of the locked dependencies', () => {
  it('package-lock.json is readable and declares node ranges (the check has something to check)', () => {
    assert.ok(nodeRanges().length > 20, `expected many engines.node fields in package-lock.json, got ${nodeRanges().length}`);
  });

  it(`every locked package accepts this Node (${process.version})`, () => {
    const bad = nodeRanges().filter(([, range]) => !semver.satisfies(process.version, range, { includePrerelease: true }));
    assert.deepEqual(
      bad.map(([where, range]) => `${where}@${lock.packages[where]?.version}: node ${range}`),
      [],
      'these packages do not support this Node (npm ci warns EBADENGINE): pick versions whose engines fit, or override them in package.json',
    );
  });

  it(`every locked package accepts the oldest Node the repository promises (package.json engines.node ${root.engines?.node})`, () => {
    const promised = root.engines?.node;
    assert.ok(promised, 'package.json declares engines.node');
    const oldest = semver.minVersion(promised);
    assert.ok(oldest, `engines.node ${promised} has a lowest version`);
    // A range such as ">= 20.16.0" is fine (maintained Node 20 releases satisfy it); one whose lowest
    // version lies in a newer major (">= 22.x") is not.
    const major = semver.major(oldest);
    const bad = nodeRanges().filter(([, range]) => {
      const min = semver.minVersion(range);
      return min !== null && semver.major(min) > major;
    });
    assert.deepEqual(
      bad.map(([where, range]) => `${where}@${lock.packages[where]?.version}: node ${range}`),
      [],
      `these packages need a newer Node major than ${major} (package.json promises ${promised})`,
    );
  });
});
