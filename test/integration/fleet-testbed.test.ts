/**
 * The fleet testbed (harness/testbed/fleet.ts) without wgjit: a client's
 * peer and its protocol-249 route put on a gateway by hand, as `wgjit run
 * --route-table main` will, and BIRD carrying the route to the core:
 *
 *   flt-c1 ── flt-sw (bridge) ─┬─ flt-g1 ─┬─ flt-core ── flt-srv
 *                              └─ flt-g2 ─┘
 *
 * The core's route to the client follows it from gateway to gateway within
 * ROUTE_CONVERGENCE_MS, the server's ping goes through the gateway that
 * holds the client (its WireGuard counters say so), and a hung or a lost
 * gateway's routes leave the core. A process interrupted with a fleet up
 * leaves nothing behind.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { nsRun, run, waitFor } from '../../harness/testbed/exec.js';
import { listNamespaces } from '../../harness/testbed/netns.js';
import { BGP_HOLD_TIME_S, BGP_KEEPALIVE_TIME_S, CORE_KERNEL_SCAN_TIME_S, createFleet, WGJIT_ROUTE_PROTOCOL, type Fleet, type FleetClient, type FleetGateway } from '../../harness/testbed/fleet.js';
import { socketPath } from '../../harness/testbed/wireguard.js';

const PREFIX = 'flt';
/** The acceptance bound: the core's route points at the new gateway this soon after the move. */
const ROUTE_CONVERGENCE_MS = 3_000;
/**
 * BIRD starts its hold timer up to a quarter short (RFC 4271 section 10
 * jitter), and the core heard the hung gateway last up to a keepalive
 * before the hang: the soonest the session can end by the hold time.
 */
const HOLD_EXPIRY_MIN_MS = (0.75 * BGP_HOLD_TIME_S - BGP_KEEPALIVE_TIME_S) * 1000;
/** The latest: the full hold time, then up to a scan of the core's BIRD before it acts (fleet.ts), and slack for a busy machine. */
const HOLD_EXPIRY_MAX_MS = (BGP_HOLD_TIME_S + CORE_KERNEL_SCAN_TIME_S) * 1000 + 1_000;
/** A lost gateway takes its link to the core along: the core's kernel and BIRD drop its routes at once, long before any hold time. */
const LINK_LOSS_MAX_MS = 1_000;
const ours = (names: string[], prefix = PREFIX) => names.filter((n) => n.startsWith(`${prefix}-`));

/** The BIRDs of a fleet of `prefix` and its redis-server (on `coreAddress`), among `ps -eo args` lines. */
const fleetDaemons = (lines: string[], prefix: string, coreAddress: string) =>
  lines.filter((l) => new RegExp(`^bird .*/wgjit-fleet-[^/]*/${prefix}-`).test(l) || l.startsWith(`redis-server ${coreAddress}:`));

/** How long until the core forwards `address` to `gateway` (null: nowhere); throws after `limitMs`. */
async function timeUntilCoreNextHop(fleet: Fleet, address: string, gateway: number | null, limitMs: number, since = Date.now()): Promise<number> {
  await waitFor(`the core's route to ${address} to point at ${gateway === null ? 'nothing' : `gateway ${gateway}`}`, async () => (await fleet.coreNextHop(address)) === gateway, limitMs, 5);
  return Date.now() - since;
}

/** Bytes gateway `g`'s WireGuard has sent to the peer `publicKey`. */
async function sentTo(g: FleetGateway, publicKey: string): Promise<bigint> {
  const peer = (await g.wg.dump()).peers.find((p) => p.publicKey === publicKey);
  if (peer === undefined) throw new Error(`gateway ${g.index} has no peer ${publicKey}`);
  return peer.txBytes;
}

/** By hand, what wgjit does when it installs a client on `g`: the peer, then its route. */
async function install(g: FleetGateway, client: FleetClient): Promise<void> {
  await g.wg.setPeers([{ publicKey: client.wireguard!.publicKey, allowedIPs: [`${client.tunnelAddress}/32`] }]);
  await g.addPeerRoute(`${client.tunnelAddress}/32`);
}

async function uninstall(g: FleetGateway, client: FleetClient): Promise<void> {
  await g.removePeerRoute(`${client.tunnelAddress}/32`);
  await g.wg.removePeer(client.wireguard!.publicKey);
}

/** The client's ping to the server: its first packet to a gateway starts the handshake there. */
async function clientPingsServer(fleet: Fleet, client: FleetClient): Promise<void> {
  await nsRun(client.ns, 'ping', ['-c', '1', '-W', '5', fleet.serverAddress]);
}

describe('fleet testbed: BIRD carries peer routes from the gateways to the core', () => {
  let fleet: Fleet;
  let client: FleetClient;
  const measured: Record<string, number> = {};

  beforeAll(async () => {
    fleet = await createFleet({ prefix: PREFIX, gateways: 2, clients: 1, underlayOctet: 101 });
    client = fleet.clients[0]!;
    await client.startWireguard();
  });

  afterAll(async () => {
    console.log(`[fleet-testbed] measured (ms): ${JSON.stringify(measured)}`);
    await fleet?.destroy();
  });

  it('brings up every BGP session, seen from both sides, and the core knows no client yet', async () => {
    expect(ours(await listNamespaces()).sort()).toEqual(['flt-c1', 'flt-core', 'flt-g1', 'flt-g2', 'flt-srv', 'flt-sw']);
    for (const g of fleet.gateways) expect(await fleet.bgpState(g.index)).toEqual({ core: 'Established', gateway: 'Established' });
    // One key for the fleet.
    for (const g of fleet.gateways) expect((await g.wg.dump()).publicKey).toBe(fleet.gatewayPublicKey);
    expect(await fleet.coreNextHop(client.tunnelAddress)).toBeNull();
    expect(await fleet.serverPing(client.tunnelAddress, 1)).toBe(false);
  });

  it("learns a client's route from gateway 1, and the server reaches the client through it", async () => {
    const g1 = fleet.gateway(1);
    const cidr = `${client.tunnelAddress}/32`;
    await install(g1, client);
    measured['learn'] = await timeUntilCoreNextHop(fleet, client.tunnelAddress, 1, ROUTE_CONVERGENCE_MS);
    // Only the protocol-249 route is announced: the gateway's own routes are not.
    const learned = await fleet.birdc(fleet.coreNs, 'show route');
    expect(learned).toContain(cidr);
    expect(learned).not.toMatch(/0\.0\.0\.0\/0/);
    const { stdout } = await nsRun(g1.ns, 'ip', ['-j', 'route', 'show', cidr]);
    expect(JSON.parse(stdout)).toEqual([expect.objectContaining({ dev: g1.wg.ifname, protocol: String(WGJIT_ROUTE_PROTOCOL) })]);

    await clientPingsServer(fleet, client);
    const before = await sentTo(g1, client.wireguard!.publicKey);
    expect(await fleet.serverPing(client.tunnelAddress)).toBe(true);
    expect(await sentTo(g1, client.wireguard!.publicKey)).toBeGreaterThan(before);
    expect((await fleet.gateway(2).wg.dump()).peers).toEqual([]);
  });

  it('follows the client to gateway 2', async () => {
    const [g1, g2] = [fleet.gateway(1), fleet.gateway(2)];
    await uninstall(g1, client);
    await install(g2, client);
    const moved = Date.now();
    measured['move'] = await timeUntilCoreNextHop(fleet, client.tunnelAddress, 2, ROUTE_CONVERGENCE_MS, moved);

    await client.moveTo(2);
    await clientPingsServer(fleet, client);
    const peer = (await g2.wg.dump()).peers[0]!;
    expect(peer.endpoint?.startsWith(`${client.address}:`)).toBe(true);
    const before = await sentTo(g2, client.wireguard!.publicKey);
    expect(await fleet.serverPing(client.tunnelAddress)).toBe(true);
    expect(await sentTo(g2, client.wireguard!.publicKey)).toBeGreaterThan(before);
    expect((await g1.wg.dump()).peers).toEqual([]);
  });

  it("drops a hung gateway's routes once the BGP hold time runs out", async () => {
    const hung = Date.now();
    await fleet.hangGateway(2);
    measured['hungWithdrawn'] = await timeUntilCoreNextHop(fleet, client.tunnelAddress, null, HOLD_EXPIRY_MAX_MS, hung);
    expect(measured['hungWithdrawn']).toBeGreaterThanOrEqual(HOLD_EXPIRY_MIN_MS);
    expect(await fleet.bgpState(2)).toEqual({ core: expect.not.stringMatching(/^Established$/), gateway: null });
    expect(await fleet.bgpState(1)).toEqual({ core: 'Established', gateway: 'Established' });
    await fleet.killGateway(2);
  });

  it("drops a lost gateway's routes at once: its link to the core goes with it", async () => {
    const g1 = fleet.gateway(1);
    await install(g1, client);
    await timeUntilCoreNextHop(fleet, client.tunnelAddress, 1, ROUTE_CONVERGENCE_MS);
    await client.moveTo(1);
    await clientPingsServer(fleet, client);

    const lost = Date.now();
    await fleet.killGateway(1);
    measured['lostWithdrawn'] = await timeUntilCoreNextHop(fleet, client.tunnelAddress, null, LINK_LOSS_MAX_MS, lost);
    await waitFor('the core to drop the session', async () => (await fleet.bgpState(1)).core !== 'Established', LINK_LOSS_MAX_MS, 5);
    measured['lostSessionDown'] = Date.now() - lost;
    expect(fleet.gateway(1).alive).toBe(false);
    expect(ours(await listNamespaces())).not.toContain('flt-g1');
    expect(await fleet.serverPing(client.tunnelAddress, 1)).toBe(false);
    await fleet.killGateway(1); // a second time: nothing left to do
  });

  it('destroy removes every namespace, BIRD, redis-server and socket, twice without error', async () => {
    const sockets = [...fleet.gateways.map((g) => g.wg.socketPath), socketPath(client.wgIfname)];
    await fleet.destroy();
    await fleet.destroy();
    expect(ours(await listNamespaces())).toEqual([]);
    const { stdout } = await run('ps', ['-eo', 'args']);
    expect(fleetDaemons(stdout.split('\n'), PREFIX, fleet.coreAddress)).toEqual([]);
    for (const s of sockets) expect(existsSync(s)).toBe(false);
  });
});

describe('fleet testbed with a numbered peer table', () => {
  let fleet: Fleet;

  beforeAll(async () => {
    fleet = await createFleet({ prefix: 'flu', gateways: 1, clients: 1, routeTable: 1000, underlayOctet: 105 });
  });

  afterAll(async () => {
    await fleet?.destroy();
  });

  it("learns the route from that table, and the gateway forwards by it", async () => {
    const client = fleet.clients[0]!;
    await client.startWireguard();
    const g = fleet.gateway(1);
    await install(g, client);
    const { stdout } = await nsRun(g.ns, 'ip', ['-j', 'route', 'show', 'table', '1000']);
    expect(JSON.parse(stdout)).toEqual([expect.objectContaining({ dst: client.tunnelAddress, dev: g.wg.ifname })]);
    expect((await nsRun(g.ns, 'ip', ['route', 'show', `${client.tunnelAddress}/32`])).stdout).toBe('');
    await timeUntilCoreNextHop(fleet, client.tunnelAddress, 1, ROUTE_CONVERGENCE_MS);
    await clientPingsServer(fleet, client);
    expect(await fleet.serverPing(client.tunnelAddress)).toBe(true);
  });
});

describe('fleet testbed cleanup on SIGINT', () => {
  it('a process interrupted with a fleet up leaves no namespace, BIRD, redis-server or wireguard-go behind', async () => {
    const prefix = 'fls';
    const dir = mkdtempSync(join(tmpdir(), 'fls-sigint-'));
    try {
      const script = join(dir, 'run.mts');
      writeFileSync(
        script,
        `import { createFleet } from ${JSON.stringify(resolve('harness/testbed/fleet.ts'))};\n` +
          `const fleet = await createFleet({ prefix: '${prefix}', gateways: 2, clients: 1, underlayOctet: 109 });\n` +
          `await fleet.clients[0].startWireguard();\n` +
          `console.log('READY', fleet.coreAddress);\n` +
          `setInterval(() => undefined, 1000);\n`,
      );
      const child = spawn(resolve('node_modules/.bin/tsx'), [script], { stdio: ['ignore', 'pipe', 'pipe'] });
      let stderr = '';
      child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
      const coreAddress = await new Promise<string>((ok, fail) => {
        child.stdout.on('data', (c: Buffer) => {
          const m = /READY (\S+)/.exec(c.toString());
          if (m) ok(m[1]!);
        });
        child.on('exit', () => fail(new Error(`child exited early: ${stderr}`)));
      });
      const ps = async () => (await run('ps', ['-eo', 'args'])).stdout.split('\n');
      expect(ours(await listNamespaces(), prefix).length).toBe(6);
      // Three BIRDs (two gateways, the core) and the Redis.
      expect(fleetDaemons(await ps(), prefix, coreAddress).length).toBe(4);
      // tsx forwards SIGINT to the node process that runs the script.
      child.kill('SIGINT');
      await new Promise((ok) => child.on('exit', ok));
      expect(ours(await listNamespaces(), prefix)).toEqual([]);
      expect(fleetDaemons(await ps(), prefix, coreAddress)).toEqual([]);
      expect((await ps()).filter((l) => /^wireguard-go -f fls/.test(l))).toEqual([]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
      for (const ns of ['sw', 'core', 'srv', 'g1', 'g2', 'c1']) await run('ip', ['netns', 'delete', `${prefix}-${ns}`]).catch(() => undefined);
    }
  });
});
