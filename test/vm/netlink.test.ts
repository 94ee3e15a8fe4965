/**
 * What only the netlink backend has to prove, on the kernel's WireGuard in
 * the test VM (make test-vm): a 100,000-peer dump, interrupted dumps,
 * backend selection from sysfs, and failures that must stay failures
 * (permission dropped mid-run, a missing interface).
 */
import { randomBytes } from 'node:crypto';
import { resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PublicKey } from '../../src/handshake/keys.js';
import type { PeerConfig } from '../../src/install/device.js';
import { isKernelWireGuard, NetlinkDevice } from '../../src/install/netlink.js';
import { openDevice } from '../../src/install/select.js';
import { cidrTexts } from '../../src/net/cidr.js';
import { cidr } from '../../harness/cidr.js';
import { run } from '../../harness/testbed/exec.js';

const DUMP_PEERS = 100_000;
/** Enough that a dump spans dozens of parts (and, under emulation, seconds). */
const INTR_PEERS = 20_000;
const randomKey = () => PublicKey.fromBytes(randomBytes(32));
/** Peer i's one allowed IP: unique for i < 2^24. */
const hostOf = (i: number) => `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}/32`;
const linkAdd = (ifname: string) => run('ip', ['link', 'add', ifname, 'type', 'wireguard']);
const linkDel = (ifname: string) => run('ip', ['link', 'del', ifname]).catch(() => undefined);

describe('netlink backend on kernel WireGuard', () => {
  // Only the small links are deleted: deleting a link costs the kernel an RCU
  // grace period per peer, minutes for thousands under emulation, and the
  // VM is discarded after the suite anyway.
  afterAll(async () => {
    for (const ifname of ['nlsel', 'nlperm']) await linkDel(ifname);
  });

  describe(`a device with ${DUMP_PEERS.toLocaleString('en')} peers`, () => {
    let device: NetlinkDevice;
    const peers: PeerConfig[] = [];

    beforeAll(async () => {
      // No private key: the kernel then skips each peer's static-static DH,
      // which under emulation would dominate the test.
      await linkAdd('nlbig');
      device = await NetlinkDevice.open('nlbig');
      for (let i = 0; i < DUMP_PEERS; i++) peers.push({ publicKey: randomKey(), allowedIPs: [cidr(hostOf(i))] });
      await device.setPeers(peers);
    });
    afterAll(async () => {
      await device?.close();
    });

    it('dumps every peer exactly once, each with its allowed IP', async () => {
      const listed = await device.listPeers();
      expect(listed).toHaveLength(DUMP_PEERS);
      const byKey = new Map(listed.map((p) => [p.publicKey.id, p.allowedIPs]));
      expect(byKey.size).toBe(DUMP_PEERS);
      let wrong = 0;
      for (const p of peers) if (byKey.get(p.publicKey.id)?.join() !== cidrTexts(p.allowedIPs!).join()) wrong++;
      expect(wrong).toBe(0);
    });

    it('agrees with `wg show dump` on the peer count', async () => {
      const { stdout } = await run('wg', ['show', 'nlbig', 'peers']);
      expect(stdout.trim().split('\n')).toHaveLength(DUMP_PEERS);
    });
  });

  it('restarts a dump the kernel flags as interrupted, and never returns an inconsistent peer set', async () => {
    await linkAdd('nlintr');
    const device = await NetlinkDevice.open('nlintr');
    const writer = await NetlinkDevice.open('nlintr');
    const stable = Array.from({ length: INTR_PEERS }, (_, i) => ({ publicKey: randomKey(), allowedIPs: [cidr(hostOf(i))] }));
    await device.setPeers(stable);
    const consistent = (peers: { publicKey: PublicKey }[]) => {
      const keys = new Set(peers.map((p) => p.publicKey.id));
      expect(stable.every((p) => keys.has(p.publicKey.id))).toBe(true);
      expect(keys.size - INTR_PEERS).toBeLessThanOrEqual(1); // the flapping peer, or not
    };
    // Another socket adds and removes one peer without pause while we dump:
    // every part boundary is a chance for the kernel to flag the dump.
    let churning = true;
    const flapper = randomKey();
    const churn = (async () => {
      while (churning) {
        await writer.setPeers([{ publicKey: flapper, allowedIPs: [cidr(hostOf(INTR_PEERS))] }]);
        await writer.removePeers([flapper]);
      }
    })();
    try {
      const during = await device.listPeers().catch((e: unknown) => e as Error);
      // Either a consistent answer after restarts, or a clean failure once they run out.
      if (during instanceof Error) expect(during.message).toMatch(/kept changing during 5 dumps in a row \(NLM_F_DUMP_INTR\)/);
      else consistent(during);
      expect(device.dumpRestarts).toBeGreaterThan(0);
    } finally {
      churning = false;
      await churn;
    }
    const restarts = device.dumpRestarts;
    const after = await device.listPeers();
    consistent(after);
    expect(after).toHaveLength(INTR_PEERS);
    expect(device.dumpRestarts).toBe(restarts); // quiet device: one attempt
    await writer.close();
    await device.close();
  });

  it('auto picks netlink for a kernel WireGuard link, and a forced uapi says why it cannot', async () => {
    await linkAdd('nlsel');
    expect(await isKernelWireGuard('nlsel')).toBe(true);
    expect(await isKernelWireGuard('lo')).toBe(false);
    const device = await openDevice({ interface: 'nlsel', backend: 'auto', uapiDir: '/run/wireguard' });
    expect(device.kind).toBe('netlink');
    await device.close();
    await expect(openDevice({ interface: 'nlsel', backend: 'uapi', uapiDir: '/run/wireguard' })).rejects.toThrow(/kernel WireGuard interface: use --backend netlink/);
    await expect(openDevice({ interface: 'lo', backend: 'netlink', uapiDir: '/run/wireguard' })).rejects.toThrow(/not a kernel WireGuard interface/);
  });

  it('opening a missing interface, or a link that is not WireGuard, fails with no_device', async () => {
    await expect(NetlinkDevice.open('nosuchwg0')).rejects.toMatchObject({ code: 'no_device', message: expect.stringMatching(/no such device/) });
    await expect(NetlinkDevice.open('lo')).rejects.toMatchObject({ code: 'no_device', message: expect.stringMatching(/not a kernel WireGuard interface/) });
  });

  it('a process that loses CAP_NET_ADMIN mid-run gets not_permitted, not a hang or a crash', async () => {
    await linkAdd('nlperm');
    // A child, because dropping privileges is for the whole process.
    const script = `
      import { NetlinkDevice } from ${JSON.stringify(resolve('dist/install/netlink.js'))};
      import { PublicKey } from ${JSON.stringify(resolve('dist/handshake/keys.js'))};
      const device = await NetlinkDevice.open('nlperm');
      await device.setPeers([{ publicKey: PublicKey.parse(${JSON.stringify(randomKey())}) }]);
      process.setgid(65534);
      process.setuid(65534);
      const outcomes = [];
      for (let i = 0; i < 3; i++) {
        outcomes.push(await device.setPeers([{ publicKey: PublicKey.parse(${JSON.stringify(randomKey())}) }]).then(() => 'ok', (e) => e.code + ': ' + e.message));
      }
      outcomes.push(await device.listPeers().then(() => 'ok', (e) => e.code));
      await device.close();
      console.log(JSON.stringify(outcomes));
    `;
    const { stdout } = await run('node', ['--input-type=module', '-e', script]);
    const outcomes = JSON.parse(stdout.trim()) as string[];
    expect(outcomes).toHaveLength(4);
    for (const o of outcomes.slice(0, 3)) expect(o).toMatch(/^not_permitted: nlperm: not permitted .*CAP_NET_ADMIN/);
    expect(outcomes[3]).toBe('not_permitted');
    // Only the peer set before the drop is there.
    const { stdout: keys } = await run('wg', ['show', 'nlperm', 'peers']);
    expect(keys.trim().split('\n')).toHaveLength(1);
  });
});
