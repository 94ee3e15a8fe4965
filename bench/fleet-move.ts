/**
 * A client moving between gateways of a fleet, timed from its first
 * initiation at the new gateway (captured on the client's veth) to
 *   (a) the new gateway's handshake response,
 *   (b) the old gateway's device no longer holding the peer,
 *   (c) the core's route to the client's tunnel address pointing at the new gateway (BIRD, BGP),
 *   (d) the server's ping to the client answered.
 *
 *   wgjit   one store, --route-table main: the new gateway takes the peer
 *           when the client confirms there, the old one removes it on the
 *           `held` event, routes follow the confirmed peer.
 *   today   what a fleet did before holders and routes: --route-table off,
 *           and nothing tells the old gateway (each gateway on a Redis
 *           database of its own, the client registered in both), so its
 *           peer goes at idle expiry (--idle-timeout 10, the least it
 *           takes; the default is 180), and nothing brings the server's
 *           traffic to the client.
 *
 * Both on the fleet testbed (harness/testbed/fleet.ts: wireguard-go, XDP,
 * Redis, BIRD), one after the other in the same run, the same clients'
 * moves (wireguard-go clients pinging through the tunnel).
 *
 *   make bench                        (5 moves per path)
 *   npx tsx bench/fleet-move.ts --moves 10
 */
import { parseArgs } from 'node:util';
import { nsRun } from '../harness/testbed/exec.js';
import { createFleet, type Fleet, type FleetClient, type FleetGateway } from '../harness/testbed/fleet.js';
import type { Stack } from '../harness/testbed/stack.js';
import { median } from './measure.js';

const { values } = parseArgs({ options: { moves: { type: 'string', default: '5' }, wait: { type: 'string', default: '40' } } });
const MOVES = Number(values.moves);
/** How long each moment is waited for before it counts as never, ms. */
const WAIT_MS = Number(values.wait) * 1000;
const POLL_MS = 10;
const MOMENTS = ['response', 'old gateway let go', 'core route', 'server ping'] as const;
type Moment = (typeof MOMENTS)[number];

interface Path {
  name: string;
  /** Each gateway's extra `wgjit run` flags and store. */
  daemon(fleet: Fleet, index: number): { runArgs: string[]; redisUrl: string };
  /** The stacks the client must be registered through: one store, or one per gateway. */
  registerThrough(stacks: Stack[]): Stack[];
}

const PATHS: Path[] = [
  {
    name: 'wgjit',
    daemon: (fleet, i) => ({ runArgs: ['--gateway-id', `g${i}`, '--route-table', 'main', '--source-rate', '0'], redisUrl: fleet.redisUrl }),
    registerThrough: (stacks) => stacks.slice(0, 1),
  },
  {
    name: 'today',
    daemon: (fleet, i) => ({ runArgs: ['--gateway-id', `g${i}`, '--route-table', 'off', '--idle-timeout', '10', '--source-rate', '0'], redisUrl: `${fleet.redisUrl}/${i}` }),
    registerThrough: (stacks) => stacks,
  },
];

/** Polls `check` every POLL_MS until it holds: the time it first did (unix ms), or null after WAIT_MS from `since`. */
async function when(check: () => Promise<boolean>, since: number): Promise<number | null> {
  while (Date.now() - since < WAIT_MS) {
    if (await check()) return Date.now();
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
  return null;
}

const onDevice = async (g: FleetGateway, publicKey: string) => (await g.wg.dump()).peers.some((p) => p.publicKey === publicKey);
/** Pings from the client through the tunnel, `count` of them 0.2 s apart: its first packet starts the handshake. */
const clientPings = (c: FleetClient, fleet: Fleet, count: number) => nsRun(c.ns, 'ping', ['-c', String(count), '-i', '0.2', '-W', '2', fleet.tunnelAddress]).catch(() => undefined);

async function moveOnce(fleet: Fleet, c: FleetClient, stacks: Stack[], path: Path): Promise<Record<Moment, number | null>> {
  const wg = await c.startWireguard();
  for (const s of path.registerThrough(stacks)) {
    const res = await s.api('POST', '/v1/peers', { publicKey: wg.publicKey, allowedIPs: [`${c.tunnelAddress}/32`] });
    if (res.status !== 201) throw new Error(`register: ${res.status} ${JSON.stringify(res.body)}`);
  }
  // Connected at gateway 1 first (and, for wgjit, routed there).
  await clientPings(c, fleet, 5);
  if ((await when(async () => (await fleet.gateway(1).wg.dump()).peers.some((p) => p.publicKey === wg.publicKey && p.latestHandshake > 0), Date.now())) === null) throw new Error('the client did not connect at gateway 1');
  if (path.name === 'wgjit' && (await when(async () => (await fleet.coreNextHop(c.tunnelAddress)) === 1, Date.now())) === null) throw new Error("the core's route never pointed at gateway 1");

  await c.moveTo(2);
  const sniffer = await c.sniff();
  const pinging = clientPings(c, fleet, 25);
  if (!(await sniffer.waitForResponse(WAIT_MS))) throw new Error('the client got no response at gateway 2');
  const start = sniffer.firstInitiationAt!;
  const [letGo, routed, pinged] = await Promise.all([
    when(async () => !(await onDevice(fleet.gateway(1), wg.publicKey)), start),
    when(async () => (await fleet.coreNextHop(c.tunnelAddress)) === 2, start),
    when(() => fleet.serverPing(c.tunnelAddress, 0.2), start),
  ]);
  await pinging;
  const since = (t: number | null) => (t === null ? null : t - start);
  return { response: sniffer.firstResponseAt! - start, 'old gateway let go': since(letGo), 'core route': since(routed), 'server ping': since(pinged) };
}

async function runPath(path: Path, octet: number): Promise<Array<Record<Moment, number | null>>> {
  const fleet = await createFleet({ prefix: `bm${path.name.slice(0, 1)}`, gateways: 2, clients: MOVES, underlayOctet: octet });
  try {
    const stacks = await Promise.all([1, 2].map((i) => fleet.gateway(i).startDaemon(path.daemon(fleet, i))));
    const out = [];
    for (const c of fleet.clients) {
      out.push(await moveOnce(fleet, c, stacks, path));
      process.stderr.write('.');
    }
    process.stderr.write('\n');
    return out;
  } finally {
    await fleet.destroy();
  }
}

function cell(xs: Array<number | null>): string {
  const seen = xs.filter((x): x is number => x !== null);
  if (seen.length === 0) return `never (${WAIT_MS / 1000} s)`;
  const text = `${median(seen).toFixed(0)} (max ${Math.max(...seen).toFixed(0)})`;
  return seen.length < xs.length ? `${text}, never ${xs.length - seen.length}×` : text;
}

async function main(): Promise<void> {
  const results = new Map<string, Array<Record<Moment, number | null>>>();
  for (const [i, path] of PATHS.entries()) results.set(path.name, await runPath(path, 141 + 10 * i));
  console.log(`\nA client's move from gateway 1 to gateway 2: ms from its first initiation at gateway 2, median (max) of ${MOVES} moves\n`);
  const rows = [['path', ...MOMENTS], ...PATHS.map((p) => [p.name, ...MOMENTS.map((m) => cell(results.get(p.name)!.map((r) => r[m])))])];
  const widths = rows[0]!.map((_, j) => Math.max(...rows.map((r) => r[j]!.length)));
  const line = (r: string[]) => `| ${r.map((c, j) => c.padEnd(widths[j]!)).join(' | ')} |`;
  console.log(line(rows[0]!));
  console.log(`|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`);
  for (const r of rows.slice(1)) console.log(line(r));
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
