import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { InstalledPeers } from '../../src/lifecycle/installed.js';
import { testKey } from '../support/keys.js';

describe('InstalledPeers', () => {
  it('keeps its count by state equal to a walk of the table, whatever comes, goes or confirms', () => {
    const key = fc.constantFrom('a', 'b', 'c', 'd');
    const op = fc.oneof(
      fc.record({ op: fc.constant('add' as const), key, state: fc.constantFrom('provisional' as const, 'confirmed' as const) }),
      fc.record({ op: fc.constant('confirm' as const), key }),
      fc.record({ op: fc.constant('delete' as const), key }),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 40 }), (ops) => {
        const t = new InstalledPeers();
        for (const o of ops) {
          if (o.op === 'add') t.add(testKey(o.key), 0, null, o.state);
          else if (o.op === 'confirm') t.confirm(testKey(o.key));
          else t.delete(testKey(o.key));
          const walked = [...t.values()].filter((p) => p.state === 'provisional').length;
          expect(t.byState()).toEqual({ provisional: walked, confirmed: t.size - walked });
        }
      }),
    );
  });
});
