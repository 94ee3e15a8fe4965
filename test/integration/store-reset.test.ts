/**
 * Issue 18 on real parts: a gateway (wgjit run, XDP on the uplink,
 * wireguard-go) whose redis-server restarts empty under it, with real
 * WireGuard clients connected; a captured initiation replayed after the
 * reset and a daemon restart; a client locked out by an initiation stamped
 * ahead of time, let in again by `wgjit peer reset-replay`.
 *
 *   srs-c1..c3 ── srs-sw ── [srsup] srs-gw: wireguard-go, wgjit run, redis-server (no persistence)
 */
import { resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatKey, publicKeyOf } from '../../src/handshake/keys.js';
import { generatePrivateKey } from '../../harness/noise/keys.js';
import { nsRun } from '../../harness/testbed/exec.js';
import { startStack, type Stack } from '../../harness/testbed/stack.js';
import { createTestbed, type Testbed, type TestbedClient } from '../../harness/testbed/topology.js';

const TSX = resolve('node_modules/.bin/tsx');
const SEND = resolve('test/integration/fixtures/send-initiation.ts');
/** Generous deadlines for conditions polled (never asserted as times). */
const DEADLINE_MS = 20_000;
/** Pings sent through each tunnel across the reset: one every PING_INTERVAL_S. */
const PINGS = 60;
const PING_INTERVAL_S = 0.2;

describe('a store that lost its data (redis-server restarted empty under a running gateway)', () => {
  let tb: Testbed;
  let stack: Stack;

  beforeAll(async () => {
    tb = await createTestbed({ prefix: 'srs', clients: 3, gatewayWg: true, underlayOctet: 83, tunnelOctet: 84 });
    // Reconciliations every 5 s: "within one reconciliation" comes soon.
    stack = await startStack(tb, { runArgs: ['--source-rate', '0', '--reconcile-interval', '5'] });
  }, 60_000);

  afterAll(async () => {
    if (process.env['WGJIT_TEST_LOGS']) (await import('node:fs')).writeFileSync(process.env['WGJIT_TEST_LOGS'], stack?.logs.join('\n') ?? '');
    await stack?.stop();
    await tb?.destroy();
  });

  const eventually = async <T>(what: string, check: () => Promise<T | undefined | false>, deadlineMs = DEADLINE_MS): Promise<T> => {
    for (const deadline = Date.now() + deadlineMs; Date.now() < deadline; await new Promise((r) => setTimeout(r, 200))) {
      const v = await check();
      if (v !== undefined && v !== false) return v;
    }
    // What the daemon said meanwhile about the store and its reconciliations: why it did not happen.
    const context = stack.logs.filter((l) => /store|reconcil/.test(l)).slice(-20);
    throw new Error(`timed out waiting for ${what}; the daemon's last lines on the store:\n${context.join('\n')}`);
  };
  const deviceKeys = async () => (await tb.gateway!.dump()).peers.map((p) => p.publicKey);
  const stats = async () => (await stack.api('GET', '/v1/gateway/stats')).body as Record<string, number>;
  const metric = async (name: string): Promise<number | null> => {
    const script = `const r = await fetch(${JSON.stringify(`${stack.apiUrl}/metrics`)}); process.stdout.write(await r.text());`;
    const { stdout } = await nsRun(tb.gatewayNs, 'node', ['--input-type=module', '-e', script]);
    const m = new RegExp(`^${name} (\\S+)$`, 'm').exec(stdout);
    return m === null ? null : Number(m[1]);
  };
  const ping = (c: TestbedClient, count = 1) =>
    nsRun(c.ns, 'ping', ['-c', String(count), '-i', String(PING_INTERVAL_S), '-W', '2', tb.gatewayTunnelAddress]).then(
      (r) => r.stdout,
      (err: { stdout?: string }) => err.stdout ?? '',
    );
  const received = (pingOutput: string) => Number(/(\d+) (?:packets )?received/.exec(pingOutput)?.[1] ?? 0);
  /** One initiation of `privateKey` made by our initiator, sent from `from`: how many responses came back, and the message. */
  const send = async (from: TestbedClient, privateKey: Uint8Array, extra: Record<string, unknown> = {}) =>
    JSON.parse(
      (await nsRun(from.ns, TSX, [SEND, JSON.stringify({ gateway: tb.gatewayAddress, port: tb.listenPort, gatewayPublicKey: tb.gateway!.publicKey, privateKey: formatKey(privateKey), waitMs: 1_000, ...extra })]))
        .stdout,
    ) as { responses: number; completed: boolean; message: string };
  const logged = (pattern: RegExp) => stack.logs.filter((l) => pattern.test(l));

  // Across the tests: two WireGuard clients, and a key whose first initiation is kept as an eavesdropper would.
  let a: { client: TestbedClient; key: string };
  let b: { client: TestbedClient; key: string };
  const kPrivate = generatePrivateKey();
  const k = formatKey(publicKeyOf(kPrivate));
  const kAddress = '10.84.0.201/32';
  let captured = '';

  it('keeps both tunnels passing traffic and removes nothing; says so in /readyz, the log and a metric; after one client is registered again and the reset confirmed, the other is removed', async () => {
    const [ca, cb] = [tb.clients[0]!, tb.clients[1]!];
    for (const c of [ca, cb]) {
      const wg = await c.startWireguard();
      await stack.cli(['peer', 'add', wg.publicKey, '--allowed-ips', `${c.tunnelAddress}/32`]);
      expect(received(await ping(c))).toBe(1);
    }
    a = { client: ca, key: ca.wireguard!.publicKey };
    b = { client: cb, key: cb.wireguard!.publicKey };
    await stack.cli(['peer', 'add', k, '--allowed-ips', kAddress]);
    const first = await send(tb.clients[2]!, kPrivate);
    expect(first).toMatchObject({ responses: 1, completed: true });
    captured = first.message;
    expect(await metric('wgjit_store_reset')).toBe(0);

    // Pings through both tunnels while redis-server restarts empty.
    const pings = [ping(ca, PINGS), ping(cb, PINGS)];
    await new Promise((r) => setTimeout(r, 1_000));
    await stack.stopRedis();
    await new Promise((r) => setTimeout(r, 500));
    await stack.startRedis();

    // Recognized: a warning in /readyz (still ready: the gateway serves), the metric, one error line.
    const warnings = await eventually('the reset in /readyz', async () => {
      const r = await stack.api('GET', '/readyz');
      return (r.body as { warnings?: string[] }).warnings;
    });
    expect(warnings.join(' ')).toMatch(/lost its data.*wgjit store confirm-reset/);
    expect(await metric('wgjit_store_reset')).toBe(1);
    // A reconciliation has run since, and kept what the store no longer knows.
    // Reconciliations come every 5 s; a loaded machine may delay a few.
    await eventually('a reconciliation keeping the unknown peers', async () => logged(/reconciled the device with the store/).some((l) => /"kept":[1-9]/.test(l)), 2 * DEADLINE_MS);
    expect(logged(/the peer store lost its data/)).toHaveLength(1);
    // (K, whose initiator sent no data, may have been removed meanwhile as unconfirmed: the sweep goes on.)
    expect(await deviceKeys()).toEqual(expect.arrayContaining([a.key, b.key]));

    const [outA, outB] = await Promise.all(pings);
    console.log(`[store-reset] pings answered across the reset: A ${received(outA!)}/${PINGS}, B ${received(outB!)}/${PINGS}`);
    for (const out of [outA!, outB!]) expect(received(out)).toBeGreaterThanOrEqual(Math.floor(PINGS * 0.99));
    expect((await stack.cli(['store', 'status'])).stdout).toMatch(/RESET, not confirmed/);

    // The operator registers A again, then confirms: B and K, unknown to the store, go; A stays.
    await stack.cli(['peer', 'add', a.key, '--allowed-ips', `${a.client.tunnelAddress}/32`]);
    expect((await stack.cli(['store', 'confirm-reset'])).stdout).toMatch(/^confirmed the store reset/);
    await eventually('B and K removed', async () => {
      const keys = await deviceKeys();
      return !keys.includes(b.key) && !keys.includes(k);
    });
    expect(await deviceKeys()).toContain(a.key);
    expect(received(await ping(a.client))).toBe(1);
    expect(await metric('wgjit_store_reset')).toBe(0);
    expect((await stack.api('GET', '/readyz')).body).not.toHaveProperty('warnings');
    expect(logged(/"audit":"store.confirm-reset"/)).toHaveLength(1);
    await expect(stack.cli(['store', 'confirm-reset'])).rejects.toThrow(/exit 3\b[\s\S]*no store reset is recorded/); // nothing left to confirm
  }, 120_000);

  it('after the reset and a daemon restart, an initiation captured before the reset and sent from another address is refused', async () => {
    expect(captured).not.toBe('');
    // K registered again after the reset: its record takes the timestamp the gateway wrote back.
    await stack.cli(['peer', 'add', k, '--allowed-ips', kAddress]);
    await stack.stopDaemon();
    await stack.startDaemon();
    // The restarted gateway found the store's epoch whole: nothing to recognize again.
    expect(logged(/the peer store lost its data/)).toHaveLength(1);
    const before = (await stats())['replayed'] ?? 0;
    expect(await send(tb.clients[1]!, kPrivate, { replay: captured })).toMatchObject({ responses: 0 });
    expect(await deviceKeys()).not.toContain(k);
    expect((await stats())['replayed']).toBe(before + 1);
    // The key itself is welcome: a new initiation gets in.
    expect(await send(tb.clients[2]!, kPrivate)).toMatchObject({ responses: 1, completed: true });
  }, 60_000);

  it('an initiation stamped ahead of time locks its key out; `wgjit peer reset-replay` lets the genuine client in on its next initiation, no restart', async () => {
    const lPrivate = generatePrivateKey();
    const l = formatKey(publicKeyOf(lPrivate));
    await stack.cli(['peer', 'add', l, '--allowed-ips', '10.84.0.202/32']);
    // Five minutes ahead: within what the gateway accepts (a clock may be off), and then kept.
    expect(await send(tb.clients[2]!, lPrivate, { aheadMs: 5 * 60_000 })).toMatchObject({ responses: 1 });
    // The genuine client, its clock right: refused by the device that holds the peer...
    expect(await send(tb.clients[1]!, lPrivate)).toMatchObject({ responses: 0 });
    // ...and, the peer gone from the gateway, by what the gateway and the store keep.
    expect((await stack.api('DELETE', `/v1/gateway/peers/${encodeURIComponent(l)}`)).status).toBe(204);
    const before = (await stats())['replayed'] ?? 0;
    expect(await send(tb.clients[1]!, lPrivate)).toMatchObject({ responses: 0 });
    expect((await stats())['replayed']).toBe(before + 1);

    // Installed again by the future-stamped copy, so the device holds the lockout too when the operator acts.
    expect((await stack.api('POST', `/v1/peers/${encodeURIComponent(l)}/reset-replay`)).status).toBe(200);
    expect(await send(tb.clients[2]!, lPrivate, { aheadMs: 6 * 60_000 })).toMatchObject({ responses: 1 });

    const reset = await stack.cli(['peer', 'reset-replay', l]);
    expect(reset.stdout).toMatch(/next initiation is admitted/);
    // The store event reaches the gateway in moments: its next initiation is answered.
    await eventually('the genuine client answered', async () => (await send(tb.clients[1]!, lPrivate)).completed);
    expect((await tb.gateway!.dump()).peers.find((p) => p.publicKey === l)?.endpoint).toMatch(new RegExp(`^${tb.clients[1]!.address.replace(/\./g, '\\.')}:`));
    expect(logged(/"audit":"peer.reset-replay"/).length).toBeGreaterThanOrEqual(2);
    expect(logged(/"audit":"peer.reset-replay"/).every((line) => /"tokenId":"[0-9a-f]{8}"/.test(line) && !line.includes(stack.token))).toBe(true);
  }, 90_000);
});
