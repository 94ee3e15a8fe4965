/**
 * One contract for every WireGuardDevice backend, run against real
 * WireGuard: the userspace API against wireguard-go on the host
 * (test/integration/device-contract-uapi.test.ts), netlink against the
 * kernel's WireGuard in the VM (test/vm/device-contract-netlink.test.ts).
 * What the daemon relies on is asserted here once, for both.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DeviceError, type PeerConfig, type PeerStatus, type WireGuardDevice } from '../../src/install/device.js';
import { randomBytes } from 'node:crypto';
import { formatKey, PublicKey, publicKeyOf } from '../../src/handshake/keys.js';
import { cidrTexts } from '../../src/net/cidr.js';
import { cidr, cidrs, unchecked } from '../../harness/cidr.js';

export interface ContractTarget {
  /** The backend under test, opened on the interface. */
  device: WireGuardDevice;
  /** What the interface was configured with. */
  publicKey: string;
  listenPort: number;
  /** Deletes the interface (or stops its daemon) under the open device. */
  destroyInterface(): Promise<void>;
  /** Closes the device and removes everything. Idempotent. */
  cleanup(): Promise<void>;
}

/** Builds a fresh interface named `<base><n>` with a key and port and opens the backend on it. */
export type TargetFactory = (n: number) => Promise<ContractTarget>;

// Any 32 bytes are a public key to WireGuard; X25519 for each would cost more than the test.
const newKey = () => PublicKey.fromBytes(randomBytes(32));
const newPresharedKey = () => new Uint8Array(randomBytes(32));
/** The peers by key (PublicKey.id inside). */
const byKey = (peers: PeerStatus[]) => {
  const map = new Map(peers.map((p) => [p.publicKey.id, p]));
  return { get: (key: PublicKey) => map.get(key.id), has: (key: PublicKey) => map.has(key.id) };
};
/** What a caller that is not a type checker might pass for a key. */
const notAKey = (text: string) => text as unknown as PublicKey;
/** allowed IPs in a stable order: backends list them in trie order, not insertion order. */
const sorted = (ips: string[]) => [...ips].sort();

/** Enough peers, with one of many allowed IPs, to make every backend split its messages. */
export const CONTRACT_BATCH = 2_000;
const MANY_ALLOWED_IPS = Array.from({ length: 600 }, (_, i) => `10.${100 + (i >> 8)}.${i & 255}.0/24`);

export function deviceContract(label: string, factory: TargetFactory): void {
  describe(`WireGuardDevice contract: ${label}`, () => {
    let t: ContractTarget;
    let serial = 0;

    beforeAll(async () => {
      t = await factory(serial++);
    });
    afterAll(async () => {
      await t?.cleanup();
    });

    it('reads the device: its keys and port, and no peers', async () => {
      const info = await t.device.getDevice();
      expect(info.publicKey?.toString()).toBe(t.publicKey);
      expect(formatKey(publicKeyOf(info.privateKey))).toBe(t.publicKey);
      expect(info.listenPort).toBe(t.listenPort);
      expect(info.peers).toEqual([]);
      expect(await t.device.listPeers()).toEqual([]);
    });

    it('creates peers with every field and reads them back', async () => {
      const a = newKey();
      const b = newKey();
      await t.device.setPeers([
        { publicKey: a, presharedKey: newPresharedKey(), endpoint: { address: '192.0.2.7', port: 51000 }, persistentKeepalive: 0, allowedIPs: cidrs('10.7.0.2/32', 'fd00:7::2/128') },
        { publicKey: b, endpoint: { address: '2001:db8::9', port: 443 }, allowedIPs: cidrs('10.7.1.0/24') },
      ]);
      const peers = byKey(await t.device.listPeers());
      expect(peers.get(a)).toMatchObject({ endpoint: { address: '192.0.2.7', port: 51000 }, hasPresharedKey: true, persistentKeepalive: 0, lastHandshakeAt: null, rxBytes: 0n });
      expect(sorted(peers.get(a)!.allowedIPs)).toEqual(['10.7.0.2/32', 'fd00:7::2/128']);
      expect(peers.get(b)).toMatchObject({ endpoint: { address: '2001:db8::9', port: 443 }, hasPresharedKey: false, allowedIPs: ['10.7.1.0/24'] });
      await t.device.removePeers([a, b]);
    });

    it('adds allowed IPs, or replaces them with replaceAllowedIPs', async () => {
      const k = newKey();
      await t.device.setPeers([{ publicKey: k, allowedIPs: cidrs('10.8.0.1/32') }]);
      await t.device.setPeers([{ publicKey: k, allowedIPs: cidrs('10.8.0.2/32') }]);
      expect(sorted(byKey(await t.device.listPeers()).get(k)!.allowedIPs)).toEqual(['10.8.0.1/32', '10.8.0.2/32']);
      await t.device.setPeers([{ publicKey: k, allowedIPs: cidrs('10.8.0.3/32'), replaceAllowedIPs: true }]);
      expect(byKey(await t.device.listPeers()).get(k)!.allowedIPs).toEqual(['10.8.0.3/32']);
      await t.device.setPeers([{ publicKey: k, allowedIPs: [], replaceAllowedIPs: true }]);
      expect(byKey(await t.device.listPeers()).get(k)!.allowedIPs).toEqual([]);
      await t.device.removePeers([k]);
    });

    it('updateOnly changes a present peer and never creates an absent one', async () => {
      const present = newKey();
      const absent = newKey();
      await t.device.setPeers([{ publicKey: present, allowedIPs: cidrs('10.9.0.1/32') }]);
      await t.device.setPeers([
        { publicKey: present, persistentKeepalive: 0, allowedIPs: cidrs('10.9.0.2/32'), replaceAllowedIPs: true, updateOnly: true },
        { publicKey: absent, allowedIPs: cidrs('10.9.0.3/32'), updateOnly: true },
      ]);
      const peers = byKey(await t.device.listPeers());
      expect(peers.get(present)!.allowedIPs).toEqual(['10.9.0.2/32']);
      expect(peers.has(absent)).toBe(false);
      await t.device.removePeers([present]);
    });

    it('removes peers; absent keys are ignored', async () => {
      const keep = newKey();
      const drop = newKey();
      await t.device.setPeers([{ publicKey: keep }, { publicKey: drop }]);
      await t.device.removePeers([drop, newKey()]);
      const keys = (await t.device.listPeers()).map((p) => p.publicKey.toString());
      expect(keys).toContain(keep.toString());
      expect(keys).not.toContain(drop.toString());
      await t.device.removePeers([keep]);
      expect(await t.device.listPeers()).toEqual([]);
    });

    it(`sets ${CONTRACT_BATCH} peers, one with ${MANY_ALLOWED_IPS.length} allowed IPs, in one call: each exactly once, with its allowed IPs`, async () => {
      const peers: PeerConfig[] = Array.from({ length: CONTRACT_BATCH }, (_, i) => ({ publicKey: newKey(), allowedIPs: [cidr(`10.${20 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}/32`)] }));
      peers[CONTRACT_BATCH >> 1] = { publicKey: peers[CONTRACT_BATCH >> 1]!.publicKey, allowedIPs: cidrs(...MANY_ALLOWED_IPS), replaceAllowedIPs: true };
      await t.device.setPeers(peers);
      const listed = await t.device.listPeers();
      expect(listed).toHaveLength(CONTRACT_BATCH);
      const got = byKey(listed);
      for (const p of peers) expect(sorted(got.get(p.publicKey)?.allowedIPs ?? [])).toEqual(sorted(cidrTexts(p.allowedIPs!)));
      await t.device.removePeers(peers.map((p) => p.publicKey));
      expect(await t.device.listPeers()).toEqual([]);
    });

    it('refuses invalid input before changing anything', async () => {
      const good = newKey();
      const bad: PeerConfig[][] = [
        [{ publicKey: good }, { publicKey: notAKey('not a key') }],
        [{ publicKey: good }, { publicKey: newKey(), allowedIPs: [unchecked(4, [10, 0, 0, 0], 33)] }],
        [{ publicKey: good }, { publicKey: newKey(), endpoint: { address: 'gateway.example', port: 1 } }],
        [{ publicKey: good }, { publicKey: newKey(), persistentKeepalive: 70_000 }],
      ];
      for (const peers of bad) await expect(t.device.setPeers(peers)).rejects.toBeInstanceOf(RangeError);
      await expect(t.device.removePeers([good, notAKey('nope')])).rejects.toBeInstanceOf(RangeError);
      expect(await t.device.listPeers()).toEqual([]);
    });

    it('fails with DeviceError no_device once the interface is gone, and keeps failing cleanly', async () => {
      const gone = await factory(serial++);
      try {
        await gone.destroyInterface();
        for (let i = 0; i < 3; i++) {
          const err = await gone.device.setPeers([{ publicKey: newKey() }]).then(() => null, (e: unknown) => e);
          expect(err).toBeInstanceOf(DeviceError);
          expect((err as DeviceError).code).toBe('no_device');
        }
        await expect(gone.device.listPeers()).rejects.toMatchObject({ code: 'no_device' });
      } finally {
        await gone.cleanup();
      }
    });
  });
}
