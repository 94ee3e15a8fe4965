import { describe, expect, it } from 'vitest';
import { CAPTURE_STAT_NAMES, type CaptureStats } from '../../src/capture/addon.js';
import { InstalledPeers } from '../../src/lifecycle/installed.js';
import { createMetrics, XDP_DROP_REASONS } from '../../src/telemetry/metrics.js';
import { testKey } from '../support/keys.js';

/** `name{labels} value` lines of the text format, as a map. */
async function scrape(metrics: ReturnType<typeof createMetrics>): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (const line of (await metrics.registry.metrics()).split('\n')) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{[^}]*\})?) (\S+)$/.exec(line);
    if (m) out.set(m[1]!, Number(m[2]));
  }
  return out;
}

function xdpStats(values: Partial<Record<(typeof CAPTURE_STAT_NAMES)[number], bigint>> = {}): CaptureStats {
  return Object.fromEntries(CAPTURE_STAT_NAMES.map((n) => [n, values[n] ?? 0n])) as CaptureStats;
}

describe('metrics', () => {
  it("registers prom-client's process and Node.js metrics under their stock names", async () => {
    const text = await createMetrics().registry.metrics();
    expect(text).toMatch(/^process_cpu_user_seconds_total /m);
    expect(text).toMatch(/^process_resident_memory_bytes /m);
    expect(text).toMatch(/^nodejs_eventloop_lag_p99_seconds /m);
    expect(text).toMatch(/^nodejs_heap_size_used_bytes /m);
    expect(text).not.toMatch(/^wgjit_(process|nodejs)_/m);
  });

  it('copies every XDP exit counter at scrape time, and adds the lost initiations to the capture drops', async () => {
    const metrics = createMetrics({ processMetrics: false });
    let stats = xdpStats({ captured: 7n, rate_limited: 3n, ringbuf_full: 2n, wrong_size: 11n });
    let bad = 0;
    metrics.observe({ xdpStats: () => stats, badRecords: () => bad });
    metrics.captureDrops.inc({ reason: 'queue_full' }, 4);

    let m = await scrape(metrics);
    for (const name of CAPTURE_STAT_NAMES) expect(m.has(`wgjit_xdp_packets_total{result="${name}"}`)).toBe(true);
    expect(m.get('wgjit_xdp_packets_total{result="captured"}')).toBe(7);
    expect(m.get('wgjit_xdp_packets_total{result="wrong_size"}')).toBe(11);
    expect(m.get('wgjit_capture_drops_total{reason="rate_limited"}')).toBe(3);
    expect(m.get('wgjit_capture_drops_total{reason="ringbuf_full"}')).toBe(2);
    expect(m.get('wgjit_capture_drops_total{reason="queue_full"}')).toBe(4);

    // The kernel counted on; a second scrape takes in only the difference, once.
    stats = xdpStats({ captured: 9n, rate_limited: 10n, ringbuf_full: 2n, wrong_size: 11n });
    bad = 1;
    m = await scrape(metrics);
    expect(m.get('wgjit_xdp_packets_total{result="captured"}')).toBe(9);
    expect(m.get('wgjit_capture_drops_total{reason="rate_limited"}')).toBe(10);
    expect(m.get('wgjit_capture_drops_total{reason="ringbuf_full"}')).toBe(2);
    expect(m.get('wgjit_capture_drops_total{reason="bad_record"}')).toBe(1);
    expect(m.get('wgjit_capture_drops_total{reason="queue_full"}')).toBe(4);
    m = await scrape(metrics);
    expect(m.get('wgjit_capture_drops_total{reason="rate_limited"}')).toBe(10);
    expect(XDP_DROP_REASONS.every((r) => (CAPTURE_STAT_NAMES as readonly string[]).includes(r))).toBe(true);
  });

  it('shows nothing of the XDP program once the capture is closed, and keeps what it had', async () => {
    const metrics = createMetrics({ processMetrics: false });
    let open = true;
    metrics.observe({ xdpStats: () => (open ? xdpStats({ ringbuf_full: 5n }) : null) });
    expect((await scrape(metrics)).get('wgjit_capture_drops_total{reason="ringbuf_full"}')).toBe(5);
    open = false;
    expect((await scrape(metrics)).get('wgjit_capture_drops_total{reason="ringbuf_full"}')).toBe(5);
  });

  it('reads the installed peers from the table at each scrape, without a sweep', async () => {
    const metrics = createMetrics({ processMetrics: false });
    const installed = new InstalledPeers();
    metrics.observe({ installedPeers: () => installed.byState(), intakeQueued: () => 3 });
    installed.add(testKey('a'), 0, null);
    installed.add(testKey('b'), 0, null, 'confirmed');
    installed.add(testKey('c'), 0, null);
    let m = await scrape(metrics);
    expect(m.get('wgjit_installed_peers{state="provisional"}')).toBe(2);
    expect(m.get('wgjit_installed_peers{state="confirmed"}')).toBe(1);
    expect(m.get('wgjit_intake_queued')).toBe(3);
    installed.confirm(testKey('a'));
    installed.delete(testKey('c'));
    m = await scrape(metrics);
    expect(m.get('wgjit_installed_peers{state="provisional"}')).toBe(0);
    expect(m.get('wgjit_installed_peers{state="confirmed"}')).toBe(2);
  });

  it("shows the store's state and the time of its last successful round trip, read at each scrape", async () => {
    const metrics = createMetrics({ processMetrics: false });
    let health: { up: boolean; lastSuccessMs: number | null } = { up: false, lastSuccessMs: null };
    metrics.observe({ store: () => health });
    let m = await scrape(metrics);
    expect(m.get('wgjit_store_up')).toBe(0);
    expect(m.get('wgjit_store_last_success_timestamp_seconds')).toBe(0);
    health = { up: true, lastSuccessMs: 1_700_000_000_250 };
    m = await scrape(metrics);
    expect(m.get('wgjit_store_up')).toBe(1);
    expect(m.get('wgjit_store_last_success_timestamp_seconds')).toBe(1_700_000_000.25);
    health = { up: false, lastSuccessMs: 1_700_000_000_250 };
    m = await scrape(metrics);
    expect(m.get('wgjit_store_up')).toBe(0);
    expect(m.get('wgjit_store_last_success_timestamp_seconds')).toBe(1_700_000_000.25);
    const text = await metrics.registry.metrics();
    expect(text).toMatch(/^# TYPE wgjit_store_up gauge$/m);
    expect(text).toMatch(/^# TYPE wgjit_store_last_success_timestamp_seconds gauge$/m);
  });
});
