/**
 * The gateways whose interfaces no record may take (src/fleet/identities.ts):
 * the fleet's list read once per IDENTITIES_CACHE_MS however many writes
 * ask, a failed read not kept, beats of earlier releases read as having no
 * addresses, and this gateway's own addresses kept across a failed read.
 */
import { describe, expect, it } from 'vitest';
import { pino } from 'pino';
import type { GatewayEntry } from '../../src/fleet/gateways.js';
import { GatewayIdentities, IDENTITIES_CACHE_MS, InterfaceAddresses, selfOfBeat } from '../../src/fleet/identities.js';
import { formatAddress, parseAddress, type IpAddress } from '../../src/net/address.js';

const entry = (id: string, o: Partial<GatewayEntry> = {}): GatewayEntry => ({
  id,
  instance: 'i',
  host: 'h',
  pid: 1,
  version: 'v',
  publicKey: `${id}-key`,
  startedAt: '2030-01-01T00:00:00.000Z',
  heartbeatAt: '2030-01-01T00:00:00.000Z',
  installedPeers: 0,
  alive: true,
  ...o,
});

function address(text: string): IpAddress {
  const r = parseAddress(text);
  if (!r.ok) throw new Error(r.message);
  return r.address;
}

/** A Gateways stand-in that counts its reads and can fail them. */
class ListStub {
  reads = 0;
  fail = false;
  constructor(public entries: GatewayEntry[]) {}
  async list() {
    this.reads++;
    if (this.fail) throw new Error('store away');
    return this.entries;
  }
}

describe('GatewayIdentities', () => {
  it('reads the list once per cache period, however many writes ask at once or after', async () => {
    const list = new ListStub([entry('g1', { interface: 'wg0', addresses: ['10.0.0.1', 'fd00::1'] })]);
    let now = 0;
    const ids = new GatewayIdentities({ gateways: list, now: () => now });
    const all = await Promise.all(Array.from({ length: 50 }, () => ids.current()));
    expect(list.reads).toBe(1);
    expect(all[49]).toEqual([{ gateway: 'g1', interface: 'wg0', publicKey: 'g1-key', addresses: [address('10.0.0.1'), address('fd00::1')] }]);
    now = IDENTITIES_CACHE_MS - 1;
    await ids.current();
    expect(list.reads).toBe(1);
    list.entries = [...list.entries, entry('g2')];
    now = IDENTITIES_CACHE_MS;
    expect((await ids.current()).map((s) => s.gateway)).toEqual(['g1', 'g2']);
    expect(list.reads).toBe(2);
  });

  it('puts this gateway first, read fresh each time; a failed read of the list is not kept', async () => {
    const list = new ListStub([entry('g2')]);
    let local = { gateway: 'g1', interface: 'wg0', publicKey: 'k1', addresses: [] as IpAddress[] };
    const ids = new GatewayIdentities({ gateways: list, local: () => local, now: () => 0 });
    list.fail = true;
    await expect(ids.current()).rejects.toThrow(/store away/);
    list.fail = false;
    expect((await ids.current()).map((s) => s.gateway)).toEqual(['g1', 'g2']);
    expect(list.reads).toBe(2);
    local = { ...local, addresses: [address('10.0.0.1')] };
    expect((await ids.current())[0]!.addresses).toEqual([address('10.0.0.1')]);
  });

  it('reads a beat of an earlier release (no interface, no addresses) and skips addresses that do not parse', () => {
    expect(selfOfBeat(entry('old'))).toEqual({ gateway: 'old', interface: 'WireGuard interface', publicKey: 'old-key', addresses: [] });
    expect(selfOfBeat(entry('odd', { publicKey: '', addresses: ['10.0.0.1', 'nonsense', 7 as unknown as string] })).addresses).toEqual([address('10.0.0.1')]);
    expect(selfOfBeat(entry('odd', { publicKey: '' })).publicKey).toBeNull();
  });
});

describe('InterfaceAddresses', () => {
  it('keeps the last addresses when a read fails, and logs the failure once until a read works', async () => {
    const lines: Array<{ level: number; msg: string }> = [];
    const log = pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line) as { level: number; msg: string }) });
    let next: IpAddress[] | Error = [address('10.0.0.1'), address('fd00::1')];
    const own = new InterfaceAddresses('wg0', async () => {
      if (next instanceof Error) throw next;
      return next.map((a) => ({ address: a, prefix: 24 }));
    }, log);
    await own.refresh();
    expect(own.spelled).toEqual(['10.0.0.1', 'fd00::1']);
    next = new Error('no such interface');
    await own.refresh();
    await own.refresh();
    expect(own.addresses.map(formatAddress)).toEqual(['10.0.0.1', 'fd00::1']);
    expect(lines.filter((l) => l.level === 40)).toHaveLength(1);
    next = [address('10.0.0.9')];
    await own.refresh();
    expect(own.spelled).toEqual(['10.0.0.9']);
    expect(lines.at(-1)!.msg).toBe('interface addresses read again');
  });
});
