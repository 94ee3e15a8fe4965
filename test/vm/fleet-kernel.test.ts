/**
 * The move on kernel WireGuard, inside the test VM (make test-vm): two
 * gateways with one key, each with its wgjit daemon on the netlink backend
 * and --route-table main, one Redis, BIRD carrying the peer routes to the
 * core (harness/testbed/fleet.ts; test/integration/fleet.test.ts is the
 * host's wireguard-go version, with the timings). A client registered once
 * connects through gateway 1 and then gateway 2 on its first initiation
 * each time; gateway 1 lets go, the store names gateway 2, and the routes
 * follow. Under emulation everything is 10-50× slower, so the bounds here
 * are the harness's scaled waits, not the host's 1 s.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { nsRun, WAIT_SCALE, waitFor } from '../../harness/testbed/exec.js';
import { createFleet, type Fleet, type FleetClient, type FleetGateway } from '../../harness/testbed/fleet.js';
import type { Stack } from '../../harness/testbed/stack.js';

/** A client's first retry comes after 5 s (REKEY_TIMEOUT): a response within the first 5 s of a handshake answered its first initiation. */
const FIRST_TRY_MS = 5_000;

describe('the move on kernel WireGuard', () => {
  let fleet: Fleet;
  let g1: Stack;

  beforeAll(async () => {
    fleet = await createFleet({ prefix: 'vmf', gateways: 2, clients: 1, wgKind: 'kernel', underlayOctet: 121 });
    const runArgs = (id: string) => ['--gateway-id', id, '--route-table', 'main', '--reconcile-interval', '5'];
    // Together: under emulation each daemon takes tens of seconds to start.
    [g1] = await Promise.all([fleet.gateway(1).startDaemon({ runArgs: runArgs('g1') }), fleet.gateway(2).startDaemon({ runArgs: runArgs('g2') })]);
  });
  afterAll(async () => {
    await fleet?.destroy();
  });

  const holder = async (publicKey: string) => ((await g1.api('GET', `/v1/peers/${encodeURIComponent(publicKey)}`)).body as { holder: { gateway: string } | null }).holder?.gateway ?? null;
  const onDevice = async (g: FleetGateway, publicKey: string) => (await g.wg.dump()).peers.some((p) => p.publicKey === publicKey);
  const routed = async (g: FleetGateway, address: string) => {
    const { stdout } = await nsRun(g.ns, 'ip', ['-j', 'route', 'show', 'table', 'main', 'proto', '249', 'dev', g.wg.ifname]);
    return (JSON.parse(stdout) as Array<{ dst: string }>).some((r) => r.dst === address);
  };
  /** Pings through the tunnel; the sniffer says whether the first initiation was the one answered. */
  const connect = async (c: FleetClient) => {
    const sniffer = await c.sniff();
    const pinged = nsRun(c.ns, 'ping', ['-c', '4', '-i', '0.5', '-W', String(10 * WAIT_SCALE), fleet.tunnelAddress]).then(
      () => true,
      () => false,
    );
    expect(await sniffer.waitForResponse(FIRST_TRY_MS * WAIT_SCALE)).toBe(true);
    expect(sniffer.initiationsBeforeResponse).toBe(1);
    expect(await pinged).toBe(true);
  };

  it('the gateways drive kernel WireGuard', () => {
    expect(fleet.wgKind).toBe('kernel');
    expect(g1.logs.some((l) => l.includes('"backend":"netlink"') && l.includes('device opened'))).toBe(true);
  });

  it('a client moves from gateway 1 to gateway 2: answered first time at each, gateway 1 lets go, the store and the routes follow', async () => {
    const c = fleet.clients[0]!;
    const wg = await c.startWireguard();
    expect((await g1.api('POST', '/v1/peers', { publicKey: wg.publicKey, allowedIPs: [`${c.tunnelAddress}/32`] })).status).toBe(201);
    await connect(c);
    await waitFor('g1 to hold the client and route to it', async () => (await holder(wg.publicKey)) === 'g1' && (await routed(fleet.gateway(1), c.tunnelAddress)), 10_000 * WAIT_SCALE, 200);

    await c.moveTo(2);
    await connect(c);
    await waitFor('g2 to hold the client', async () => (await holder(wg.publicKey)) === 'g2', 10_000 * WAIT_SCALE, 200);
    await waitFor('g1 to let go, its route too', async () => !(await onDevice(fleet.gateway(1), wg.publicKey)) && !(await routed(fleet.gateway(1), c.tunnelAddress)), 10_000 * WAIT_SCALE, 200);
    expect(await routed(fleet.gateway(2), c.tunnelAddress)).toBe(true);
    expect(g1.logs.some((l) => l.includes('"reason":"moved"') && l.includes(wg.publicKey))).toBe(true);
    await waitFor("the core's route to point at g2", async () => (await fleet.coreNextHop(c.tunnelAddress)) === 2, 10_000 * WAIT_SCALE, 200);
    expect(await fleet.serverPing(c.tunnelAddress, 5 * WAIT_SCALE)).toBe(true);
  });
});
