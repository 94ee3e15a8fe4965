/**
 * Cold connect on the kernel's WireGuard, inside the test VM (make test-vm):
 * XDP on the gateway's veth, the daemon on the netlink backend, a client
 * running kernel WireGuard in its own namespace. The gateway must answer the
 * client's first initiation, before its retry, and traffic must then flow.
 *
 *   vmc-c1 [vmcv1] ── vmc-sw (bridge) ── [vmcup] vmc-gw: kernel WireGuard vmcgw0 (no peers)
 *                                                redis-server, wgjit run (XDP on vmcup)
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { nsRun } from '../../harness/testbed/exec.js';
import { startStack, type Stack } from '../../harness/testbed/stack.js';
import { createTestbed, type Testbed } from '../../harness/testbed/topology.js';

/** Longer than a client's first retry (REKEY_TIMEOUT 5 s + up to 333 ms). */
const RETRY_WINDOW_MS = 6_000;
const SILENCE_MS = 3_000;

describe('cold connect on kernel WireGuard', () => {
  let tb: Testbed;
  let stack: Stack;

  beforeAll(async () => {
    tb = await createTestbed({ prefix: 'vmc', clients: 3, gatewayWg: true, wgKind: 'kernel', underlayOctet: 71, tunnelOctet: 72 });
    stack = await startStack(tb);
  });
  afterAll(async () => {
    await stack?.stop();
    await tb?.destroy();
  });

  it('the daemon drives the kernel device over netlink', () => {
    expect(tb.wgKind).toBe('kernel');
    expect(stack.logs.some((l) => l.includes('"backend":"netlink"') && l.includes('device opened'))).toBe(true);
  });

  it("answers a registered client's first initiation, and traffic flows", async () => {
    const c = tb.clients[0]!;
    const wg = await c.startWireguard();
    await stack.cli(['peer', 'add', wg.publicKey, '--allowed-ips', `${c.tunnelAddress}/32`]);
    const sniffer = await c.sniff();
    const pinged = nsRun(c.ns, 'ping', ['-c', '1', '-W', '5', tb.gatewayTunnelAddress]).then(
      () => true,
      () => false,
    );
    expect(await sniffer.waitForResponse(RETRY_WINDOW_MS)).toBe(true);
    expect(sniffer.initiationsBeforeResponse).toBe(1);
    expect(sniffer.firstResponseAt! - sniffer.firstInitiationAt!).toBeLessThan(5_000);
    expect(await pinged).toBe(true);
    expect((await tb.gateway!.dump()).peers.map((p) => p.publicKey)).toContain(wg.publicKey);
  });

  it('never installs or answers an unregistered key', async () => {
    const c = tb.clients[1]!;
    const wg = await c.startWireguard();
    const sniffer = await c.sniff();
    void nsRun(c.ns, 'ping', ['-c', '1', '-W', '2', tb.gatewayTunnelAddress]).catch(() => undefined);
    expect(await sniffer.waitForResponse(SILENCE_MS)).toBe(false);
    expect(sniffer.initiations).toBeGreaterThanOrEqual(1);
    expect((await tb.gateway!.dump()).peers.map((p) => p.publicKey)).not.toContain(wg.publicKey);
  });

  it('a device deleted under the daemon: each admission fails, counted and logged once, and the daemon lives on', async () => {
    await nsRun(tb.gatewayNs, 'ip', ['link', 'del', tb.gateway!.ifname]);
    const c = tb.clients[2]!;
    const wg = await c.startWireguard();
    await stack.cli(['peer', 'add', wg.publicKey, '--allowed-ips', `${c.tunnelAddress}/32`]);
    const sniffer = await c.sniff();
    void nsRun(c.ns, 'ping', ['-c', '1', '-W', '2', tb.gatewayTunnelAddress]).catch(() => undefined);
    const failures = () => stack.logs.filter((l) => l.includes('install into the device failed') && l.includes(wg.publicKey));
    for (let i = 0; i < 300 && failures().length === 0; i++) await new Promise((r) => setTimeout(r, 100));
    expect(failures()[0]).toMatch(/no such device/);
    const metrics = (await nsRun(tb.gatewayNs, 'node', ['--input-type=module', '-e', `console.log(await (await fetch(${JSON.stringify(`${stack.apiUrl}/metrics`)})).text())`])).stdout;
    const counted = Number(/^wgjit_device_errors_total\{operation="install",code="no_device"\} (\d+)$/m.exec(metrics)?.[1]);
    expect(counted).toBeGreaterThanOrEqual(1);
    // One failure per initiation the client sent: nothing retried behind its back.
    expect(counted).toBeLessThanOrEqual(sniffer.initiations);
    expect(failures().length).toBeLessThanOrEqual(sniffer.initiations);
    expect(stack.daemon.isRunning()).toBe(true);
  });
});
