/**
 * PeerRoutes (src/route/routes.ts) on this kernel, checked against what
 * `ip route` shows. A netlink socket belongs to the namespace of the
 * process that opens it, so the routes are driven by a child inside the
 * namespace (ns-child.ts), one command at a time; the test runs `ip` from
 * outside with `-n`. This kernel has no dummy or WireGuard module: the
 * interface is one end of a veth pair (routes only need a device).
 *
 *   ns rt-t
 *   ┌──────────────────────────────────────────────────┐
 *   │ rtt0 (WG_IF stand-in) ── veth ── rtt1 (another   │
 *   │   ▲                              gateway's link) │
 *   │ child: PeerRoutes(rtt0, table) per table         │
 *   └──────────────────────────────────────────────────┘
 */
import { existsSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADDON_PATH } from '../../src/native-addon.js';
import { MAX_ROUTES_PER_EXCHANGE, ROUTE_PROTOCOL, type ReconcileResult, type RouteChange } from '../../src/route/routes.js';
import { RT_TABLE_MAIN } from '../../src/route/rtnetlink-protocol.js';
import { createNamespaces, deleteNamespaces, ipIn, isRoot, NsChild, REPO_ROOT, run, type Message } from './ns-child.js';

const NS = 'rt-t';
const IFNAME = 'rtt0';
const OTHER = 'rtt1';
const IPV4_ROUTES = 1_000;
const IPV6_ROUTES = 100;

const skipReason = !isRoot() ? 'needs root (network namespaces)' : !existsSync(ADDON_PATH) ? 'addon not built: run make addon' : null;
if (skipReason !== null) console.warn(`skipping route integration tests: ${skipReason}`);

/** The child: one PeerRoutes per table, commands in, one reply per command out; CIDRs cross as text. */
const CHILD = `
import { PeerRoutes } from '${REPO_ROOT}/src/route/routes.js';
import { parseCidr } from '${REPO_ROOT}/src/net/cidr.js';
// A string is parsed; an object is passed on unchecked, for tests of bad input.
const value = (c) => {
  if (typeof c !== 'string') return { ...c, bytes: Uint8Array.from(c.bytes) };
  const r = parseCidr(c);
  if (!r.ok) throw new Error(r.message);
  return r.cidr;
};
const spelled = (result) => ({ ...result, failed: result.failed.map((f) => ({ ...f, cidr: f.cidr.text })) });
const open = new Map();
const ops = {
  open: async ({ ifname, table }) => { open.set(table, await PeerRoutes.open(ifname, table)); return open.get(table).ifindex; },
  add: async ({ table, cidrs }) => spelled(await open.get(table).add(cidrs.map(value))),
  remove: async ({ table, cidrs }) => spelled(await open.get(table).remove(cidrs.map(value))),
  list: async ({ table }) => (await open.get(table).list()).map((c) => c.text),
  reconcile: async ({ table, cidrs }) => spelled(await open.get(table).reconcile(cidrs.map(value))),
  close: async ({ table }) => { await open.get(table).close(); open.delete(table); return null; },
};
emit({ type: 'ready' });
for await (const line of commands) {
  const { id, op, ...args } = JSON.parse(line);
  try {
    emit({ type: 'reply', id, ok: true, value: await ops[op](args) });
  } catch (e) {
    emit({ type: 'reply', id, ok: false, error: { name: e.name, code: e.code, message: e.message } });
  }
}
`;

type Reply = Message & { id: number; ok: boolean; value?: unknown; error?: { name: string; code?: string; message: string } };
type Spelled<T> = Omit<T, 'failed'> & { failed: { cidr: string; errno: number; code: string; message: string | null }[] };

const v4 = (i: number) => `10.${100 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}/32`;
const v6 = (i: number) => `fd00:249::${(i + 1).toString(16)}/128`;
const V4 = Array.from({ length: IPV4_ROUTES }, (_, i) => v4(i));
const V6 = Array.from({ length: IPV6_ROUTES }, (_, i) => v6(i));
const sorted = (xs: Iterable<string>) => [...xs].sort();

/** What `ip route` shows of a table's protocol-249 routes (both families), as CIDR → device. */
function shown(table: number, proto = String(ROUTE_PROTOCOL)): Map<string, string> {
  const out = new Map<string, string>();
  for (const family of ['-4', '-6']) {
    const routes = JSON.parse(ipIn(NS, '-j', family, 'route', 'show', 'table', String(table), 'proto', proto)) as { dst: string; dev: string }[];
    for (const r of routes) out.set(r.dst.includes('/') ? r.dst : `${r.dst}/${family === '-4' ? 32 : 128}`, r.dev);
  }
  return out;
}

describe.skipIf(skipReason !== null)('peer routes on this kernel', () => {
  let child: NsChild;
  let nextId = 0;

  async function call<T>(op: string, args: Record<string, unknown> = {}): Promise<T> {
    const id = nextId++;
    child.send({ id, op, ...args });
    const reply = await child.next<Reply>((m) => m.type === 'reply' && m['id'] === id, 30_000);
    if (!reply.ok) throw Object.assign(new Error(reply.error!.message), reply.error);
    return reply.value as T;
  }

  beforeAll(async () => {
    createNamespaces(NS);
    ipIn(NS, 'link', 'add', IFNAME, 'type', 'veth', 'peer', 'name', OTHER);
    ipIn(NS, 'link', 'set', IFNAME, 'up');
    ipIn(NS, 'link', 'set', OTHER, 'up');
    child = NsChild.spawn(NS, CHILD);
    await child.next((m) => m.type === 'ready');
  });

  afterAll(async () => {
    await child?.stop();
    deleteNamespaces(NS);
  });

  // main, a table of its own, and one past a byte (carried in RTA_TABLE only).
  describe.each([
    ['main', RT_TABLE_MAIN],
    ['100', 100],
    ['1000000', 1_000_000],
  ])('table %s', (_, table) => {
    const all = [...V4, ...V6];

    beforeAll(async () => {
      await call('open', { ifname: IFNAME, table });
    });

    afterAll(async () => {
      await call('close', { table });
    });

    it(`adds ${IPV4_ROUTES} IPv4 and ${IPV6_ROUTES} IPv6 routes in one call, through the interface, proto ${ROUTE_PROTOCOL}`, async () => {
      expect(all.length).toBeGreaterThan(MAX_ROUTES_PER_EXCHANGE * 8); // several exchanges
      const result = await call<Spelled<RouteChange>>('add', { table, cidrs: all });
      expect(result).toEqual({ changed: all.length, failed: [] });
      const routes = shown(table);
      expect(sorted(routes.keys())).toEqual(sorted(all));
      expect(new Set(routes.values())).toEqual(new Set([IFNAME]));
      expect(sorted(await call<string[]>('list', { table }))).toEqual(sorted(all));
    });

    it('adding them again replaces each in place: no duplicate, no failure', async () => {
      expect(await call<Spelled<RouteChange>>('add', { table, cidrs: all })).toEqual({ changed: all.length, failed: [] });
      expect(shown(table).size).toBe(all.length);
    });

    it('removes half; removing them again is fine', async () => {
      const half = all.filter((_, i) => i % 2 === 0);
      expect(await call<Spelled<RouteChange>>('remove', { table, cidrs: half })).toEqual({ changed: half.length, failed: [] });
      expect(await call<Spelled<RouteChange>>('remove', { table, cidrs: half })).toEqual({ changed: 0, failed: [] });
      const rest = all.filter((_, i) => i % 2 === 1);
      expect(sorted(shown(table).keys())).toEqual(sorted(rest));
      expect(sorted(await call<string[]>('list', { table }))).toEqual(sorted(rest));
    });

    it('reconciles to a wanted set: strays of ours removed, the missing added, other protocols and interfaces left alone', async () => {
      const t = String(table);
      ipIn(NS, 'route', 'add', '10.99.0.1/32', 'dev', IFNAME, 'proto', 'static', 'table', t);
      ipIn(NS, 'route', 'add', '10.99.0.2/32', 'dev', OTHER, 'proto', String(ROUTE_PROTOCOL), 'table', t);
      ipIn(NS, 'route', 'add', '10.99.0.3/32', 'dev', IFNAME, 'proto', String(ROUTE_PROTOCOL), 'table', t); // an earlier run's
      const present = all.filter((_, i) => i % 2 === 1); // what the previous test left
      const kept = present.filter((_, i) => i % 4 === 0);
      // Static routes (another metric) to destinations of ours about to go: a removal names our protocol, so they stay.
      const strays = [present.find((c) => !c.includes(':') && !kept.includes(c))!, present.find((c) => c.includes(':') && !kept.includes(c))!];
      for (const c of strays) ipIn(NS, 'route', 'add', c, 'dev', IFNAME, 'proto', 'static', 'metric', '100', 'table', t);
      const fresh = ['10.98.0.0/24', 'fd00:98::/64'];
      const wanted = [...kept, ...fresh, kept[0]!]; // a repeat is wanted once

      const result = await call<Spelled<ReconcileResult>>('reconcile', { table, cidrs: wanted });
      expect(result).toEqual({ added: fresh.length, removed: present.length - kept.length + 1, kept: kept.length, failed: [] });
      const routes = shown(table);
      expect(sorted([...routes].filter(([, dev]) => dev === IFNAME).map(([c]) => c))).toEqual(sorted([...kept, ...fresh]));
      expect(routes.get('10.99.0.2/32')).toBe(OTHER);
      expect(shown(table, 'static')).toEqual(new Map([['10.99.0.1/32', IFNAME], ...strays.map((c) => [c, IFNAME] as const)]));
      expect(sorted(await call<string[]>('list', { table }))).toEqual(sorted([...kept, ...fresh]));

      // Reconciled again: nothing to do.
      expect(await call<Spelled<ReconcileResult>>('reconcile', { table, cidrs: wanted })).toEqual({ added: 0, removed: 0, kept: kept.length + fresh.length, failed: [] });
      expect(await call<Spelled<ReconcileResult>>('reconcile', { table, cidrs: [] })).toMatchObject({ removed: kept.length + fresh.length, failed: [] });
      expect([...shown(table).keys()]).toEqual(['10.99.0.2/32']);
    });
  });

  describe('failures', () => {
    const TABLE = 200;

    beforeAll(async () => {
      await call('open', { ifname: IFNAME, table: TABLE });
    });

    it('a route the kernel refuses is reported with its CIDR and errno; the rest of the batch is applied', async () => {
      ipIn(NS, 'link', 'set', IFNAME, 'down');
      try {
        const down = await call<Spelled<RouteChange>>('add', { table: TABLE, cidrs: ['10.97.0.1/32'] });
        expect(down).toEqual({ changed: 0, failed: [{ cidr: '10.97.0.1/32', errno: 100, code: 'ENETDOWN', message: 'Device for nexthop is not up' }] });
      } finally {
        ipIn(NS, 'link', 'set', IFNAME, 'up');
      }
      // IPv6 off on the interface: its IPv6 routes are refused one by one, the IPv4 ones around them go in.
      run('ip', ['netns', 'exec', NS, 'sysctl', '-qw', `net.ipv6.conf.${IFNAME}.disable_ipv6=1`]);
      try {
        const mixed = ['10.97.0.2/32', 'fd00:97::1/128', '10.97.0.3/32', 'fd00:97::2/128', '10.97.0.4/32'];
        const result = await call<Spelled<RouteChange>>('add', { table: TABLE, cidrs: mixed });
        expect(result.changed).toBe(3);
        expect(result.failed.map((f) => [f.cidr, f.code])).toEqual([
          ['fd00:97::1/128', 'EACCES'],
          ['fd00:97::2/128', 'EACCES'],
        ]);
        expect(sorted(shown(TABLE).keys())).toEqual(['10.97.0.2/32', '10.97.0.3/32', '10.97.0.4/32']);
      } finally {
        run('ip', ['netns', 'exec', NS, 'sysctl', '-qw', `net.ipv6.conf.${IFNAME}.disable_ipv6=0`]);
      }
    });

    it('bad input is refused before anything is sent', async () => {
      const hostBits = { family: 4, bytes: [10, 97, 1, 1], prefix: 24, text: '10.97.1.1/24' };
      await expect(call('add', { table: TABLE, cidrs: ['10.97.1.0/32', hostBits] })).rejects.toMatchObject({ name: 'NetlinkRequestError' });
      expect(shown(TABLE).has('10.97.1.0/32')).toBe(false);
    });

    it('an interface that is gone: adding and listing say so, removing is fine, opening names it', async () => {
      ipIn(NS, 'link', 'del', IFNAME); // its routes go with it
      expect(shown(TABLE).size).toBe(0);
      const gone = { code: 'no_device', message: expect.stringContaining(IFNAME) as unknown };
      await expect(call('add', { table: TABLE, cidrs: ['10.97.0.5/32'] })).rejects.toMatchObject(gone);
      await expect(call('list', { table: TABLE })).rejects.toMatchObject(gone);
      expect(await call<Spelled<RouteChange>>('remove', { table: TABLE, cidrs: ['10.97.0.2/32'] })).toEqual({ changed: 0, failed: [] });
      await expect(call('open', { ifname: IFNAME, table: 201 })).rejects.toMatchObject({ code: 'no_device', message: expect.stringMatching(/^rtt0: no such interface/) as unknown });
    });
  });
});
