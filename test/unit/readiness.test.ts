import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import type { CaptureHealth } from '../../src/capture/addon.js';
import { captureCheck, deviceCheck, DeviceLiveness, Readiness, RING_DRAIN_BOUND_MS, type RingWatch } from '../../src/daemon/readiness.js';
import type { DeviceInfo, PeerConfig, PeerStatus, WireGuardDevice } from '../../src/install/device.js';
import { DEVICE_READ_FRESH_MS, SWEEP_INTERVAL_MS } from '../../src/lifecycle/timings.js';
import type { PublicKey } from '../../src/handshake/keys.js';

const FRESH = DEVICE_READ_FRESH_MS;

describe('deviceCheck', () => {
  it('trusts a recent read for a few sweeps, then asks for one', () => {
    expect(FRESH).toBeGreaterThanOrEqual(2 * SWEEP_INTERVAL_MS);
    expect(deviceCheck({ lastOkAt: 1_000, lastFailedAt: null }, 1_000 + FRESH, FRESH)).toBe('ok');
    expect(deviceCheck({ lastOkAt: 1_000, lastFailedAt: null }, 1_000 + FRESH + 1, FRESH)).toBe('read');
  });

  it('asks for a read when there was none, or the latest failed', () => {
    expect(deviceCheck({ lastOkAt: null, lastFailedAt: null }, 0, FRESH)).toBe('read');
    expect(deviceCheck({ lastOkAt: 1_000, lastFailedAt: 2_000 }, 2_001, FRESH)).toBe('read');
    expect(deviceCheck({ lastOkAt: 1_000, lastFailedAt: 1_000 }, 1_001, FRESH)).toBe('read');
    // A failure followed by a success: the device answers again.
    expect(deviceCheck({ lastOkAt: 3_000, lastFailedAt: 2_000 }, 3_001, FRESH)).toBe('ok');
  });
});

const health = (fields: Partial<CaptureHealth> = {}): CaptureHealth => ({
  polling: true,
  links: [{ ifname: 'eth0', ifindex: 2, live: true }],
  captured: 0n,
  delivered: 0n,
  ...fields,
});

describe('captureCheck', () => {
  const fresh: RingWatch = { mark: null, keepingUp: true };

  it('is ready when attached, watched and drained', () => {
    const v = captureCheck(health({ captured: 5n, delivered: 5n }), fresh, 0);
    expect(v).toMatchObject({ ok: true, problems: [] });
    expect(v.watch.mark).toEqual({ captured: 5n, at: 0 });
  });

  it('is not ready when closed, attached nowhere, detached or not watched, and says why', () => {
    expect(captureCheck(null, fresh, 0)).toMatchObject({ ok: false, problems: ['capture closed'] });
    expect(captureCheck(health({ links: [] }), fresh, 0)).toMatchObject({ ok: false, problems: ['attached to no device'] });
    const detached = health({ links: [{ ifname: 'eth0', ifindex: 2, live: true }, { ifname: 'eth1', ifindex: 3, live: false }] });
    expect(captureCheck(detached, fresh, 0)).toMatchObject({ ok: false, problems: ['detached from eth1'] });
    expect(captureCheck(health({ polling: false }), fresh, 0)).toMatchObject({ ok: false, problems: ['ring buffer not watched'] });
  });

  it('judges the watcher only against a mark at least RING_DRAIN_BOUND_MS old: records still in the ring since then mean it is stuck', () => {
    // Probe 1: 10 captured, 4 delivered so far (6 in the ring): no evidence yet.
    let v = captureCheck(health({ captured: 10n, delivered: 4n }), fresh, 0);
    expect(v.ok).toBe(true);
    // Probe 2, sooner than the bound: the mark stays, no judgement.
    v = captureCheck(health({ captured: 12n, delivered: 4n }), v.watch, RING_DRAIN_BOUND_MS - 1);
    expect(v.ok).toBe(true);
    expect(v.watch.mark).toEqual({ captured: 10n, at: 0 });
    // Probe 3: the 10 captured by the mark are not all out: stuck.
    v = captureCheck(health({ captured: 12n, delivered: 9n }), v.watch, RING_DRAIN_BOUND_MS);
    expect(v.ok).toBe(false);
    expect(v.problems).toEqual([`ring buffer not drained within ${RING_DRAIN_BOUND_MS} ms (captured 12, delivered 9)`]);
    expect(v.watch.mark).toEqual({ captured: 12n, at: RING_DRAIN_BOUND_MS });
    // Probe 4, sooner than the bound after probe 3: the judgement stands.
    v = captureCheck(health({ captured: 12n, delivered: 12n }), v.watch, RING_DRAIN_BOUND_MS + 1);
    expect(v.ok).toBe(false);
    // Probe 5: everything captured by the mark came out; records newer than it may still wait.
    v = captureCheck(health({ captured: 20n, delivered: 12n }), v.watch, 2 * RING_DRAIN_BOUND_MS);
    expect(v).toMatchObject({ ok: true, problems: [] });
  });
});

/** A device in memory whose reads are counted, and fail on demand. */
class MemoryDevice implements WireGuardDevice {
  readonly kind = 'uapi' as const;
  readonly name = 'wg0';
  reads = 0;
  fail = false;
  private pending: Array<() => void> = [];
  /** Reads wait for release() when true. */
  hold = false;

  async getDevice(): Promise<DeviceInfo> {
    return { name: this.name, publicKey: null, privateKey: new Uint8Array(32), listenPort: 0, fwmark: 0, peers: await this.listPeers() };
  }
  async setPeers(_peers: readonly PeerConfig[]): Promise<void> {}
  async removePeers(_keys: readonly PublicKey[]): Promise<void> {}
  async listPeers(): Promise<PeerStatus[]> {
    this.reads++;
    if (this.hold) await new Promise<void>((resolve) => this.pending.push(resolve));
    if (this.fail) throw new Error('no device');
    return [];
  }
  release(): void {
    for (const wake of this.pending.splice(0)) wake();
  }
  async close(): Promise<void> {}
}

describe('DeviceLiveness', () => {
  function setup() {
    let now = 0;
    const liveness = new DeviceLiveness(FRESH, () => now);
    const raw = new MemoryDevice();
    const device = liveness.wrap(raw);
    return { liveness, raw, device, at: (t: number) => (now = t) };
  }

  it('answers from the reads others made, reading only when none is recent', async () => {
    const { liveness, raw, device, at } = setup();
    at(1_000);
    await device.listPeers(); // the sweeper's
    expect(raw.reads).toBe(1);
    at(1_000 + FRESH);
    expect(await liveness.answers(raw)).toBe(true);
    expect(raw.reads).toBe(1);
    at(1_000 + FRESH + 1);
    expect(await liveness.answers(raw)).toBe(true);
    expect(raw.reads).toBe(2);
    // Its own read counts as recent.
    expect(await liveness.answers(raw)).toBe(true);
    expect(raw.reads).toBe(2);
  });

  it('reads again after a failed read, and says no while reads fail', async () => {
    const { liveness, raw, device, at } = setup();
    at(1_000);
    await device.getDevice();
    raw.fail = true;
    at(2_000);
    await expect(device.listPeers()).rejects.toThrow('no device');
    expect(await liveness.answers(raw)).toBe(false);
    expect(raw.reads).toBe(3);
    raw.fail = false;
    expect(await liveness.answers(raw)).toBe(true);
    expect(raw.reads).toBe(4);
  });

  it('shares one read between probes at once', async () => {
    const { liveness, raw } = setup();
    raw.hold = true;
    const probes = [liveness.answers(raw), liveness.answers(raw), liveness.answers(raw)];
    raw.release();
    expect(await Promise.all(probes)).toEqual([true, true, true]);
    expect(raw.reads).toBe(1);
  });

  it('passes writes through untimed', async () => {
    const { liveness, device } = setup();
    await device.setPeers([]);
    await device.removePeers([]);
    expect(liveness.lastOkAt).toBeNull();
  });
});

describe('Readiness', () => {
  it('checks the device and the capture, and logs a line when readiness changes, not per probe', async () => {
    const lines: Array<Record<string, unknown>> = [];
    const log = pino({ level: 'info' }, { write: (line: string) => lines.push(JSON.parse(line) as Record<string, unknown>) });
    const device = new MemoryDevice();
    const capture = { closed: false, health: () => health() };
    const readiness = new Readiness({ capture, device, liveness: new DeviceLiveness(FRESH), log });
    expect(await readiness.check()).toEqual({ ready: true, checks: { device: true, capture: true } });
    expect(await readiness.check()).toEqual({ ready: true, checks: { device: true, capture: true } });
    capture.closed = true;
    expect(await readiness.check()).toEqual({ ready: false, checks: { device: true, capture: false } });
    expect(await readiness.check()).toMatchObject({ ready: false });
    expect(lines.map((l) => [l['level'], l['msg']])).toEqual([
      [30, 'data plane ready'],
      [40, 'data plane not ready'],
    ]);
    expect(lines[1]).toMatchObject({ problems: ['capture closed'] });
  });
});
