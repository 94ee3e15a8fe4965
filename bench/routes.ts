/**
 * Peer routes over rtnetlink (src/route/routes.ts), side by side with the
 * ways around it, in one run on this kernel:
 *
 *   one call     add() of --routes IPv4 /32s: MAX_ROUTES_PER_EXCHANGE
 *                messages to an exchange; then list() and remove() of all
 *   per route    add([one]) --routes times: one exchange each, what
 *                installing each peer's route on its own would cost
 *   ip           `ip route add … proto 249` once per route (a process each,
 *                timed on --ip-routes and projected), and `ip -batch` of
 *                all of them (one process, one exchange per route)
 *
 * Routes need no WireGuard: they go through a veth in a namespace of their
 * own (the bench re-runs itself inside it), to table 100, which starts
 * empty every round.
 *
 *   npx tsx bench/routes.ts [--routes 10000] [--ip-routes 1000] [--rounds 3]   # as root
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { cidr } from '../harness/cidr.js';
import { onExit, run } from '../harness/testbed/exec.js';
import { createNamespace, deleteNamespaceSync } from '../harness/testbed/netns.js';
import { MAX_ROUTES_PER_EXCHANGE, PeerRoutes, ROUTE_PROTOCOL } from '../src/route/routes.js';

const NS = 'rtb';
const IFNAME = 'rtb0';
const TABLE = 100;
/** Set in the copy of this script that runs inside the namespace. */
const INSIDE_ENV = 'WGJIT_ROUTES_BENCH_INSIDE';

const { values } = parseArgs({
  options: {
    routes: { type: 'string', default: '10000' },
    'ip-routes': { type: 'string', default: '1000' },
    rounds: { type: 'string', default: '3' },
  },
});
const ROUTES = Number(values.routes);
const IP_ROUTES = Number(values['ip-routes']);
const ROUNDS = Number(values.rounds);
for (const [name, v] of Object.entries({ routes: ROUTES, 'ip-routes': IP_ROUTES, rounds: ROUNDS })) {
  if (!Number.isInteger(v) || v < 1 || v > 1 << 20) throw new Error(`--${name} must be an integer in 1..${1 << 20}`);
}

const progress = (line: string) => process.stderr.write(`${line}\n`);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const host = (i: number) => `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
const CIDRS = Array.from({ length: ROUTES }, (_, i) => cidr(`${host(i)}/32`));

async function timed<T>(fn: () => Promise<T>): Promise<[number, T]> {
  const start = process.hrtime.bigint();
  const out = await fn();
  return [Number(process.hrtime.bigint() - start) / 1e6, out];
}

async function expectCount(routes: PeerRoutes, n: number, after: string): Promise<void> {
  const listed = (await routes.list()).length;
  if (listed !== n) throw new Error(`${after}: ${listed} routes in table ${TABLE}, expected ${n}`);
}

async function benchmark(): Promise<void> {
  const routes = await PeerRoutes.open(IFNAME, TABLE);
  const ms = { add: [] as number[], list: [] as number[], remove: [] as number[], addEach: [] as number[], removeEach: [] as number[], batch: [] as number[] };
  for (let r = 0; r < ROUNDS; r++) {
    progress(`round ${r + 1}/${ROUNDS}: one call, then one exchange per route…`);
    const [add, added] = await timed(() => routes.add(CIDRS));
    if (added.changed !== ROUTES) throw new Error(`one add: ${JSON.stringify(added.failed.slice(0, 3))}`);
    const [list] = await timed(() => routes.list());
    const [remove] = await timed(() => routes.remove(CIDRS));
    await expectCount(routes, 0, 'one remove');
    const [addEach] = await timed(async () => {
      for (const c of CIDRS) await routes.add([c]);
    });
    await expectCount(routes, ROUTES, 'add per route');
    const [removeEach] = await timed(async () => {
      for (const c of CIDRS) await routes.remove([c]);
    });
    await expectCount(routes, 0, 'remove per route');
    Object.entries({ add, list, remove, addEach, removeEach }).forEach(([k, v]) => ms[k as keyof typeof ms].push(v));

    const dir = mkdtempSync(join(tmpdir(), 'wgjit-routes-'));
    try {
      const file = join(dir, 'batch');
      writeFileSync(file, CIDRS.map((c) => `route add ${c.text} dev ${IFNAME} proto ${ROUTE_PROTOCOL} table ${TABLE}\n`).join(''));
      const [batch] = await timed(() => run('ip', ['-batch', file]));
      ms.batch.push(batch);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    await routes.remove(CIDRS);
  }

  progress(`ip route add: ${IP_ROUTES} routes, one process each…`);
  const each: number[] = [];
  for (const c of CIDRS.slice(0, IP_ROUTES)) {
    const [t] = await timed(() => run('ip', ['route', 'add', c.text, 'dev', IFNAME, 'proto', String(ROUTE_PROTOCOL), 'table', String(TABLE)]));
    each.push(t);
  }
  await routes.remove(CIDRS.slice(0, IP_ROUTES));
  await routes.close();

  const one = median(ms.add);
  const row = (what: string, total: number, projected = false) =>
    `| ${what} | ${total.toFixed(1)}${projected ? ' (projected)' : ''} | ${((total / ROUTES) * 1000).toFixed(1)} | ${(total / one).toFixed(1)}× |`;
  console.log(`\n${ROUTES} IPv4 /32 routes to table ${TABLE} through a veth, this kernel; medians of ${ROUNDS} rounds (MAX_ROUTES_PER_EXCHANGE ${MAX_ROUTES_PER_EXCHANGE})\n`);
  console.log('| path | total ms | µs per route | vs one add() |');
  console.log('|---|--:|--:|--:|');
  console.log(row(`one add() of ${ROUTES}`, one));
  console.log(row('add() once per route (one exchange each)', median(ms.addEach)));
  console.log(row(`ip -batch of ${ROUTES} (one process)`, median(ms.batch)));
  console.log(row(`ip route add once per route (${IP_ROUTES} timed)`, median(each) * ROUTES, true));
  console.log(row(`one remove() of ${ROUTES}`, median(ms.remove)));
  console.log(row('remove() once per route', median(ms.removeEach)));
  console.log(row(`one list() of ${ROUTES}`, median(ms.list)));
}

if (process.env[INSIDE_ENV] === '1') {
  await benchmark();
} else {
  await createNamespace(NS);
  const unhook = onExit(() => deleteNamespaceSync(NS));
  await run('ip', ['-n', NS, 'link', 'add', IFNAME, 'type', 'veth', 'peer', 'name', `${IFNAME}p`]);
  await run('ip', ['-n', NS, 'link', 'set', IFNAME, 'up']);
  await run('ip', ['-n', NS, 'link', 'set', `${IFNAME}p`, 'up']);
  const inside = spawnSync('ip', ['netns', 'exec', NS, process.execPath, '--import', 'tsx', ...process.argv.slice(1)], {
    stdio: 'inherit',
    env: { ...process.env, [INSIDE_ENV]: '1' },
  });
  deleteNamespaceSync(NS);
  unhook();
  process.exitCode = inside.status ?? 1;
}
