import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ApiCallError, ConnectionError, MetaloopError, PermissionError, RequestTimeoutError, SpecError } from '@metaloop/shared';
import { UsageError } from './errors.js';
import { EXIT, exitCodeFor } from './exit-codes.js';

describe('exitCodeFor: one table for every metaloop command', () => {
  it('maps each error class to its documented code', () => {
    const cases: [unknown, number][] = [
      [new SpecError([{ path: 'outer.lr', message: 'must be > 0' }]), EXIT.INVALID_SPEC],
      [new UsageError('no such directory: /nope'), EXIT.USAGE],
      [new ApiCallError('INVALID_SPEC', 'bad spec', 'outer.lr'), EXIT.INVALID_SPEC],
      [new ApiCallError('UNKNOWN_RUN', 'no run r-1'), EXIT.UNKNOWN_RUN],
      [new ApiCallError('CONFLICT', 'run is done'), EXIT.FAILURE],
      [new PermissionError('not allowed to publish'), EXIT.PERMISSION],
      [new RequestTimeoutError('metaloop.api.status', 5000), EXIT.TIMEOUT],
      [new ConnectionError('nats://127.0.0.1:1 unreachable'), EXIT.UNREACHABLE],
      [new MetaloopError('something else'), EXIT.FAILURE],
      [new Error('plain'), EXIT.FAILURE],
      ['not an error', EXIT.FAILURE],
    ];
    for (const [err, code] of cases) assert.equal(exitCodeFor(err), code, String(err instanceof Error ? err.name : err));
  });

  it('UsageError is a MetaloopError named UsageError (the one-line error names it)', () => {
    const err = new UsageError('bad flag');
    assert.ok(err instanceof MetaloopError);
    assert.equal(err.name, 'UsageError');
    assert.equal(err.message, 'bad flag');
  });
});
