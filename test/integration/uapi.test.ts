/**
 * UapiDevice against a real wireguard-go (interface uat0 in namespace ua-t),
 * checked against what `wg show uat0 dump` reports. Error mapping is also
 * checked against scripted sockets, for replies wireguard-go cannot be made
 * to give on demand (hangs, garbage, hang-ups).
 */
import { randomBytes } from 'node:crypto';
import { createServer, type Server, type Socket } from 'node:net';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DeviceError, type PeerConfig, type PeerStatus } from '../../src/install/device.js';
import { DEFAULT_BATCH_SIZE, UapiDevice } from '../../src/install/uapi.js';
import { formatKey, PublicKey } from '../../src/handshake/keys.js';
import { generatePrivateKey } from '../../harness/noise/keys.js';
import { run } from '../../harness/testbed/exec.js';
import { createNamespace, deleteNamespace } from '../../harness/testbed/netns.js';
import { WgInterface, type WgDumpPeer } from '../../harness/testbed/wireguard.js';
import { cidrTexts } from '../../src/net/cidr.js';
import { cidr, cidrs, unchecked } from '../../harness/cidr.js';

const NS = 'ua-t';
const IFNAME = 'uat0';
const LISTEN_PORT = 51_990;

// Any 32 bytes make a public key to wireguard-go; real X25519 would cost ~1 ms each.
const newKey = () => formatKey(new Uint8Array(randomBytes(32)));
/** The key spelled `text`, as the device facade takes it. */
const pk = (text: string) => PublicKey.parse(text)!;

/** A peer with its key spelled as wg show spells it. */
type SpelledPeer = Omit<PeerStatus, 'publicKey'> & { publicKey: string };
const spelled = (peers: PeerStatus[]): SpelledPeer[] => peers.map((p) => ({ ...p, publicKey: p.publicKey.toString() }));

async function expectDeviceError(p: Promise<unknown>, code: DeviceError['code']): Promise<DeviceError> {
  const err = await p.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(DeviceError);
  expect((err as DeviceError).code).toBe(code);
  return err as DeviceError;
}

/** What `wg show dump` says about a peer, in PeerStatus terms. */
function fromDump(p: WgDumpPeer): SpelledPeer {
  const ep = p.endpoint === null ? undefined : /^\[?(.*?)\]?:(\d+)$/.exec(p.endpoint)!;
  return {
    publicKey: p.publicKey,
    ...(ep ? { endpoint: { address: ep[1]!, port: Number(ep[2]) } } : {}),
    allowedIPs: p.allowedIPs,
    persistentKeepalive: p.persistentKeepalive,
    lastHandshakeAt: p.latestHandshake === 0 ? null : p.latestHandshake * 1000,
    rxBytes: p.rxBytes,
    txBytes: p.txBytes,
    hasPresharedKey: p.presharedKey !== null,
  };
}

describe('UapiDevice on wireguard-go', () => {
  let wg: WgInterface;
  let dev: UapiDevice;

  beforeAll(async () => {
    await createNamespace(NS);
    wg = await WgInterface.start({ ns: NS, ifname: IFNAME, listenPort: LISTEN_PORT });
    dev = await UapiDevice.open(IFNAME);
  });

  afterAll(async () => {
    await dev?.close();
    await wg?.stop();
    await deleteNamespace(NS);
  });

  it('reads the device as wg show does', async () => {
    const info = await dev.getDevice();
    const dump = await wg.dump();
    expect(dev.kind).toBe('uapi');
    expect(info.name).toBe(IFNAME);
    expect(info.publicKey?.toString()).toBe(dump.publicKey);
    expect(info.publicKey?.toString()).toBe(wg.publicKey);
    expect(formatKey(info.privateKey)).toBe(dump.privateKey);
    expect(info.listenPort).toBe(LISTEN_PORT);
    expect(info.fwmark).toBe(0);
    expect(info.peers).toEqual([]);
  });

  const a = newKey();
  const b = newKey();
  const c = newKey();
  const psk = generatePrivateKey();

  it('sets three peers and lists them as wg show dump does', async () => {
    // Endpoints stay on this namespace's loopback; the keepalive peer has no
    // endpoint, so nothing is sent and the byte counters stay put.
    const peers: PeerConfig[] = [
      { publicKey: pk(a), presharedKey: psk, endpoint: { address: '127.0.0.1', port: 9 }, allowedIPs: cidrs('10.9.0.1/32', 'fd00:9::1/128') },
      { publicKey: pk(b), endpoint: { address: '::1', port: 10 }, allowedIPs: cidrs('10.9.1.0/24') },
      { publicKey: pk(c), persistentKeepalive: 25 },
    ];
    await dev.setPeers(peers);
    // wireguard-go lists peers in map order, which differs between calls.
    const byPublicKey = (x: { publicKey: string }, y: { publicKey: string }) => x.publicKey.localeCompare(y.publicKey);
    const listed = spelled(await dev.listPeers()).sort(byPublicKey);
    const dumped = (await wg.dump()).peers.map(fromDump).sort(byPublicKey);
    expect(listed).toEqual(dumped);
    const byKey = new Map(listed.map((p) => [p.publicKey, p]));
    expect(byKey.get(a)).toEqual({
      publicKey: a,
      endpoint: { address: '127.0.0.1', port: 9 },
      allowedIPs: ['10.9.0.1/32', 'fd00:9::1/128'],
      persistentKeepalive: 0,
      lastHandshakeAt: null,
      rxBytes: 0n,
      txBytes: 0n,
      hasPresharedKey: true,
    });
    expect(byKey.get(b)!.endpoint).toEqual({ address: '::1', port: 10 });
    expect(byKey.get(b)!.hasPresharedKey).toBe(false);
    expect(byKey.get(c)!.persistentKeepalive).toBe(25);
    expect(byKey.get(c)!.endpoint).toBeUndefined();
  });

  it('updateOnly changes an existing peer and never creates one', async () => {
    const absent = newKey();
    await dev.setPeers([
      { publicKey: pk(absent), updateOnly: true, allowedIPs: cidrs('10.9.2.1/32') },
      { publicKey: pk(c), updateOnly: true, allowedIPs: cidrs('10.9.3.1/32') },
    ]);
    const keys = (await wg.dump()).peers;
    expect(keys.map((p) => p.publicKey)).not.toContain(absent);
    expect(keys.find((p) => p.publicKey === c)!.allowedIPs).toEqual(['10.9.3.1/32']);
  });

  it('adds allowed IPs by default and replaces them with replaceAllowedIPs', async () => {
    await dev.setPeers([{ publicKey: pk(b), allowedIPs: cidrs('10.9.4.0/24') }]);
    let peer = spelled(await dev.listPeers()).find((p) => p.publicKey === b)!;
    expect(peer.allowedIPs.sort()).toEqual(['10.9.1.0/24', '10.9.4.0/24']);
    await dev.setPeers([{ publicKey: pk(b), replaceAllowedIPs: true, allowedIPs: cidrs('10.9.5.0/24') }]);
    peer = spelled(await dev.listPeers()).find((p) => p.publicKey === b)!;
    expect(peer.allowedIPs).toEqual(['10.9.5.0/24']);
    expect((await wg.dump()).peers.find((p) => p.publicKey === b)!.allowedIPs).toEqual(['10.9.5.0/24']);
  });

  it('removes peers, ignoring absent keys', async () => {
    await dev.removePeers([a, c, newKey()].map(pk));
    expect((await dev.listPeers()).map((p) => p.publicKey.toString())).toEqual([b]);
    expect((await wg.dump()).peers.map((p) => p.publicKey)).toEqual([b]);
    await dev.removePeers([pk(b)]);
    expect(await dev.listPeers()).toEqual([]);
  });

  it('runs calls in order, one at a time', async () => {
    const k = newKey();
    const set = dev.setPeers([{ publicKey: pk(k) }]);
    const during = dev.listPeers();
    const removed = dev.removePeers([pk(k)]);
    const after = dev.listPeers();
    await Promise.all([set, removed]);
    expect((await during).map((p) => p.publicKey.toString())).toEqual([k]);
    expect(await after).toEqual([]);
  });

  it(`sets 10,000 peers in batches of ${DEFAULT_BATCH_SIZE} and lists each exactly once`, async () => {
    const N = 10_000;
    const peers: PeerConfig[] = Array.from({ length: N }, (_, i) => ({
      publicKey: pk(newKey()),
      allowedIPs: [cidr(`10.${100 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}/32`)],
    }));
    await dev.setPeers(peers);
    const listed = await dev.listPeers();
    expect(listed).toHaveLength(N);
    const want = new Map(peers.map((p) => [p.publicKey.toString(), cidrTexts(p.allowedIPs!)]));
    const seen = new Set<string>();
    for (const p of spelled(listed)) {
      expect(seen.has(p.publicKey)).toBe(false);
      seen.add(p.publicKey);
      expect(p.allowedIPs).toEqual(want.get(p.publicKey));
    }
    expect(seen.size).toBe(N);
    expect((await wg.dump()).peers).toHaveLength(N);
    await dev.removePeers(peers.map((p) => p.publicKey));
    expect(await dev.listPeers()).toEqual([]);
  });

  it('applies every batch when the batch size is small', async () => {
    const small = await UapiDevice.open(IFNAME, { batchSize: 2 });
    const keys = [newKey(), newKey(), newKey(), newKey(), newKey()];
    await small.setPeers(keys.map((k) => ({ publicKey: pk(k) })));
    expect((await small.listPeers()).map((p) => p.publicKey.toString()).sort()).toEqual([...keys].sort());
    await small.removePeers(keys.map(pk));
    expect(await small.listPeers()).toEqual([]);
    await small.close();
  });

  it('refuses invalid input before sending anything', async () => {
    const k = newKey();
    await expect(dev.setPeers([{ publicKey: pk(k) }, { publicKey: 'not a key' as unknown as PublicKey }])).rejects.toThrow(/not a valid/);
    await expect(dev.setPeers([{ publicKey: pk(k), allowedIPs: [unchecked(4, [10, 0, 0, 1], 32, '10.0.0.1/32\nremove=true')] }])).rejects.toThrow(/not a CIDR/);
    expect(await dev.listPeers()).toEqual([]);
  });

  it('not_permitted for a user the socket (mode 0700, root) shuts out', async () => {
    // Root passes any permission check, so open the device as nobody. The
    // script loads its modules as root and only then becomes nobody: the
    // checkout may sit where nobody cannot read (a mktemp -d, mode 0700).
    const dir = mkdtempSync(join(tmpdir(), 'ua-perm-'));
    try {
      const script = join(dir, 'open.mts');
      writeFileSync(
        script,
        `import { UapiDevice } from ${JSON.stringify(resolve('src/install/uapi.ts'))};\n` +
          `process.setgroups([]); process.setgid(65534); process.setuid(65534);\n` +
          `try { await UapiDevice.open(${JSON.stringify(IFNAME)}); console.log('opened'); }\n` +
          `catch (e) { console.log(e.code); }\n`,
      );
      const { stdout } = await run(resolve('node_modules/.bin/tsx'), [script]);
      expect(stdout.trim()).toBe('not_permitted');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses calls after close', async () => {
    const d = await UapiDevice.open(IFNAME);
    await d.close();
    await expectDeviceError(d.getDevice(), 'io');
  });
});

describe('UapiDevice errors', () => {
  let dir: string;
  const servers: Server[] = [];
  // The device keeps its connection open between requests: close them here.
  const sockets: Socket[] = [];

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'ua-uapi-'));
  });

  afterAll(async () => {
    for (const s of sockets) s.destroy();
    await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
    rmSync(dir, { recursive: true, force: true });
  });

  /** A socket that answers each request with `reply(request)` (null: say nothing). */
  async function scripted(name: string, reply: (request: string, socket: Socket) => string | null): Promise<void> {
    const server = createServer((socket) => {
      sockets.push(socket);
      let buf = '';
      socket.on('data', (d) => {
        buf += d.toString();
        if (buf.endsWith('\n\n')) {
          const r = reply(buf, socket);
          buf = '';
          if (r !== null) socket.write(r);
        }
      });
      socket.on('error', () => undefined);
    });
    servers.push(server);
    await new Promise<void>((r) => server.listen(join(dir, `${name}.sock`), r));
  }

  it('no_device when nothing serves the interface', async () => {
    const err = await expectDeviceError(UapiDevice.open('uanone0'), 'no_device');
    expect(err.message).toContain('/var/run/wireguard/uanone0.sock');
    await expectDeviceError(UapiDevice.open('uanone0', { socketDir: dir }), 'no_device');
  });

  it('no_device for a socket its daemon left behind', async () => {
    const server = createServer();
    await new Promise<void>((r) => server.listen(join(dir, 'stale.sock'), r));
    // Keep the file, drop the listener: what a SIGKILLed daemon leaves.
    const handle = (server as unknown as { _handle: { close(): void } })._handle;
    handle.close();
    await expectDeviceError(UapiDevice.open('stale', { socketDir: dir }), 'no_device');
  });

  it('no_device once the daemon is gone', async () => {
    await createNamespace('ua-t2');
    const wg = await WgInterface.start({ ns: 'ua-t2', ifname: 'uat2' });
    try {
      const d = await UapiDevice.open('uat2');
      await wg.stop();
      await expectDeviceError(d.listPeers(), 'no_device');
    } finally {
      await wg.stop();
      await deleteNamespace('ua-t2');
    }
  });

  it('rejected with the errno for a non-zero errno', async () => {
    await scripted('rej', () => 'errno=-22\n\n');
    const d = await UapiDevice.open('rej', { socketDir: dir });
    const err = await expectDeviceError(d.setPeers([{ publicKey: pk(newKey()) }]), 'rejected');
    expect(err.errno).toBe(-22);
    await expectDeviceError(d.getDevice(), 'rejected');
  });

  it('rejected names the batch that failed', async () => {
    let n = 0;
    await scripted('rej2', () => (++n === 2 ? 'errno=-5\n\n' : 'errno=0\n\n'));
    const d = await UapiDevice.open('rej2', { socketDir: dir, batchSize: 1 });
    const err = await expectDeviceError(d.setPeers([{ publicKey: pk(newKey()) }, { publicKey: pk(newKey()) }, { publicKey: pk(newKey()) }]), 'rejected');
    expect(err.message).toContain('batch 2 of 3');
    expect(n).toBe(2);
  });

  it('io after the timeout when the device never answers, and the next call still runs', async () => {
    let calls = 0;
    await scripted('hang', () => (++calls === 1 ? null : 'errno=0\n\n'));
    const d = await UapiDevice.open('hang', { socketDir: dir, timeoutMs: 200 });
    const err = await expectDeviceError(d.listPeers(), 'io');
    expect(err.message).toContain('200 ms');
    expect(await d.listPeers()).toEqual([]);
  });

  it('io when the device hangs up mid-reply', async () => {
    await scripted('hangup', (_req, socket) => {
      socket.end('private_key=');
      return null;
    });
    const d = await UapiDevice.open('hangup', { socketDir: dir });
    await expectDeviceError(d.getDevice(), 'io');
  });

  it('protocol for a reply that does not parse', async () => {
    await scripted('garbage', () => 'listen_port=banana\nerrno=0\n\n');
    const d = await UapiDevice.open('garbage', { socketDir: dir });
    await expectDeviceError(d.getDevice(), 'protocol');
    await scripted('garbage2', () => 'hello\n\n');
    const d2 = await UapiDevice.open('garbage2', { socketDir: dir });
    await expectDeviceError(d2.setPeers([{ publicKey: pk(newKey()) }]), 'protocol');
  });

  it('refuses interface names that are not names', async () => {
    await expectDeviceError(UapiDevice.open('../etc/x'), 'no_device');
    await expectDeviceError(UapiDevice.open('a'.repeat(16)), 'no_device');
  });

});
