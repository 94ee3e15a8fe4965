/**
 * Cold connect end to end, every part real: XDP on the gateway's uplink,
 * the wgjit daemon, redis-server, wireguard-go on the gateway and on the
 * clients.
 *
 *   e2e-c1..c5 ─┬─ e2e-sw (bridge) ── [e2eup] e2e-gw: wireguard-go e2egw0 (no peers)
 *               │                              redis-server, wgjit run (XDP on e2eup)
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatKey, publicKeyOf } from '../../src/handshake/keys.js';
import { generatePrivateKey } from '../../harness/noise/keys.js';
import { nsRun } from '../../harness/testbed/exec.js';
import { startStack, type Stack } from '../../harness/testbed/stack.js';
import { createTestbed, type Testbed, type TestbedClient } from '../../harness/testbed/topology.js';

const TSX = resolve('node_modules/.bin/tsx');
const SEND = resolve('test/integration/fixtures/send-initiation.ts');
const JUNK = resolve('test/integration/fixtures/send-junk.ts');
/** A client's retry interval (REKEY_TIMEOUT) plus jitter and slack. */
const ONE_RETRY_MS = 7_000;
/** Longer than a client's first retry (REKEY_TIMEOUT 5 s + up to 333 ms). */
const RETRY_WINDOW_MS = 6_000;
/** How long a client that must get no answer is watched. */
const SILENCE_MS = 3_000;
/** The daemon's --metrics-listen port, in the gateway namespace. */
const METRICS_PORT = 9189;

describe('cold connect through wgjit', () => {
  let tb: Testbed;
  let stack: Stack;

  beforeAll(async () => {
    tb = await createTestbed({ prefix: 'e2e', clients: 5, gatewayWg: true, underlayOctet: 91, tunnelOctet: 92 });
    // This file tests what the daemon decides; the XDP per-source limit
    // would hide most of its bursts (it has its own tests: xdp.test.ts,
    // flood.test.ts).
    stack = await startStack(tb, { runArgs: ['--source-rate', '0', '--metrics-listen', `127.0.0.1:${METRICS_PORT}`] });
  }, 60_000);

  afterAll(async () => {
    await stack?.stop();
    await tb?.destroy();
  });

  const stats = async () => JSON.parse((await stack.cli(['status', '--json'])).stdout).stats as Record<string, number>;
  const api = async (method: string, path: string, body?: unknown): Promise<number> => (await stack.api(method, path, body)).status;
  /** Polls the device until `check` holds, for at most `ms`. */
  const eventually = async (check: () => Promise<boolean>, ms: number): Promise<boolean> => {
    for (const deadline = Date.now() + ms; Date.now() < deadline; await new Promise((r) => setTimeout(r, 100))) {
      if (await check()) return true;
    }
    return check();
  };
  /** GET /metrics from inside the gateway namespace, as `name{labels}` → value. */
  const scrape = async (): Promise<Map<string, number>> => {
    const script = `const r = await fetch(${JSON.stringify(`${stack.apiUrl}/metrics`)}); process.stdout.write(await r.text());`;
    const { stdout } = await nsRun(tb.gatewayNs, 'node', ['--input-type=module', '-e', script]);
    const out = new Map<string, number>();
    for (const m of stdout.matchAll(/^([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{[^}]*\})?) (\S+)$/gm)) out.set(m[1]!, Number(m[2]));
    return out;
  };
  const gatewayKeys = async () => (await tb.gateway!.dump()).peers.map((p) => p.publicKey);
  const ping = (c: TestbedClient) =>
    nsRun(c.ns, 'ping', ['-c', '1', '-W', '2', tb.gatewayTunnelAddress]).then(
      () => true,
      () => false,
    );

  /** The preshared key of the first client: write-only, it must never come back out (last test). */
  const psk = formatKey(randomBytes(32));

  it("answers a registered client's first initiation, before its retry, and traffic flows", async () => {
    const c = tb.clients[0]!;
    const wg = await c.startWireguard({ presharedKey: psk });
    const pskFile = join(mkdtempSync(join(tmpdir(), 'wgjit-psk-')), 'psk');
    writeFileSync(pskFile, `${psk}\n`, { mode: 0o600 });
    await stack.cli(['peer', 'add', wg.publicKey, '--allowed-ips', `${c.tunnelAddress}/32`, '--preshared-key-file', pskFile]);
    rmSync(dirname(pskFile), { recursive: true });
    const sniffer = await c.sniff();
    const pinged = ping(c);
    expect(await sniffer.waitForResponse(RETRY_WINDOW_MS)).toBe(true);
    // The response answers the first initiation: the client never retried.
    expect(sniffer.initiationsBeforeResponse).toBe(1);
    expect(sniffer.firstResponseAt! - sniffer.firstInitiationAt!).toBeLessThan(5_000);
    expect(await pinged).toBe(true);
    expect(await ping(c)).toBe(true);
    expect(await gatewayKeys()).toContain(wg.publicKey);
    const s = await stats();
    expect(s['installs']).toBeGreaterThanOrEqual(1);
    expect(s['replays']).toBeGreaterThanOrEqual(1);
    expect(stack.logs.some((l) => l.includes('"decision":"installed"') && l.includes(wg.publicKey))).toBe(true);
  });

  it('is ready, and its metrics show the capture, the admission and the peer as they are', async () => {
    const ready = await stack.api('GET', '/readyz');
    expect(ready).toEqual({ status: 200, body: { ready: true, checks: { store: true, device: true, capture: true } } });
    const m = await scrape();
    expect(m.get('wgjit_xdp_packets_total{result="captured"}')).toBeGreaterThanOrEqual(1);
    expect(m.has('wgjit_xdp_packets_total{result="ringbuf_full"}')).toBe(true);
    expect(m.get('wgjit_initiations_total{result="installed",verified="true"}')).toBeGreaterThanOrEqual(1);
    // Read from the table at the scrape: the peer installed above, before any sweep confirmed it or not.
    const installed = (m.get('wgjit_installed_peers{state="provisional"}') ?? 0) + (m.get('wgjit_installed_peers{state="confirmed"}') ?? 0);
    expect(installed).toBe((await stats())['installed_peers']);
    expect(installed).toBeGreaterThanOrEqual(1);
    expect(m.has('process_cpu_user_seconds_total')).toBe(true);
    expect(m.has('nodejs_eventloop_lag_p99_seconds')).toBe(true);
  });

  it('serves /metrics, /healthz and /readyz again on --metrics-listen, without a token and with no /v1 route', async () => {
    const metricsUrl = `http://127.0.0.1:${METRICS_PORT}`;
    const get = async (path: string) => {
      const out = (await nsRun(tb.gatewayNs, 'curl', ['-sS', '-w', '\n%{http_code}', metricsUrl + path])).stdout;
      const cut = out.lastIndexOf('\n');
      return { status: Number(out.slice(cut + 1)), body: out.slice(0, cut) };
    };
    const scraped = await get('/metrics');
    expect(scraped.status).toBe(200);
    expect(scraped.body).toMatch(/^wgjit_xdp_packets_total\{result="captured"\} [1-9]/m);
    expect(scraped.body).toMatch(/^wgjit_build_info\{version="[^"]+",node="[^"]+",libbpf="unknown"\} 1$/m);
    // The reconciliation at start ran through.
    const reconciled = Number(/^wgjit_last_reconciliation_timestamp_seconds (\S+)$/m.exec(scraped.body)?.[1]);
    expect(reconciled).toBeGreaterThan(0);
    expect(reconciled).toBeLessThanOrEqual(Date.now() / 1000);
    expect(scraped.body).toMatch(/^wgjit_http_requests_total\{method="GET",route="\/readyz",status="200"\} [1-9]/m);
    expect(await get('/readyz')).toEqual({ status: 200, body: JSON.stringify({ ready: true, checks: { store: true, device: true, capture: true } }) });
    expect((await get('/healthz')).status).toBe(200);
    const v1 = await get('/v1/gateway/peers');
    expect(v1.status).toBe(404);
    expect(JSON.parse(v1.body).error.code).toBe('not_found');
  });

  it('never installs or answers an unregistered key', async () => {
    const c = tb.clients[1]!;
    const wg = await c.startWireguard();
    const sniffer = await c.sniff();
    void ping(c);
    expect(await sniffer.waitForResponse(SILENCE_MS)).toBe(false);
    expect(sniffer.initiations).toBeGreaterThanOrEqual(1);
    expect(await gatewayKeys()).not.toContain(wg.publicKey);
    expect((await stats())['unknown']).toBeGreaterThanOrEqual(1);
    // A decision about a verified initiation: an info line with its reason.
    const line = stack.logs.filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l['decision'] === 'unknown' && l['publicKey'] === wg.publicKey);
    expect(line).toMatchObject({ level: 'info', component: 'pipeline', msg: 'admission' });
    // Its retries would land in the next test's counters.
    await wg.wg.stop();
  });

  it("does not install a registered key claimed by someone without its private key", async () => {
    const c = tb.clients[2]!;
    const victimPrivate = generatePrivateKey();
    const victim = formatKey(publicKeyOf(victimPrivate));
    await stack.cli(['peer', 'add', victim, '--allowed-ips', '10.92.0.200/32']);
    const before = (await stats())['rejected_timestamp_decrypt'] ?? 0;
    const attacker = formatKey(generatePrivateKey());
    const { stdout } = await nsRun(c.ns, TSX, [
      SEND,
      JSON.stringify({ gateway: tb.gatewayAddress, port: tb.listenPort, gatewayPublicKey: tb.gateway!.publicKey, privateKey: attacker, claimedStaticKey: victim, waitMs: SILENCE_MS }),
    ]);
    expect(JSON.parse(stdout)).toMatchObject({ responses: 0, completed: false });
    expect(await gatewayKeys()).not.toContain(victim);
    expect((await stats())['rejected_timestamp_decrypt']).toBe(before + 1);

    // The same sender with the victim's real private key is admitted: the
    // refusal above was the forgery, not the key.
    const real = await nsRun(c.ns, TSX, [
      SEND,
      JSON.stringify({ gateway: tb.gatewayAddress, port: tb.listenPort, gatewayPublicKey: tb.gateway!.publicKey, privateKey: formatKey(victimPrivate), waitMs: 1_000 }),
    ]);
    expect(JSON.parse(real.stdout)).toMatchObject({ responses: 1, completed: true });
    expect(await gatewayKeys()).toContain(victim);
  });

  it('survives hostile datagrams, each counted by reason', async () => {
    const c = tb.clients[2]!;
    const before = await stats();
    const { stdout } = await nsRun(c.ns, TSX, [JUNK, JSON.stringify({ gateway: tb.gatewayAddress, port: tb.listenPort, gatewayPublicKey: tb.gateway!.publicKey, rounds: 20, gapMs: 5 })]);
    const sent = JSON.parse(stdout) as { sent: number; verifiable: number };
    const delta = (k: string, s: Record<string, number>) => (s[k] ?? 0) - (before[k] ?? 0);
    let after = before;
    for (let i = 0; i < 50 && delta('initiations_seen', after) < sent.verifiable; i++) {
      await new Promise((r) => setTimeout(r, 100));
      after = await stats();
    }
    expect(delta('initiations_seen', after)).toBe(sent.verifiable);
    expect(delta('rejected_mac1', after)).toBe(20);
    expect(delta('rejected_low_order', after)).toBe(20);
    expect(delta('rejected_static_decrypt', after)).toBe(20);
    expect(delta('installs', after)).toBe(0);
    expect(delta('xdp_bad_reserved', after)).toBe(20);
    expect(delta('xdp_wrong_size', after)).toBeGreaterThanOrEqual(80);
    expect(stack.daemon.isRunning()).toBe(true);
  });

  it('a captured initiation replayed from elsewhere does not move the endpoint, and after the peer is gone does not install it', async () => {
    const [c, other] = [tb.clients[2]!, tb.clients[3]!];
    const keyPrivate = generatePrivateKey();
    const key = formatKey(publicKeyOf(keyPrivate));
    await stack.cli(['peer', 'add', key, '--allowed-ips', '10.92.0.201/32']);
    const send = async (from: TestbedClient, extra: Record<string, unknown>) =>
      JSON.parse(
        (await nsRun(from.ns, TSX, [SEND, JSON.stringify({ gateway: tb.gatewayAddress, port: tb.listenPort, gatewayPublicKey: tb.gateway!.publicKey, privateKey: formatKey(keyPrivate), waitMs: 1_000, ...extra })]))
          .stdout,
      ) as { responses: number; completed: boolean; message: string };
    const endpointOf = async () => (await tb.gateway!.dump()).peers.find((p) => p.publicKey === key)?.endpoint ?? null;

    const first = await send(c, {});
    expect(first).toMatchObject({ responses: 1, completed: true });
    expect(await endpointOf()).toMatch(new RegExp(`^${c.address.replace(/\./g, '\\.')}:`));

    // While the peer is installed: the device refuses the replay itself.
    expect(await send(other, { replay: first.message })).toMatchObject({ responses: 0 });
    expect(await endpointOf()).toMatch(new RegExp(`^${c.address.replace(/\./g, '\\.')}:`));

    // The peer leaves the gateway (as on expiry): the device forgets its timestamp, the store does not.
    expect(await api('DELETE', `/v1/gateway/peers/${encodeURIComponent(key)}`)).toBe(204);
    const before = (await stats())['replayed'] ?? 0;
    expect(await send(c, { replay: first.message })).toMatchObject({ responses: 0 });
    expect(await gatewayKeys()).not.toContain(key);
    expect((await stats())['replayed']).toBe(before + 1);

    // A new initiation from the same key is admitted: the refusal was the replay.
    expect(await send(c, {})).toMatchObject({ responses: 1, completed: true });
    expect(await gatewayKeys()).toContain(key);
  });

  it('installs a registered client once for a burst of resends', async () => {
    const c = tb.clients[1]!;
    const keyPrivate = generatePrivateKey();
    const key = formatKey(publicKeyOf(keyPrivate));
    await stack.cli(['peer', 'add', key, '--allowed-ips', '10.92.0.202/32']);
    const before = await stats();
    const burst = 8;
    const { stdout } = await nsRun(c.ns, TSX, [
      SEND,
      JSON.stringify({ gateway: tb.gatewayAddress, port: tb.listenPort, gatewayPublicKey: tb.gateway!.publicKey, privateKey: formatKey(keyPrivate), count: burst, waitMs: 1_500 }),
    ]);
    expect(JSON.parse(stdout)).toMatchObject({ completed: true });
    const after = await stats();
    const delta = (k: string) => (after[k] ?? 0) - (before[k] ?? 0);
    // At most 4 from one source wait in the intake; the rest are dropped there.
    expect(delta('initiations_verified') + delta('dropped_source_full')).toBe(burst);
    expect(delta('initiations_verified')).toBeGreaterThanOrEqual(2);
    expect(delta('installs')).toBe(1);
    // The others: within 20 ms of the first, the same timestamp as one seen, or joined to the install under way.
    expect(delta('too_soon') + delta('replayed') + delta('in_flight') + delta('already_installed')).toBe(delta('initiations_verified') - 1);
    expect(await gatewayKeys()).toContain(key);
  });

  it('fails admissions clearly while Redis is down, keeps installed peers working, and recovers without a restart', async () => {
    const c = tb.clients[4]!;
    const wg = await c.startWireguard();
    await stack.stopRedis();
    try {
      const sniffer = await c.sniff();
      void ping(c);
      expect(await sniffer.waitForResponse(SILENCE_MS)).toBe(false);
      expect((await stats())['store_unavailable']).toBeGreaterThanOrEqual(1);
      expect(stack.logs.some((l) => l.includes('peer store unavailable'))).toBe(true);
      // The tunnel installed before the outage still carries traffic.
      expect(await ping(tb.clients[0]!)).toBe(true);
      expect(stack.daemon.isRunning()).toBe(true);
    } finally {
      await stack.startRedis();
    }
    // The daemon reconnects on its own; an operator waits for /readyz.
    expect(await eventually(async () => (await api('GET', '/readyz')) === 200, 10_000)).toBe(true);
    // A fresh Redis is empty: register again; the client's next retry connects.
    // Watched from before the registration: a retry that lands while the CLI
    // runs is the one that connects, and no answer can come before the add.
    const sniffer = await c.sniff();
    await stack.cli(['peer', 'add', wg.publicKey, '--allowed-ips', `${c.tunnelAddress}/32`]);
    expect(await sniffer.waitForResponse(ONE_RETRY_MS)).toBe(true);
    expect(await gatewayKeys()).toContain(wg.publicKey);
    expect(await ping(c)).toBe(true);
  });

  it('does not install a disabled peer', async () => {
    const c = tb.clients[3]!;
    const wg = await c.startWireguard();
    await stack.cli(['peer', 'add', wg.publicKey, '--allowed-ips', `${c.tunnelAddress}/32`, '--disabled']);
    const sniffer = await c.sniff();
    void ping(c);
    expect(await sniffer.waitForResponse(SILENCE_MS)).toBe(false);
    expect(await gatewayKeys()).not.toContain(wg.publicKey);
    expect((await stats())['disabled']).toBeGreaterThanOrEqual(1);
  });

  it('applies store changes to installed peers: a PATCH in place, a disable and a DELETE remove', async () => {
    // Client 5 was registered (again) after the Redis restart above and is connected.
    const c = tb.clients[4]!;
    const key = c.wireguard!.publicKey;
    const path = `/v1/peers/${encodeURIComponent(key)}`;
    expect(await api('PATCH', path, { allowedIPs: [`${c.tunnelAddress}/32`, '10.92.99.0/24'] })).toBe(200);
    const allowed = async () => (await tb.gateway!.dump()).peers.find((p) => p.publicKey === key)?.allowedIPs ?? [];
    expect(await eventually(async () => (await allowed()).includes('10.92.99.0/24'), 2_000)).toBe(true);
    expect(await allowed()).toContain(`${c.tunnelAddress}/32`);
    // Changed in place: the tunnel keeps working.
    expect(await ping(c)).toBe(true);

    expect(await api('PATCH', path, { disabled: true })).toBe(200);
    expect(await eventually(async () => !(await gatewayKeys()).includes(key), 2_000)).toBe(true);

    // A client that connects now, then is deleted through the CLI.
    const first = tb.clients[2]!; // only fixtures ran there so far
    const firstKey = (await first.startWireguard()).publicKey;
    await stack.cli(['peer', 'add', firstKey, '--allowed-ips', `${first.tunnelAddress}/32`]);
    expect(await ping(first)).toBe(true);
    expect(await gatewayKeys()).toContain(firstKey);
    await stack.cli(['peer', 'rm', firstKey]);
    expect(await eventually(async () => !(await gatewayKeys()).includes(firstKey), 2_000)).toBe(true);
    expect((await stats())['removed_revoked'] ?? 0).toBeGreaterThanOrEqual(1);
  });

  it("refuses the gateway's own key and an allowed IP over its interface's address (read over rtnetlink), and its heartbeat carries them", async () => {
    const gw = tb.gateway!;
    const own = tb.gatewayTunnelAddress;
    const created = async (body: object) => (await stack.api('POST', '/v1/peers', body)) as { status: number; body: { error: { code: string; message: string } } };
    const byKey = await created({ publicKey: gw.publicKey, allowedIPs: ['10.92.98.1/32'] });
    expect(byKey.status).toBe(400);
    expect(byKey.body.error.message).toMatch(new RegExp(`^publicKey: \\S+ is the public key of gateway \\S+'s interface ${gw.ifname}: a gateway cannot be its own peer$`));
    const key = formatKey(publicKeyOf(generatePrivateKey()));
    const byAddress = await created({ publicKey: key, allowedIPs: [`${own.split('.').slice(0, 3).join('.')}.0/24`] });
    expect(byAddress.status).toBe(400);
    expect(byAddress.body.error.message).toMatch(new RegExp(`^allowedIPs\\[0\\]: \\S+ contains ${own.replace(/\./g, '\\.')}, an address of gateway \\S+'s interface ${gw.ifname}$`));
    expect(await api('GET', `/v1/peers/${encodeURIComponent(key)}`)).toBe(404);
    const fleet = (await stack.api('GET', '/v1/gateways')).body as { items: Array<{ interface?: string; addresses: string[] }> };
    expect(fleet.items[0]).toMatchObject({ interface: gw.ifname, addresses: expect.arrayContaining([own]) });
  });

  it('never logs a secret it was given: the preshared key, the clients\' and gateway\'s private keys, the API token', async () => {
    const keys = [psk, formatKey(tb.gateway!.privateKey), ...tb.clients.flatMap((c) => (c.wireguard ? [formatKey(c.wireguard.privateKey)] : []))];
    expect(keys.length).toBeGreaterThanOrEqual(4);
    const spellings = [stack.token, ...keys.flatMap((k) => [k, Buffer.from(k, 'base64').toString('hex'), Buffer.from(k, 'base64').toString('base64url')])];
    const lines = [...stack.logs, stack.daemon.stderrTail()];
    expect(lines.length).toBeGreaterThan(20);
    for (const line of lines) for (const secret of spellings) expect(line.includes(secret), `a secret in: ${line}`).toBe(false);
  });
});
