/**
 * GET /v1/gateway/stats reads the Prometheus counters: each event counted
 * once (metrics.ts), served under the flat names of docs/operations.md.
 */
import { describe, expect, it } from 'vitest';
import { CAPTURE_STAT_NAMES, type CaptureStats } from '../../src/capture/addon.js';
import { InstalledPeers } from '../../src/lifecycle/installed.js';
import { createMetrics } from '../../src/telemetry/metrics.js';
import { gatewayStats } from '../../src/telemetry/stats.js';
import { testKey } from '../support/keys.js';

function xdpStats(values: Partial<Record<(typeof CAPTURE_STAT_NAMES)[number], bigint>> = {}): CaptureStats {
  return Object.fromEntries(CAPTURE_STAT_NAMES.map((n) => [n, values[n] ?? 0n])) as CaptureStats;
}

describe('gatewayStats', () => {
  it('serves every count under its flat name, from the counters Prometheus scrapes', async () => {
    const metrics = createMetrics({ processMetrics: false });
    const installed = new InstalledPeers();
    installed.add(testKey('a'), 0, null);
    installed.add(testKey('b'), 0, null, 'confirmed');
    metrics.observe({ xdpStats: () => xdpStats({ captured: 9n, ringbuf_full: 2n, rate_limited: 1n }), badRecords: () => 1, installedPeers: () => installed.byState(), intakeQueued: () => 3 });

    metrics.initiations.inc({ result: 'installed', verified: 'true' }, 2);
    metrics.initiations.inc({ result: 'unknown', verified: 'true' }, 3);
    metrics.initiations.inc({ result: 'rejected_mac1', verified: 'false' }, 4);
    metrics.installs.inc({ result: 'ok' }, 2);
    metrics.installs.inc({ result: 'failed' });
    metrics.replays.inc({ result: 'ok' });
    metrics.replays.inc({ result: 'failed' });
    metrics.refusalsCached.inc(2);
    metrics.removals.inc({ reason: 'idle' }, 5);
    metrics.removals.inc({ reason: 'operator' });
    metrics.updates.inc(7);
    metrics.captureDrops.inc({ reason: 'source_full' }, 6);
    metrics.captureDrops.inc({ reason: 'stale' });

    const stats = await gatewayStats(metrics);
    expect(stats).toEqual({
      initiations_seen: 9,
      initiations_verified: 5,
      unknown: 3,
      rejected_mac1: 4,
      installs: 2,
      replays: 1,
      replay_failures: 1,
      refusals_cached: 2,
      removed_idle: 5,
      removed_operator: 1,
      updates: 7,
      dropped_source_full: 6,
      dropped_stale: 1,
      ...Object.fromEntries(CAPTURE_STAT_NAMES.map((n) => [`xdp_${n}`, 0])),
      xdp_captured: 9,
      xdp_ringbuf_full: 2,
      xdp_rate_limited: 1,
      ringbuf_drops: 2,
      installed_peers: 2,
      queued: 3,
    });
    // The XDP drops and bad records are counted in wgjit_capture_drops_total, not as dropped_<reason>.
    const drops = Object.fromEntries((await metrics.captureDrops.get()).values.map((v) => [String(v.labels['reason']), v.value]));
    expect(drops).toEqual({ source_full: 6, stale: 1, ringbuf_full: 2, rate_limited: 1, bad_record: 1 });
    // A second read counts nothing twice.
    expect(await gatewayStats(metrics)).toEqual(stats);
  });

  it('names an event only once it was counted; what is read from the kernel and the tables always', async () => {
    const metrics = createMetrics({ processMetrics: false });
    expect(await gatewayStats(metrics)).toEqual({ ringbuf_drops: 0, installed_peers: 0, queued: 0 });
  });
});
