/**
 * Kernel WireGuard through wgjit's netlink backend, side by side with the
 * `wg` tool, in one run on one kernel:
 *
 *   install   10,000 peers in one batched setPeers (split into 32 KiB
 *             messages) vs `wg set IF peer KEY allowed-ips IP` once per
 *             peer, the way a naive on-demand gateway would add them, and
 *             `wg addconf` of the same 10,000 as a batched reference
 *   dump      a full read of a device holding 100,000 peers
 *
 * The host kernel has no WireGuard, so this re-runs itself in the test VM
 * (Debian's kernel under qemu, software emulation: absolute figures are
 * 10-50× a real machine's; compare the ratios). Interfaces get no private
 * key, so the kernel skips each peer's static-static DH on both paths.
 *
 *   npx tsx bench/netlink.ts [--peers 10000] [--wg-set-peers 1000] [--dump-peers 100000] [--rounds 3]
 *
 * `wg set` is timed on --wg-set-peers peers (each a separate process,
 * ~65 ms under emulation: all 10,000 would take over ten minutes); its
 * per-peer median is what the ratio uses. Pass --wg-set-peers 10000 to time
 * them all.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { PublicKey } from '../src/handshake/keys.js';
import type { PeerConfig } from '../src/install/device.js';
import { NetlinkDevice } from '../src/install/netlink.js';
import { cidr } from '../harness/cidr.js';
import { run } from '../harness/testbed/exec.js';
import { kernelHasWireGuard } from '../harness/testbed/wireguard.js';
import { IN_VM_ENV, runInVm, vmAvailable } from '../harness/testbed/vm.js';

const { values } = parseArgs({
  options: {
    peers: { type: 'string', default: '10000' },
    'wg-set-peers': { type: 'string', default: '1000' },
    'dump-peers': { type: 'string', default: '100000' },
    rounds: { type: 'string', default: '3' },
  },
});
const PEERS = Number(values.peers);
const WG_SET_PEERS = Number(values['wg-set-peers']);
const DUMP_PEERS = Number(values['dump-peers']);
const ROUNDS = Number(values.rounds);
for (const [name, v] of Object.entries({ peers: PEERS, 'wg-set-peers': WG_SET_PEERS, 'dump-peers': DUMP_PEERS, rounds: ROUNDS })) {
  if (!Number.isInteger(v) || v < 1 || v > 1 << 20) throw new Error(`--${name} must be an integer in 1..${1 << 20}`);
}

const progress = (line: string) => process.stderr.write(`${line}\n`);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const host = (i: number) => `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}/32`;
const peersFor = (n: number): PeerConfig[] => Array.from({ length: n }, (_, i) => ({ publicKey: PublicKey.fromBytes(randomBytes(32)), allowedIPs: [cidr(host(i))] }));

let links = 0;
/** A fresh, empty kernel WireGuard link. Never deleted: that costs an RCU grace period per peer, and the VM is discarded. */
async function freshLink(): Promise<string> {
  const name = `nlb${links++}`;
  await run('ip', ['link', 'add', name, 'type', 'wireguard']);
  return name;
}

async function timed<T>(fn: () => Promise<T>): Promise<[number, T]> {
  const start = process.hrtime.bigint();
  const out = await fn();
  return [Number(process.hrtime.bigint() - start) / 1e6, out];
}

async function benchmark(): Promise<void> {
  const rows: [string, string, string, string][] = [];

  progress(`netlink: ${ROUNDS} × setPeers of ${PEERS} peers…`);
  const netlinkMs: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    const device = await NetlinkDevice.open(await freshLink());
    const peers = peersFor(PEERS);
    const [ms] = await timed(() => device.setPeers(peers));
    if ((await device.listPeers()).length !== PEERS) throw new Error('netlink install lost peers');
    await device.close();
    netlinkMs.push(ms);
  }
  const netlinkPerPeer = median(netlinkMs) / PEERS;

  progress(`wg set: ${WG_SET_PEERS} peers, one process each…`);
  const wgSetLink = await freshLink();
  const perPeer: number[] = [];
  for (const [i, p] of peersFor(WG_SET_PEERS).entries()) {
    const [ms] = await timed(() => run('wg', ['set', wgSetLink, 'peer', p.publicKey.toString(), 'allowed-ips', p.allowedIPs![0]!.text]));
    perPeer.push(ms);
    if ((i + 1) % 100 === 0) progress(`  ${i + 1}/${WG_SET_PEERS}`);
  }
  const wgSetPerPeer = median(perPeer);

  progress(`wg addconf: ${ROUNDS} × ${PEERS} peers…`);
  const dir = mkdtempSync(join(tmpdir(), 'wgjit-bench-'));
  const addconfMs: number[] = [];
  try {
    for (let r = 0; r < ROUNDS; r++) {
      const conf = join(dir, `r${r}.conf`);
      writeFileSync(conf, peersFor(PEERS).map((p) => `[Peer]\nPublicKey = ${p.publicKey}\nAllowedIPs = ${p.allowedIPs![0]!.text}\n`).join(''));
      const link = await freshLink();
      const [ms] = await timed(() => run('wg', ['addconf', link, conf]));
      addconfMs.push(ms);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }

  rows.push([`wgjit netlink, one setPeers of ${PEERS}`, (median(netlinkMs) / 1000).toFixed(2), (netlinkPerPeer * 1000).toFixed(1), '1.0×']);
  rows.push([
    `wg set once per peer (${WG_SET_PEERS} timed)`,
    `${((wgSetPerPeer * PEERS) / 1000).toFixed(0)} (projected)`,
    (wgSetPerPeer * 1000).toFixed(1),
    `${(wgSetPerPeer / netlinkPerPeer).toFixed(0)}× slower`,
  ]);
  rows.push([`wg addconf of ${PEERS} (batched reference)`, (median(addconfMs) / 1000).toFixed(2), ((median(addconfMs) / PEERS) * 1000).toFixed(1), `${(median(addconfMs) / median(netlinkMs)).toFixed(2)}×`]);

  progress(`dump: installing ${DUMP_PEERS} peers, then ${ROUNDS} full dumps…`);
  const big = await NetlinkDevice.open(await freshLink());
  const [installBigMs] = await timed(() => big.setPeers(peersFor(DUMP_PEERS)));
  const dumpMs: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    const [ms, peers] = await timed(() => big.listPeers());
    if (peers.length !== DUMP_PEERS) throw new Error(`dump returned ${peers.length} peers, expected ${DUMP_PEERS}`);
    dumpMs.push(ms);
  }
  await big.close();

  console.log(`\nkernel WireGuard in the test VM (${process.env[IN_VM_ENV] ? 'qemu, software emulation' : 'this kernel'}), medians of ${ROUNDS} rounds\n`);
  console.log('| install path | total s | µs per peer | vs netlink |');
  console.log('|---|---|---|---|');
  for (const r of rows) console.log(`| ${r.join(' | ')} |`);
  console.log(`\n| ${DUMP_PEERS} peers | s |`);
  console.log('|---|---|');
  console.log(`| install (one setPeers) | ${(installBigMs / 1000).toFixed(2)} |`);
  console.log(`| full dump (listPeers, median) | ${(median(dumpMs) / 1000).toFixed(2)} |`);
}

if (await kernelHasWireGuard()) {
  await benchmark();
} else {
  const why = vmAvailable();
  if (why !== null) throw new Error(`this kernel has no WireGuard and the test VM is unavailable: ${why}`);
  progress('this kernel has no WireGuard: running in the test VM (about a minute to boot and start)…');
  const result = await runInVm({
    command: ['npx', 'tsx', resolve('bench/netlink.ts'), ...process.argv.slice(2)],
    timeoutMs: 60 * 60_000,
    onOutput: (chunk) => process.stdout.write(chunk),
  });
  process.exitCode = result.code;
}
