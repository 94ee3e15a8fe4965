import { describe, expect, it } from 'vitest';
import type { PeerStatus } from '../../src/install/device.js';
import { InstalledPeers } from '../../src/lifecycle/installed.js';
import { planSweep, type SweepPolicy } from '../../src/lifecycle/sweep.js';

const policy: SweepPolicy = { idleTimeoutMs: 180_000, provisionalGraceMs: 15_000 };
const T0 = 1_700_000_000_000;
const status = (publicKey: string, lastHandshakeAt: number | null, rxBytes = 0n): PeerStatus => ({
  publicKey,
  allowedIPs: [],
  persistentKeepalive: 0,
  lastHandshakeAt,
  rxBytes,
  txBytes: 0n,
  hasPresharedKey: false,
});

describe('planSweep', () => {
  it('confirms a provisional peer once the device reports a handshake after the install', () => {
    const t = new InstalledPeers();
    t.add('a', T0, null);
    const plan = planSweep(t.values(), new Map([['a', status('a', T0 + 50)]]), T0 + 1_000, policy);
    expect(plan.confirmed).toEqual(['a']);
    expect(plan.remove).toEqual([]);
  });

  it('removes a provisional peer that never confirms, only after the grace period', () => {
    const t = new InstalledPeers();
    t.add('a', T0, null);
    const device = new Map([['a', status('a', null)]]);
    expect(planSweep(t.values(), device, T0 + policy.provisionalGraceMs, policy).remove).toEqual([]);
    expect(planSweep(t.values(), device, T0 + policy.provisionalGraceMs + 1, policy).remove).toEqual([{ publicKey: 'a', reason: 'unconfirmed' }]);
  });

  it('removes an idle confirmed peer, never one whose receive counter moved', () => {
    const t = new InstalledPeers();
    t.add('idle', T0, null, 'confirmed');
    t.add('busy', T0, null, 'confirmed');
    const late = T0 + policy.idleTimeoutMs + 1;
    const device = new Map([
      ['idle', status('idle', T0)],
      ['busy', status('busy', T0, 4096n)],
    ]);
    const plan = planSweep(t.values(), device, late, policy);
    expect(plan.remove).toEqual([{ publicKey: 'idle', reason: 'idle' }]);
  });

  it('keeps a confirmed peer with a recent handshake', () => {
    const t = new InstalledPeers();
    t.add('a', T0, null, 'confirmed');
    const now = T0 + policy.idleTimeoutMs * 2;
    expect(planSweep(t.values(), new Map([['a', status('a', now - 1_000)]]), now, policy).remove).toEqual([]);
  });

  it('forgets peers the device no longer has', () => {
    const t = new InstalledPeers();
    t.add('gone', T0, null, 'confirmed');
    expect(planSweep(t.values(), new Map(), T0, policy).forget).toEqual(['gone']);
  });
});
