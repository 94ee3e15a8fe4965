import { describe, expect, it } from 'vitest';
import type { AdmissionResult, PeerGrant } from '../../src/authorize/peer.js';
import type { PeerStatus } from '../../src/install/device.js';
import { InstalledPeers } from '../../src/lifecycle/installed.js';
import { planReconcile } from '../../src/lifecycle/reconcile.js';
import { cidrs } from '../../harness/cidr.js';
import { keyName, testKey } from '../support/keys.js';

const T0 = Date.UTC(2026, 10, 23, 12);
const pk = (c: string) => testKey(c);
/** Each peer's own address, as the device and the store spell it: a → 10.0.0.97/32. */
const ip = (c: string) => `10.0.0.${c.charCodeAt(0)}/32`;

/** Peer `c` on the device, by default as its record (allowed()) says. */
function status(c: string, o: Partial<PeerStatus> = {}): PeerStatus {
  return { publicKey: pk(c), allowedIPs: [ip(c)], persistentKeepalive: 0, lastHandshakeAt: null, rxBytes: 0n, txBytes: 0n, hasPresharedKey: false, ...o };
}

/** Peer `c`'s record, version v1, its own address, unless `o` says otherwise. */
function allowed(c: string, o: Partial<PeerGrant> = {}): AdmissionResult {
  return { allowed: true, grant: { allowedIPs: cidrs(ip(c)), version: 'v1', ...o } };
}

const PSK = testKey('psk').bytes;

/** The table, with each of `peers` installed and confirmed, its record's version known. */
function installedWith(peers: Record<string, string | null>): InstalledPeers {
  const installed = new InstalledPeers();
  for (const [c, version] of Object.entries(peers)) installed.add(pk(c), T0 - 60_000, null, 'confirmed').recordVersion = version;
  return installed;
}

/** The plan for a device and records keyed by name; the rewrites as [name, allowed IPs written, version], by name. */
function plan(device: PeerStatus[], records: Record<string, AdmissionResult>, installed = new InstalledPeers()) {
  const p = planReconcile(device, new Map(Object.entries(records).map(([c, r]) => [pk(c).id, r])), installed, T0);
  const updates = p.update.map((u) => [keyName(u.config.publicKey), (u.config.allowedIPs ?? []).map((c) => c.text), u.version]).sort((x, y) => (x[0]! < y[0]! ? -1 : 1));
  return { ...p, updates };
}

describe('planReconcile', () => {
  it('removes what the store refuses, with the reason, and leaves keys it could not answer for', () => {
    const device = [status('a'), status('b'), status('c'), status('d')];
    const p = plan(device, {
      a: { allowed: false, reason: 'unknown' },
      b: { allowed: false, reason: 'disabled' },
      c: { allowed: false, reason: 'expired' },
      // d: corrupt in the store, no answer
    });
    expect(p.remove).toEqual([
      { publicKey: pk('a'), reason: 'unknown' },
      { publicKey: pk('b'), reason: 'disabled' },
      { publicKey: pk('c'), reason: 'expired' },
    ]);
    expect(p.adopt).toEqual([]);
    expect(p.update).toEqual([]);
  });

  it('adopts authorized peers it did not install, rewriting only those whose device state differs from the record', () => {
    const device = [
      status('a'), // as the record says
      status('b', { allowedIPs: ['10.0.0.9/32'] }), // allowed IPs changed
      status('c', { persistentKeepalive: 25 }), // keepalive removed in the store
      status('d'), // the record has a preshared key: its value cannot be compared
    ];
    const p = plan(device, { a: allowed('a'), b: allowed('b'), c: allowed('c'), d: allowed('d', { presharedKey: PSK }) });
    expect(p.adopt.map((a) => keyName(a.status.publicKey))).toEqual(['a', 'b', 'c', 'd']);
    expect(p.adopt.every((a) => a.version === 'v1')).toBe(true);
    expect(p.updates.map(([c]) => c)).toEqual(['b', 'c', 'd']);
    expect(p.update.find((u) => keyName(u.config.publicKey) === 'b')!.config).toMatchObject({ allowedIPs: cidrs(ip('b')), replaceAllowedIPs: true, updateOnly: true });
    expect(p.remove).toEqual([]);
  });

  it('rewrites an installed peer when the store holds a newer version of its record (a lost change event)', () => {
    const p = plan([status('a'), status('b')], { a: allowed('a', { version: 'v2' }), b: allowed('b') }, installedWith({ a: 'v1', b: 'v1' }));
    expect(p.updates).toEqual([['a', [ip('a')], 'v2']]);
    expect(p.adopt).toEqual([]);
  });

  it('rewrites an installed peer whose device differs from its record in any field, though the version is the one written', () => {
    const installed = installedWith({ a: 'v1', b: 'v1', c: 'v1', d: 'v1', e: 'v1', f: 'v1' });
    const device = [
      status('a', { allowedIPs: [] }), // its address taken by another peer's write
      status('b', { allowedIPs: [ip('b'), '10.9.0.0/16'] }), // one more than the record
      status('c', { persistentKeepalive: 25 }), // keepalive changed behind wgjit's back
      status('d'), // the record's preshared key is not on the device
      status('e', { hasPresharedKey: true }), // a preshared key the record does not have
      status('f'), // as the record says
    ];
    const records = { a: allowed('a'), b: allowed('b'), c: allowed('c', { persistentKeepalive: 0 }), d: allowed('d', { presharedKey: PSK }), e: allowed('e'), f: allowed('f') };
    const p = plan(device, records, installed);
    expect(p.updates).toEqual([
      ['a', [ip('a')], 'v1'],
      ['b', [ip('b')], 'v1'],
      ['c', [ip('c')], 'v1'],
      ['d', [ip('d')], 'v1'],
      ['e', [ip('e')], 'v1'],
    ]);
    // The whole record, each time: the keepalive and the preshared key (cleared for e) with the allowed IPs.
    expect(p.update.find((u) => keyName(u.config.publicKey) === 'd')!.config.presharedKey).toEqual(PSK);
    expect(p.update.find((u) => keyName(u.config.publicKey) === 'e')!.config.presharedKey).toEqual(new Uint8Array(32));
    expect(p.update.find((u) => keyName(u.config.publicKey) === 'c')!.config.persistentKeepalive).toBe(0);
    expect(p.adopt).toEqual([]);
  });

  it('rewrites nothing when the device matches every record: allowed IPs as sets, in the device\'s spelling', () => {
    const installed = installedWith({ a: 'v1', b: 'v1', c: 'v1' });
    const device = [
      status('a', { allowedIPs: ['10.8.0.0/24', ip('a')] }), // another order than the record's
      status('b', { allowedIPs: ['::ffff:10.0.0.98/128'] }), // an IPv4-mapped address as Go spells it
      status('c', { persistentKeepalive: 25, hasPresharedKey: true }),
    ];
    const records = {
      a: allowed('a', { allowedIPs: cidrs(ip('a'), '10.8.0.0/24') }),
      b: allowed('b', { allowedIPs: cidrs('::ffff:10.0.0.98/128') }),
      c: allowed('c', { persistentKeepalive: 25, presharedKey: PSK }),
    };
    const p = plan(device, records, installed);
    expect(p.update).toEqual([]);
    expect(p.conflicts).toEqual([]);
  });

  it('writes a record with a preshared key once when its version is unknown, and not again once it is', () => {
    // Adopted after a restart: the key's value cannot be compared, so it is written.
    const adopted = plan([status('a', { hasPresharedKey: true })], { a: allowed('a', { presharedKey: PSK }) });
    expect(adopted.updates).toEqual([['a', [ip('a')], 'v1']]);
    // Installed (or written) at that version, the key present: left alone, every pass.
    const known = plan([status('a', { hasPresharedKey: true })], { a: allowed('a', { presharedKey: PSK }) }, installedWith({ a: 'v1' }));
    expect(known.update).toEqual([]);
    // Its version unknown but no preshared key: compared field by field, nothing to write.
    expect(plan([status('b')], { b: allowed('b') }, installedWith({ b: null })).update).toEqual([]);
    // A new version of the record: written, though every visible field matches (the key itself may have changed).
    expect(plan([status('a', { hasPresharedKey: true })], { a: allowed('a', { presharedKey: PSK, version: 'v2' }) }, installedWith({ a: 'v1' })).updates).toEqual([['a', [ip('a')], 'v2']]);
  });

  it('gives an address two records claim to the peer holding it on the device, writes the other without it, and names the conflict', () => {
    // b's record was given a's address; b's write took it on the device.
    const installed = installedWith({ a: 'v1', b: 'v2' });
    const device = [status('a', { allowedIPs: [] }), status('b', { allowedIPs: [ip('b'), ip('a')] })];
    const records = { a: allowed('a'), b: allowed('b', { allowedIPs: cidrs(ip('b'), ip('a')), version: 'v2' }) };
    const p = plan(device, records, installed);
    // a already goes without it: nothing to write, this pass or the next.
    expect(p.update).toEqual([]);
    expect(p.conflicts).toEqual([{ cidr: ip('a'), holder: pk('b'), others: [pk('a')] }]);

    // Had a kept it (b's change not written: its event lost), b's new version is written without it.
    const kept = plan([status('a'), status('b')], records, installedWith({ a: 'v1', b: 'v1' }));
    expect(kept.updates).toEqual([['b', [ip('b')], 'v2']]);
    expect(kept.conflicts).toEqual([{ cidr: ip('a'), holder: pk('a'), others: [pk('b')] }]);

    // The device as that rewrite leaves it: stable, nothing to write.
    expect(plan([status('a'), status('b')], records, installedWith({ a: 'v1', b: 'v2' })).update).toEqual([]);
  });

  it('gives a contested address nobody holds to the claimant whose key sorts first, whatever the device\'s order', () => {
    const shared = '10.7.0.1/32';
    const records = {
      a: allowed('a', { allowedIPs: cidrs(ip('a'), shared) }),
      b: allowed('b', { allowedIPs: cidrs(ip('b'), shared) }),
      c: allowed('c', { allowedIPs: cidrs(ip('c'), shared) }),
    };
    const installed = installedWith({ a: 'v1', b: 'v1', c: 'v1' });
    const first = ['a', 'b', 'c'].sort((x, y) => (pk(x).id < pk(y).id ? -1 : 1))[0]!;
    for (const order of [['a', 'b', 'c'], ['c', 'b', 'a']]) {
      const p = plan(order.map((c) => status(c)), records, installed);
      expect(p.conflicts.map((k) => [k.cidr, keyName(k.holder)])).toEqual([[shared, first]]);
      expect(p.conflicts[0]!.others.map(keyName).sort()).toEqual(['a', 'b', 'c'].filter((c) => c !== first));
      // The one that sorts first gets its whole record; the others theirs without the shared address (their devices already match).
      expect(p.updates).toEqual([[first, [ip(first), shared], 'v1']]);
    }
  });

  it('does not count a refused or unanswered peer as a claimant: the authorized one gets the address', () => {
    const shared = ip('a');
    const device = [status('a', { allowedIPs: [] }), status('r', { allowedIPs: [shared] }), status('u')];
    const records = { a: allowed('a'), r: { allowed: false, reason: 'disabled' } as const };
    const p = plan(device, records, installedWith({ a: 'v1', r: 'v1', u: 'v1' }));
    expect(p.conflicts).toEqual([]);
    expect(p.updates).toEqual([['a', [shared], 'v1']]);
    expect(p.remove.map((r) => keyName(r.publicKey))).toEqual(['r']);
  });

  it('forgets installed peers the device lost, but not one installed after the read began', () => {
    const installed = new InstalledPeers();
    installed.add(pk('a'), T0 - 1, null);
    installed.add(pk('b'), T0 + 1, null); // installed while the device was being read
    const p = planReconcile([], new Map(), installed, T0);
    expect(p.forget.map(keyName)).toEqual(['a']);
  });
});
