/**
 * The order and bookkeeping of the pipeline, with in-memory stand-ins for
 * the verifier, store, device and replayer (the real ones are exercised in
 * test/integration/cold-connect.test.ts).
 */
import { describe, expect, it } from 'vitest';
import { pino } from 'pino';
import type { CaptureEvent } from '../../src/capture/types.js';
import { parseAddress, type IpAddress } from '../../src/net/address.js';
import type { PeerConfig, WireGuardDevice } from '../../src/install/device.js';
import { InstalledPeers } from '../../src/lifecycle/installed.js';
import { ADMISSION_LOG_LINES_PER_SECOND, MAX_TIMESTAMP_AHEAD_MS, Pipeline, type Admission, type PipelineDeps } from '../../src/pipeline.js';
import { LINE_BUDGET_WINDOW_MS } from '../../src/telemetry/log.js';
import type { VerifyResult } from '../../src/handshake/verify.js';
import { createMetrics } from '../../src/telemetry/metrics.js';
import { gatewayStats } from '../../src/telemetry/stats.js';
import { tai64nFromUnixMs } from '../../src/handshake/tai64n.js';
import { RefusalCache } from '../../src/authorize/refusals.js';
import { TIMESTAMP_RETENTION_MS } from '../../src/authorize/store.js';
import { cidrs } from '../../harness/cidr.js';
import { testKey } from '../support/keys.js';

const KEY = testKey('client');
/** The key as the store and the log lines spell it. */
const KEY_TEXT = KEY.toString();
const NOW = Date.UTC(2026, 10, 23, 12, 0, 0);

/* An address from its text (test input is written as people write addresses). */
function ip(text: string): IpAddress {
  const r = parseAddress(text);
  if (!r.ok) throw new RangeError(r.message);
  return r.address;
}

function event(): CaptureEvent {
  return {
    ifindex: 2,
    family: 4,
    src: { address: ip('192.0.2.7'), port: 40000 },
    dst: { address: ip('192.0.2.1'), port: 51820 },
    arrivalNs: process.hrtime.bigint(),
    message: new Uint8Array(148),
  };
}

function setup(opts: { verdict?: VerifyResult; admission?: Admission | Error; installFails?: boolean; replayFails?: boolean; timestampStoreFails?: boolean; refusals?: RefusalCache } = {}) {
  const installs: PeerConfig[][] = [];
  const lookups: string[] = [];
  const replays: CaptureEvent[] = [];
  let releaseStore: () => void = () => {};
  const storeGate = new Promise<void>((r) => (releaseStore = r));
  const device = {
    kind: 'uapi',
    name: 'wg0',
    setPeers: async (peers: readonly PeerConfig[]) => {
      if (opts.installFails) throw new Error('device gone');
      installs.push([...peers]);
    },
  } as unknown as WireGuardDevice;
  const installed = new InstalledPeers();
  const lines: Array<Record<string, unknown>> = [];
  const metrics = createMetrics({ processMetrics: false });
  let verdict = opts.verdict ?? { ok: true, initiatorKey: KEY, timestamp: tai64nFromUnixMs(NOW - 1000), senderIndex: 1 };
  let clock = NOW;
  /** The monotonic clock of the log's rate bound. */
  let mono = 0;
  /** The store's kept timestamps, as hex (the real one: test/integration/store.test.ts). */
  const kept = new Map<string, string>();
  const deps: PipelineDeps = {
    verifier: {
      verify: (_m, onClaimed) => {
        if (verdict.ok) onClaimed?.(verdict.initiatorKey);
        return verdict;
      },
    },
    authorize: async (key) => {
      lookups.push(key.toString());
      await storeGate;
      const a = opts.admission ?? { allowed: true, grant: { allowedIPs: cidrs('10.0.0.2/32'), version: 'v1' } };
      if (a instanceof Error) throw a;
      return a;
    },
    advanceTimestamp: async (key, timestamp) => {
      if (opts.timestampStoreFails) throw new Error('connection refused');
      const hex = Buffer.from(timestamp).toString('hex');
      if ((kept.get(key.toString()) ?? '') >= hex) return false;
      kept.set(key.toString(), hex);
      return true;
    },
    now: () => clock,
    monotonicMs: () => mono,
    ...(opts.refusals ? { refusals: opts.refusals } : {}),
    device,
    replayer: {
      replay: (e) => {
        if (opts.replayFails) throw new Error('EPERM');
        replays.push(e);
      },
    },
    installed,
    log: pino({ level: 'debug' }, { write: (line: string) => lines.push(JSON.parse(line) as Record<string, unknown>) }),
    metrics,
  };
  const pipeline = new Pipeline(deps);
  const stamp = (unixMs: number) => {
    verdict = { ok: true, initiatorKey: KEY, timestamp: tai64nFromUnixMs(unixMs), senderIndex: 1 };
  };
  /** Time passes: later than the 20 ms per-key interval, unless told otherwise. */
  const tick = (ms = 25) => {
    clock += ms;
  };
  /**
   * The client's next initiation, `ms` later: a newer timestamp (50 ms
   * newer, clear of the 16.8 ms granularity of TAI64N as clients write it).
   */
  let clientClock = NOW - 1000;
  const next = (ms = 25) => {
    tick(ms);
    clientClock += 50;
    stamp(clientClock);
    return clientClock;
  };
  /** The same gateway restarted: a new pipeline over the same store (its memory of keys is gone). */
  const restart = () => new Pipeline(deps);
  /** Outcome (and verified) → count, from wgjit_initiations_total. */
  const initiations = async () => Object.fromEntries((await metrics.initiations.get()).values.map((v) => [`${v.labels['result']},${v.labels['verified']}`, v.value]));
  const monoTick = (ms: number) => {
    mono += ms;
  };
  /** The counts as GET /v1/gateway/stats serves them, read from the metrics. */
  const stats = () => gatewayStats(metrics);
  return { stats, pipeline, installs, lookups, replays, installed, releaseStore, kept, stamp, tick, next, restart, lines, metrics, initiations, monoTick };
}

describe('Pipeline', () => {
  it('installs the full record, then replays, and counts each step', async () => {
    const t = setup();
    t.releaseStore();
    expect(await t.pipeline.handle(event())).toBe('installed');
    expect(t.installs).toEqual([[{ publicKey: KEY, allowedIPs: cidrs('10.0.0.2/32'), replaceAllowedIPs: true, presharedKey: new Uint8Array(32), persistentKeepalive: 0 }]]);
    expect(t.replays).toHaveLength(1);
    expect(t.installed.get(KEY)?.state).toBe('provisional');
    expect(await t.stats()).toMatchObject({ initiations_seen: 1, initiations_verified: 1, installs: 1, replays: 1 });
  });

  it('never asks the store or the device about a message that fails verification', async () => {
    const t = setup({ verdict: { ok: false, reason: 'mac1' } });
    expect(await t.pipeline.handle(event())).toBe('rejected_mac1');
    expect(t.lookups).toEqual([]);
    expect(t.installs).toEqual([]);
    expect((await t.stats())['rejected_mac1']).toBe(1);
  });

  it('logs a decision about a verified initiation at info with its reason, a rejection by the verification at debug', async () => {
    const t = setup({ admission: { allowed: false, reason: 'disabled' } });
    t.releaseStore();
    await t.pipeline.handle(event());
    expect(t.lines.filter((l) => l['msg'] === 'admission')).toMatchObject([{ level: 30, decision: 'disabled', publicKey: KEY_TEXT, src: '192.0.2.7:40000' }]);
    const installed = setup();
    installed.releaseStore();
    await installed.pipeline.handle(event());
    expect(installed.lines.filter((l) => l['msg'] === 'admission')).toMatchObject([{ level: 30, decision: 'installed', publicKey: KEY_TEXT }]);
    const rejected = setup({ verdict: { ok: false, reason: 'mac1' } });
    await rejected.pipeline.handle(event());
    expect(rejected.lines).toMatchObject([{ level: 20, decision: 'rejected_mac1', msg: 'admission' }]);
    expect(rejected.lines[0]).not.toHaveProperty('publicKey');
    // An installed peer's rekey: the device answers it, nothing was decided.
    installed.next();
    expect(await installed.pipeline.handle(event())).toBe('already_installed');
    expect(installed.lines.filter((l) => l['msg'] === 'admission').at(-1)).toMatchObject({ level: 20, decision: 'already_installed', publicKey: KEY_TEXT });
  });

  it('logs a store failure at warn with the error, and an install failure at error', async () => {
    const t = setup({ admission: new Error('peer store unavailable (authorize): connection refused') });
    t.releaseStore();
    expect(await t.pipeline.handle(event())).toBe('store_unavailable');
    expect(t.lines).toMatchObject([{ level: 40, decision: 'store_unavailable', err: 'peer store unavailable (authorize): connection refused' }]);
    const f = setup({ installFails: true });
    f.releaseStore();
    expect(await f.pipeline.handle(event())).toBe('install_failed');
    expect(f.lines).toMatchObject([{ level: 50, decision: 'install_failed', err: 'device gone' }]);
  });

  it('bounds the admission lines per outcome and second, counts the lines held back and reports them in the next line', async () => {
    const t = setup({ admission: { allowed: false, reason: 'unknown' } });
    t.releaseStore();
    const flood = 3 * ADMISSION_LOG_LINES_PER_SECOND;
    for (let i = 0; i < flood; i++) {
      t.next();
      expect(await t.pipeline.handle(event())).toBe('unknown');
    }
    const admissions = () => t.lines.filter((l) => l['msg'] === 'admission');
    expect(admissions()).toHaveLength(ADMISSION_LOG_LINES_PER_SECOND);
    expect(admissions().some((l) => 'suppressed' in l)).toBe(false);
    const held = flood - ADMISSION_LOG_LINES_PER_SECOND;
    expect((await t.metrics.admissionLogsSuppressed.get()).values).toMatchObject([{ labels: { result: 'unknown' }, value: held }]);
    // Every one counted all the same.
    expect((await t.stats())['unknown']).toBe(flood);
    // Another outcome has its own bound.
    t.next(1); // within 20 ms of the last
    expect(await t.pipeline.handle(event())).toBe('too_soon');
    expect(admissions().at(-1)).toMatchObject({ decision: 'too_soon' });
    // The next window: the first line says how many were held back, once.
    t.monoTick(LINE_BUDGET_WINDOW_MS);
    for (let i = 0; i < 2; i++) {
      t.next();
      await t.pipeline.handle(event());
    }
    const [first, second] = admissions().filter((l) => l['decision'] === 'unknown').slice(-2);
    expect(first).toMatchObject({ suppressed: held });
    expect(second).not.toHaveProperty('suppressed');
  });

  it('labels each outcome with whether the initiation passed the verification', async () => {
    const t = setup({ admission: { allowed: false, reason: 'unknown' } });
    t.releaseStore();
    expect(await t.pipeline.handle(event())).toBe('unknown');
    const rejected = setup({ verdict: { ok: false, reason: 'static_decrypt' } });
    expect(await rejected.pipeline.handle(event())).toBe('rejected_static_decrypt');
    expect(await t.initiations()).toEqual({ 'unknown,true': 1 });
    expect(await rejected.initiations()).toEqual({ 'rejected_static_decrypt,false': 1 });
  });

  it('considers one initiation per key per 20 ms, and joins later resends to the admission under way', async () => {
    const t = setup();
    const first = t.pipeline.handle(event());
    t.next(5); // newer initiations within 20 ms
    const burst = Promise.all([t.pipeline.handle(event()), t.pipeline.handle(event())]);
    t.next(); // 30 ms on, while the store is still slow
    const later = t.pipeline.handle(event());
    t.releaseStore();
    expect(await first).toBe('installed');
    expect(await burst).toEqual(['too_soon', 'too_soon']);
    expect(await later).toBe('in_flight');
    expect(t.lookups).toEqual([KEY_TEXT]);
    expect(t.installs).toHaveLength(1);
    t.next();
    expect(await t.pipeline.handle(event())).toBe('already_installed');
    expect(t.installs).toHaveLength(1);
    expect((await t.stats())['too_soon']).toBe(2);
  });

  it('does not let replays of a captured initiation take its key\'s 20 ms slot', async () => {
    const t = setup();
    t.releaseStore();
    expect(await t.pipeline.handle(event())).toBe('installed');
    t.installed.delete(KEY);
    t.tick(25);
    for (let i = 0; i < 10; i++) expect(await t.pipeline.handle(event())).toBe('replayed'); // an attacker's copies...
    t.next(1);
    expect(await t.pipeline.handle(event())).toBe('installed'); // ...do not hold the owner back
    // Refused from memory, no lookup: a key seen lately waits for its
    // timestamp check before the store is asked (the owner's was then).
    expect(t.lookups).toHaveLength(2);
  });

  it('does not install refused keys', async () => {
    for (const reason of ['unknown', 'disabled', 'expired'] as const) {
      const t = setup({ admission: { allowed: false, reason } });
      t.releaseStore();
      expect(await t.pipeline.handle(event())).toBe(reason);
      expect(t.installs).toEqual([]);
      expect(t.installed.size).toBe(0);
    }
  });

  it('turns a store failure into a counted, failed admission', async () => {
    const t = setup({ admission: new Error('connection refused') });
    t.releaseStore();
    expect(await t.pipeline.handle(event())).toBe('store_unavailable');
    expect((await t.stats())['store_unavailable']).toBe(1);
    expect(t.installs).toEqual([]);
  });

  it('reports a failed install and keeps nothing', async () => {
    const t = setup({ installFails: true });
    t.releaseStore();
    expect(await t.pipeline.handle(event())).toBe('install_failed');
    expect(t.installed.size).toBe(0);
  });

  it('keeps the peer when the replay fails: the client connects on its retry', async () => {
    const t = setup({ replayFails: true });
    t.releaseStore();
    expect(await t.pipeline.handle(event())).toBe('installed');
    expect(t.installed.has(KEY)).toBe(true);
    expect((await t.stats())['replay_failures']).toBe(1);
  });

  it('never installs an initiation whose timestamp is not newer than the one kept: a replay after the peer was removed', async () => {
    const t = setup();
    t.releaseStore();
    expect(await t.pipeline.handle(event())).toBe('installed');
    t.installed.delete(KEY); // expired from the device: its own replay memory is gone
    const restarted = t.restart(); // and this gateway's memory too: the store decides
    t.tick();
    expect(await restarted.handle(event())).toBe('replayed');
    expect(t.installs).toHaveLength(1);
    expect((await t.stats())['replayed']).toBe(1);
    t.next(); // the client's next, newer initiation gets in
    expect(await restarted.handle(event())).toBe('installed');
    expect(t.installs).toHaveLength(2);
  });

  it('keeps the timestamps of an installed peer, so a capture taken during its session is refused after it', async () => {
    const t = setup();
    t.releaseStore();
    expect(await t.pipeline.handle(event())).toBe('installed');
    const rekey = Buffer.from(tai64nFromUnixMs(t.next())).toString('hex'); // a rekey during the session, answered by the device itself
    expect(await t.pipeline.handle(event())).toBe('already_installed');
    await new Promise((r) => setImmediate(r));
    expect(t.kept.get(KEY_TEXT)).toBe(rekey);
    t.installed.delete(KEY);
    t.tick();
    expect(await t.restart().handle(event())).toBe('replayed');
  });

  it('refuses a timestamp too far ahead of our clock and keeps nothing for it', async () => {
    const t = setup();
    t.releaseStore();
    t.stamp(NOW + MAX_TIMESTAMP_AHEAD_MS + 60_000);
    expect(await t.pipeline.handle(event())).toBe('future_timestamp');
    expect(t.kept.size).toBe(0);
    expect(t.installs).toEqual([]);
    t.stamp(NOW + MAX_TIMESTAMP_AHEAD_MS - 60_000); // a little ahead is fine
    expect(await t.pipeline.handle(event())).toBe('installed');
  });

  it('refuses a timestamp older than the store keeps a deleted key\'s, and keeps nothing for it', async () => {
    const t = setup();
    t.releaseStore();
    t.stamp(NOW - TIMESTAMP_RETENTION_MS - 60_000);
    expect(await t.pipeline.handle(event())).toBe('stale_timestamp');
    expect(t.kept.size).toBe(0);
    expect(t.installs).toEqual([]);
    t.stamp(NOW - TIMESTAMP_RETENTION_MS + 60_000); // a clock days behind is fine
    expect(await t.pipeline.handle(event())).toBe('installed');
  });

  it('keeps timestamps only for authorized keys', async () => {
    const t = setup({ admission: { allowed: false, reason: 'unknown' } });
    t.releaseStore();
    expect(await t.pipeline.handle(event())).toBe('unknown');
    expect(t.kept.size).toBe(0);
  });

  it('a store failure while keeping the timestamp fails the admission', async () => {
    const t = setup({ timestampStoreFails: true });
    t.releaseStore();
    expect(await t.pipeline.handle(event())).toBe('store_unavailable');
    expect(t.installs).toEqual([]);
  });

  it('answers a key the store refused from the refusal cache, until the key changes in the store', async () => {
    const refusals = new RefusalCache(16, 60_000, () => NOW);
    const t = setup({ admission: { allowed: false, reason: 'disabled' }, refusals });
    t.releaseStore();
    expect(await t.pipeline.handle(event())).toBe('disabled');
    for (let i = 0; i < 5; i++) {
      t.next();
      expect(await t.pipeline.handle(event())).toBe('disabled');
    }
    expect(t.lookups).toHaveLength(1); // one store lookup for six initiations
    expect((await t.stats())['refusals_cached']).toBe(5);
    refusals.delete(KEY); // the store said the record changed
    t.next();
    expect(await t.pipeline.handle(event())).toBe('disabled');
    expect(t.lookups).toHaveLength(2);
  });
});
