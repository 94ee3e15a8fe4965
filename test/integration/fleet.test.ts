/**
 * A fleet of wgjit gateways end to end, every part real: two gateways
 * (wireguard-go with one private key, XDP on each uplink, a wgjit daemon
 * each), one redis-server in the core, BIRD carrying the gateways' peer
 * routes to the core, a server behind it (harness/testbed/fleet.ts):
 *
 *   flx-c1..c4 ── flx-sw ─┬─ flx-g1 (wgjit --gateway-id g1) ─┬─ flx-core (redis, BIRD) ── flx-srv
 *                         └─ flx-g2 (wgjit --gateway-id g2) ─┘
 *
 * A client registered once connects through either gateway on its first
 * initiation; when it moves, the gateway it left lets go within 1 s of the
 * confirmation at the new one, the store names the new holder, and the
 * core's route follows. A copy of an initiation raced to the other gateway
 * moves nothing and locks nobody out. A gateway lost leaves its clients to
 * the others.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatKey, publicKeyOf } from '../../src/handshake/keys.js';
import { generatePrivateKey } from '../../harness/noise/keys.js';
import { nsRun, spawnIn, waitFor } from '../../harness/testbed/exec.js';
import { createFleet, type Fleet, type FleetClient, type FleetGateway } from '../../harness/testbed/fleet.js';
import type { Stack } from '../../harness/testbed/stack.js';
import { CLI } from '../../harness/testbed/stack.js';

const TSX = resolve('node_modules/.bin/tsx');
const RACE_CLIENT = resolve('test/integration/fixtures/race-client.ts');
const SEND = resolve('test/integration/fixtures/send-initiation.ts');
/** Longer than a client's first retry (REKEY_TIMEOUT 5 s + up to 333 ms): a response inside it answered the first initiation. */
const RETRY_WINDOW_MS = 6_000;
/** The acceptance bound: the old gateway lets go this soon after the client confirmed at the new one. */
const MOVE_MS = 1_000;
/** How often a device is polled while a move is timed. */
const POLL_MS = 20;

interface Holder {
  gateway: string;
  since: string;
}

describe('a fleet of two gateways', () => {
  let fleet: Fleet;
  let g1: Stack;
  let g2: Stack;

  beforeAll(async () => {
    fleet = await createFleet({ prefix: 'flx', gateways: 2, clients: 4, underlayOctet: 111 });
    // The per-source limit would hide the test's own bursts; the reconciliation comes every 5 s so that a lost event shows quickly.
    const runArgs = (id: string) => ['--gateway-id', id, '--route-table', 'main', '--source-rate', '0', '--reconcile-interval', '5'];
    [g1, g2] = await Promise.all([fleet.gateway(1).startDaemon({ runArgs: runArgs('g1') }), fleet.gateway(2).startDaemon({ runArgs: runArgs('g2') })]);
  }, 90_000);

  afterAll(async () => {
    await fleet?.destroy();
  });

  const holderOf = async (publicKey: string): Promise<Holder | null> => {
    const res = await g1.api('GET', `/v1/peers/${encodeURIComponent(publicKey)}`);
    expect(res.status).toBe(200);
    return (res.body as { holder: Holder | null }).holder;
  };
  /** Whether gateway `g` routes `address` through its WireGuard with protocol 249 (what --route-table main adds). */
  const routed = async (g: FleetGateway, address: string) => {
    const { stdout } = await nsRun(g.ns, 'ip', ['-j', 'route', 'show', 'table', 'main', 'proto', '249', 'dev', g.wg.ifname]);
    return (JSON.parse(stdout) as Array<{ dst: string }>).some((r) => r.dst === address);
  };
  const onDevice = async (g: FleetGateway, publicKey: string) => (await g.wg.dump()).peers.find((p) => p.publicKey === publicKey) ?? null;
  const register = async (publicKey: string, tunnelAddress: string) => {
    const res = await g1.api('POST', '/v1/peers', { publicKey, allowedIPs: [`${tunnelAddress}/32`] });
    expect(res.status).toBe(201);
  };
  /**
   * The client pings the gateways' tunnel address: its first packet starts
   * a handshake with the gateway its endpoint names. Four echoes: the
   * gateway routes to the client once the session is confirmed (the first
   * echo does that), so the first reply may find no route yet.
   */
  const ping = (c: FleetClient) =>
    nsRun(c.ns, 'ping', ['-c', '4', '-i', '0.25', '-W', '5', fleet.tunnelAddress]).then(
      () => true,
      () => false,
    );
  /** Connects the client through its current gateway and checks that its first initiation was answered. */
  const connectFirstTime = async (c: FleetClient) => {
    const sniffer = await c.sniff();
    const pinged = ping(c);
    expect(await sniffer.waitForResponse(RETRY_WINDOW_MS)).toBe(true);
    expect(sniffer.initiationsBeforeResponse).toBe(1);
    expect(await pinged).toBe(true);
  };

  it('lists both gateways as alive, each with its count of installed peers', async () => {
    const res = await g2.api('GET', '/v1/gateways');
    expect(res.status).toBe(200);
    const items = (res.body as { items: Array<{ id: string; alive: boolean; installedPeers: number; publicKey: string }> }).items;
    expect(items.map((g) => [g.id, g.alive])).toEqual([
      ['g1', true],
      ['g2', true],
    ]);
    expect(items.every((g) => g.publicKey === fleet.gatewayPublicKey)).toBe(true);
  });

  it('admits a client registered once through either gateway on its first initiation, and the store names where it is', async () => {
    const c = fleet.clients[0]!;
    const wg = await c.startWireguard();
    await register(wg.publicKey, c.tunnelAddress);
    await connectFirstTime(c);
    await waitFor('g1 to hold the client', async () => (await holderOf(wg.publicKey))?.gateway === 'g1', 2_000, 50);

    await c.moveTo(2);
    await connectFirstTime(c);
    await waitFor('g2 to hold the client', async () => (await holderOf(wg.publicKey))?.gateway === 'g2', 2_000, 50);
    await waitFor('g1 to let it go', async () => (await onDevice(fleet.gateway(1), wg.publicKey)) === null, 2_000, 50);
    expect(g1.logs.some((l) => l.includes('"reason":"moved"') && l.includes(wg.publicKey) && l.includes('"holder":"g2"'))).toBe(true);
    const stats = JSON.parse((await g1.cli(['status', '--json'])).stdout).stats as Record<string, number>;
    expect(stats['removed_moved']).toBeGreaterThanOrEqual(1);
    // The peer show names the holder as the API does.
    expect((await g2.cli(['peer', 'show', wg.publicKey])).stdout).toMatch(/held by: g2 \(taken .*\)/);
  });

  it('lets go at the old gateway within 1 s of the client confirming its session at the new one', async () => {
    const c = fleet.clients[1]!;
    const wg = await c.startWireguard();
    await register(wg.publicKey, c.tunnelAddress);
    await connectFirstTime(c);
    await waitFor('g1 to hold the client', async () => (await holderOf(wg.publicKey))?.gateway === 'g1', 2_000, 50);
    await waitFor("the core's route to point at g1", async () => (await fleet.coreNextHop(c.tunnelAddress)) === 1, 3_000, POLL_MS);
    expect(await fleet.serverPing(c.tunnelAddress, 3)).toBe(true);

    await c.moveTo(2);
    void ping(c);
    // The confirmation: g2's device reports the client's handshake. From then on, g1's device must lose the peer within MOVE_MS.
    let confirmedAt = 0;
    await waitFor('the client to confirm at g2', async () => {
      const peer = await onDevice(fleet.gateway(2), wg.publicKey);
      if (peer === null || peer.latestHandshake === 0) return false;
      confirmedAt = Date.now();
      return true;
    }, RETRY_WINDOW_MS, POLL_MS);
    await waitFor('g1 to remove the peer and its route, and g2 to route to the client', async () => (await onDevice(fleet.gateway(1), wg.publicKey)) === null && !(await routed(fleet.gateway(1), c.tunnelAddress)) && (await routed(fleet.gateway(2), c.tunnelAddress)), 3_000, POLL_MS);
    const lag = Date.now() - confirmedAt;
    expect(lag).toBeLessThanOrEqual(MOVE_MS);
    expect((await holderOf(wg.publicKey))?.gateway).toBe('g2');
    // The core learns it from BIRD within 3 s, and the server's ping reaches the client through g2.
    await waitFor("the core's route to point at g2", async () => (await fleet.coreNextHop(c.tunnelAddress)) === 2, 3_000, POLL_MS);
    const sent = async (g: FleetGateway) => (await g.wg.dump()).peers.find((p) => p.publicKey === wg.publicKey)?.txBytes ?? 0n;
    const before = await sent(fleet.gateway(2));
    expect(await fleet.serverPing(c.tunnelAddress, 3)).toBe(true);
    expect(await sent(fleet.gateway(2))).toBeGreaterThan(before);
  });

  describe('an initiation copied to the other gateway', () => {
    const dir = mkdtempSync(join(tmpdir(), 'wgjit-race-'));
    afterAll(() => rmSync(dir, { recursive: true, force: true }));

    /** Sends `message` (a copy of an initiation) to gateway `to` from client 4's namespace: an on-path observer. */
    const copyTo = (to: number, privateKey: string, message: string) =>
      nsRun(fleet.clients[3]!.ns, TSX, [SEND, JSON.stringify({ gateway: fleet.gateway(to).address, port: fleet.listenPort, gatewayPublicKey: fleet.gatewayPublicKey, privateKey, replay: message, waitMs: 300 })]);

    /**
     * A session of a scripted client (fixtures/race-client.ts) in client
     * 3's namespace with gateway `at`, its initiation copied to gateway
     * `copy.to` before or after the original (`copy.first`). Resolves with
     * what the client saw and its initiation's bytes.
     */
    async function session(privateKey: string, at: number, copy?: { to: number; first: boolean }): Promise<{ completed: boolean; message: string }> {
      const goFile = join(dir, `go-${Date.now()}`);
      const args = { gateway: fleet.gateway(at).address, port: fleet.listenPort, gatewayPublicKey: fleet.gatewayPublicKey, privateKey, goFile, waitMs: 2_500 };
      const lines: string[] = [];
      let partial = '';
      const client = spawnIn(fleet.clients[2]!.ns, TSX, [RACE_CLIENT, JSON.stringify(args)], {
        onStdout: (chunk) => {
          const all = (partial + chunk).split('\n');
          partial = all.pop()!;
          lines.push(...all);
        },
      });
      await waitFor('the scripted client to make its initiation', () => lines.length > 0 || !client.isRunning(), 20_000, 20);
      const { message } = JSON.parse(lines[0]!) as { message: string };
      if (copy?.first === true) await copyTo(copy.to, privateKey, message);
      writeFileSync(goFile, '');
      if (copy?.first === false) {
        await waitFor('the original to be answered', () => lines.length > 1 || !client.isRunning(), 20_000, 20);
        await copyTo(copy.to, privateKey, message);
      }
      await client.exited;
      return { ...(JSON.parse(lines[1]!) as { completed: boolean }), message };
    }

    it('before the original: the client is still admitted where it is, and the copy moves nothing', async () => {
      const privateKey = generatePrivateKey();
      const publicKey = formatKey(publicKeyOf(privateKey));
      await register(publicKey, fleet.clients[2]!.tunnelAddress);
      const { completed } = await session(formatKey(privateKey), 1, { to: 2, first: true });
      // g1 answered the genuine client, though g2 had already admitted the same initiation.
      expect(completed).toBe(true);
      expect(g1.logs.some((l) => l.includes(publicKey) && l.includes('"decision":"replayed"'))).toBe(false);
      await waitFor('g1 to hold the client', async () => (await holderOf(publicKey))?.gateway === 'g1', 3_000, 50);
      // g2's provisional install, which no handshake confirmed, goes (moved: g1 took the peer with that very initiation).
      await waitFor("g2's provisional install to go", async () => (await onDevice(fleet.gateway(2), publicKey)) === null, 10_000, 100);
      expect(await onDevice(fleet.gateway(1), publicKey)).not.toBeNull();
      expect((await holderOf(publicKey))?.gateway).toBe('g1');
    });

    it('after the original: the same', async () => {
      const privateKey = generatePrivateKey();
      const publicKey = formatKey(publicKeyOf(privateKey));
      await register(publicKey, fleet.clients[2]!.tunnelAddress);
      const { completed } = await session(formatKey(privateKey), 1, { to: 2, first: false });
      expect(completed).toBe(true);
      await waitFor('g1 to hold the client', async () => (await holderOf(publicKey))?.gateway === 'g1', 3_000, 50);
      await waitFor('no peer on g2', async () => (await onDevice(fleet.gateway(2), publicKey)) === null, 10_000, 100);
      expect(await onDevice(fleet.gateway(1), publicKey)).not.toBeNull();
      expect((await holderOf(publicKey))?.gateway).toBe('g1');
    });
  });

  it('never makes a gateway the holder on an initiation captured at the other, after the client moved back there', async () => {
    const privateKey = generatePrivateKey();
    const key = formatKey(privateKey);
    const publicKey = formatKey(publicKeyOf(privateKey));
    await register(publicKey, fleet.clients[2]!.tunnelAddress);
    const dir = mkdtempSync(join(tmpdir(), 'wgjit-back-'));
    try {
      const at = async (g: number) => {
        const goFile = join(dir, `go-${g}-${Date.now()}`);
        writeFileSync(goFile, '');
        const { stdout } = await nsRun(fleet.clients[2]!.ns, TSX, [RACE_CLIENT, JSON.stringify({ gateway: fleet.gateway(g).address, port: fleet.listenPort, gatewayPublicKey: fleet.gatewayPublicKey, privateKey: key, goFile, waitMs: 1_500 })]);
        const [first, last] = stdout.trim().split('\n').map((l) => JSON.parse(l) as { message?: string; completed?: boolean });
        expect(last!.completed).toBe(true);
        await waitFor(`g${g} to hold the client`, async () => (await holderOf(publicKey))?.gateway === `g${g}`, 3_000, 50);
        return first!.message!;
      };
      const firstAtG1 = await at(1);
      await at(2);
      const backAtG1 = await at(1);
      // What an observer captured at g1, sent to g2: the latest initiation (within the twin window) and the first.
      await nsRun(fleet.clients[3]!.ns, TSX, [SEND, JSON.stringify({ gateway: fleet.gateway(2).address, port: fleet.listenPort, gatewayPublicKey: fleet.gatewayPublicKey, privateKey: key, replay: backAtG1, waitMs: 300 })]);
      await nsRun(fleet.clients[3]!.ns, TSX, [SEND, JSON.stringify({ gateway: fleet.gateway(2).address, port: fleet.listenPort, gatewayPublicKey: fleet.gatewayPublicKey, privateKey: key, replay: firstAtG1, waitMs: 300 })]);
      await new Promise((r) => setTimeout(r, 2_000));
      expect((await holderOf(publicKey))?.gateway).toBe('g1');
      await waitFor('no peer on g2', async () => (await onDevice(fleet.gateway(2), publicKey)) === null, 10_000, 100);
      expect((await holderOf(publicKey))?.gateway).toBe('g1');
      expect(g2.logs.some((l) => l.includes(publicKey) && l.includes('"decision":"replayed"'))).toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("removes routes of protocol 249 through its interface that match no confirmed peer, and leaves other routes alone", async () => {
    const g = fleet.gateway(2);
    const stray = fleet.tunnelAddress.replace(/\.\d+$/, '.250');
    const other = fleet.tunnelAddress.replace(/\.\d+$/, '.251');
    await g.addPeerRoute(`${stray}/32`); // left by an earlier run, or by hand
    await nsRun(g.ns, 'ip', ['route', 'add', `${other}/32`, 'dev', g.wg.ifname, 'proto', 'static']);
    expect(await routed(g, stray)).toBe(true);
    // The next reconciliation (every 5 s here) takes it away.
    await waitFor('the stray route to go', async () => !(await routed(g, stray)), 8_000, 100);
    const { stdout } = await nsRun(g.ns, 'ip', ['-j', 'route', 'show', `${other}/32`]);
    expect(JSON.parse(stdout)).toHaveLength(1);
    await nsRun(g.ns, 'ip', ['route', 'del', `${other}/32`]);
  });

  it('refuses a second gateway with an id that is alive elsewhere, before it touches its device', async () => {
    const g = fleet.gateway(2);
    const before = (await g.wg.dump()).peers.length;
    const tokenDir = mkdtempSync(join(tmpdir(), 'wgjit-dup-'));
    writeFileSync(join(tokenDir, 'token'), 'a-token-for-the-second-gateway\n');
    let stderr = '';
    const second = spawnIn(g.ns, CLI, ['run', '--interface', g.wg.ifname, '--capture-dev', g.uplink, '--redis', fleet.redisUrl, '--gateway-id', 'g1', '--api-listen', '127.0.0.1:9199', '--api-token-file', join(tokenDir, 'token')], {
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin' },
      onStderr: (chunk) => (stderr += chunk),
    });
    const { code } = await Promise.race([second.exited, new Promise<{ code: null }>((r) => setTimeout(() => r({ code: null }), 20_000))]);
    await second.kill();
    rmSync(tokenDir, { recursive: true, force: true });
    expect(code).toBe(2);
    expect(stderr).toMatch(/^wgjit: --gateway-id g1 is in use by a gateway alive elsewhere \(host .*, pid \d+, last heartbeat [\d.]+ s ago\): stop that one, or give this gateway another --gateway-id\n$/);
    expect((await g.wg.dump()).peers.length).toBe(before);
    // g1 goes on beating.
    const items = ((await g2.api('GET', '/v1/gateways')).body as { items: Array<{ id: string; alive: boolean }> }).items;
    expect(items.find((i) => i.id === 'g1')?.alive).toBe(true);
  });

  it('a gateway lost: its heartbeat lapses within 3 periods, and its clients are admitted and held by the other', async () => {
    const c = fleet.clients[0]!; // held by g2 since the first test
    const wg = c.wireguard!;
    await c.moveTo(1);
    await connectFirstTime(c);
    await waitFor('g1 to hold the client', async () => (await holderOf(wg.publicKey))?.gateway === 'g1', 2_000, 50);

    const lostAt = Date.now();
    await fleet.killGateway(1);
    await waitFor('g1 to show as gone', async () => {
      const items = ((await g2.api('GET', '/v1/gateways')).body as { items: Array<{ id: string; alive: boolean }> }).items;
      return items.find((i) => i.id === 'g1')?.alive === false;
    }, 5_000, 100);
    expect(Date.now() - lostAt).toBeLessThanOrEqual(3_000 + 500);
    // A dead holder holds nothing.
    const res = await g2.api('GET', `/v1/peers/${encodeURIComponent(wg.publicKey)}`);
    expect((res.body as { holder: Holder | null }).holder).toBeNull();

    await c.moveTo(2);
    await connectFirstTime(c);
    await waitFor('g2 to hold the client', async () => {
      const r = await g2.api('GET', `/v1/peers/${encodeURIComponent(wg.publicKey)}`);
      return (r.body as { holder: Holder | null }).holder?.gateway === 'g2';
    }, 2_000, 50);
  });
});
