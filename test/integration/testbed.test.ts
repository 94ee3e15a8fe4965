/**
 * The namespace testbed, end to end on real wireguard-go:
 *
 *   ua-c1 [uav1] ─┐
 *                 ├─ ua-sw [uabr] ── [uaup] ua-gw  wireguard-go uagw0 (peer: client 1 only)
 *   ua-c2 [uav2] ─┘
 */
import { spawn } from 'node:child_process';
import { existsSync, writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run, nsRun } from '../../harness/testbed/exec.js';
import { listNamespaces } from '../../harness/testbed/netns.js';
import { createTestbed, type Testbed } from '../../harness/testbed/topology.js';
import { socketPath } from '../../harness/testbed/wireguard.js';

const PREFIX = 'ua';
const ours = (names: string[]) => names.filter((n) => n.startsWith(`${PREFIX}-`));

describe('testbed with gateway wireguard-go', () => {
  let tb: Testbed;

  beforeAll(async () => {
    tb = await createTestbed({ prefix: PREFIX, clients: 2, gatewayWg: true, ipv6: true });
  });

  afterAll(async () => {
    await tb?.destroy();
  });

  it('builds the namespaces and the gateway interface', async () => {
    expect(ours(await listNamespaces()).sort()).toEqual(['ua-c1', 'ua-c2', 'ua-gw', 'ua-sw']);
    const dump = await tb.gateway!.dump();
    expect(dump.publicKey).toBe(tb.gateway!.publicKey);
    expect(dump.listenPort).toBe(tb.listenPort);
    expect(dump.peers).toEqual([]);
    // Underlay reachability, both families.
    await nsRun(tb.clients[0]!.ns, 'ping', ['-c', '1', '-W', '2', tb.gatewayAddress]);
    await nsRun(tb.clients[1]!.ns, 'ping', ['-6', '-c', '1', '-W', '2', tb.gatewayAddress6!]);
  });

  it("answers an installed client's first initiation and ignores an unknown one", async () => {
    const [c1, c2] = tb.clients as [Testbed['clients'][0], Testbed['clients'][0]];
    const w1 = await c1.startWireguard();
    const w2 = await c2.startWireguard();
    expect(w1.publicKey).not.toBe(w2.publicKey);
    await tb.gateway!.setPeers([{ publicKey: w1.publicKey, allowedIPs: [`${c1.tunnelAddress}/32`] }]);

    const s1 = await c1.sniff();
    await nsRun(c1.ns, 'ping', ['-c', '1', '-W', '5', tb.gatewayTunnelAddress]);
    expect(await s1.waitForResponse(5_000)).toBe(true);
    expect(s1.initiationsBeforeResponse).toBe(1);
    expect(s1.firstInitiationAt).not.toBeNull();
    expect(s1.firstResponseAt!).toBeGreaterThan(s1.firstInitiationAt!);
    const gwPeer = (await tb.gateway!.dump()).peers[0]!;
    expect(gwPeer.publicKey).toBe(w1.publicKey);
    expect(gwPeer.endpoint).toBe(`${c1.address}:${s1.packets[0]!.srcPort}`);

    const s2 = await c2.sniff();
    await expect(nsRun(c2.ns, 'ping', ['-c', '1', '-W', '2', tb.gatewayTunnelAddress])).rejects.toThrow(/ping/);
    expect(await s2.waitForInitiation(1_000)).toBe(true);
    expect(await s2.waitForResponse(500)).toBe(false);
    expect(s2.responses).toBe(0);
    expect(s2.initiationsBeforeResponse).toBeNull();
  });

  it('adds a client later that reaches the gateway over an IPv6 underlay', async () => {
    const c3 = await tb.addClient();
    expect(c3.ns).toBe('ua-c3');
    const w3 = await c3.startWireguard({ useIpv6: true });
    await tb.gateway!.setPeers([{ publicKey: w3.publicKey, allowedIPs: [`${c3.tunnelAddress}/32`] }]);
    const s3 = await c3.sniff();
    await nsRun(c3.ns, 'ping', ['-c', '1', '-W', '5', tb.gatewayTunnelAddress]);
    expect(await s3.waitForResponse(5_000)).toBe(true);
    expect(s3.initiationsBeforeResponse).toBe(1);
    const peer = (await tb.gateway!.dump()).peers.find((p) => p.publicKey === w3.publicKey)!;
    expect(peer.endpoint).toBe(`[${c3.address6}]:${s3.packets[0]!.srcPort}`);
  });

  it('destroy removes every namespace and socket, twice without error', async () => {
    const sockets = [tb.gateway!.socketPath, ...tb.clients.map((c) => socketPath(c.wgIfname))];
    await tb.destroy();
    await tb.destroy();
    expect(ours(await listNamespaces())).toEqual([]);
    for (const s of sockets) expect(existsSync(s)).toBe(false);
  });
});

describe('testbed cleanup on SIGINT', () => {
  it('a process interrupted mid-run leaves no namespace and no wireguard-go behind', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ua-sigint-'));
    try {
      const script = join(dir, 'run.mts');
      const topology = resolve('harness/testbed/topology.ts');
      writeFileSync(
        script,
        `import { createTestbed } from ${JSON.stringify(topology)};\n` +
          `const tb = await createTestbed({ prefix: 'uas', clients: 1, gatewayWg: true });\n` +
          `await tb.clients[0].startWireguard();\n` +
          `console.log('READY');\n` +
          `setInterval(() => undefined, 1000);\n`,
      );
      const child = spawn(resolve('node_modules/.bin/tsx'), [script], { stdio: ['ignore', 'pipe', 'pipe'] });
      let stderr = '';
      child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
      await new Promise<void>((ok, fail) => {
        child.stdout.on('data', (c: Buffer) => c.toString().includes('READY') && ok());
        child.on('exit', () => fail(new Error(`child exited early: ${stderr}`)));
      });
      expect((await listNamespaces()).filter((n) => n.startsWith('uas-')).length).toBe(3);
      // tsx forwards SIGINT to the node process that runs the script.
      child.kill('SIGINT');
      await new Promise((ok) => child.on('exit', ok));
      expect((await listNamespaces()).filter((n) => n.startsWith('uas-'))).toEqual([]);
      const { stdout } = await run('ps', ['-eo', 'args']);
      expect(stdout.split('\n').filter((l) => /wireguard-go -f uas(gw0|c1)$/.test(l))).toEqual([]);
      expect(existsSync(socketPath('uasgw0')) || existsSync(socketPath('uasc1'))).toBe(false);
    } finally {
      rmSync(dir, { recursive: true, force: true });
      for (const ns of ['uas-sw', 'uas-gw', 'uas-c1']) await run('ip', ['netns', 'delete', ns]).catch(() => undefined);
    }
  });
});
