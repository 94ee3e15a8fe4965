import { describe, expect, it } from 'vitest';
import type { AdmissionResult, PeerGrant } from '../../src/authorize/peer.js';
import { PublicKey } from '../../src/handshake/keys.js';
import type { PeerStatus } from '../../src/install/device.js';
import { InstalledPeers } from '../../src/lifecycle/installed.js';
import { planReconcile } from '../../src/lifecycle/reconcile.js';
import { cidrs } from '../../harness/cidr.js';
import { testKey } from '../support/keys.js';

const T0 = Date.UTC(2026, 10, 23, 12);
/** A key as the store spells it, and as a value (the device's, the table's). */
const key = (c: string) => testKey(c).toString();
const pk = (c: string) => testKey(c);

function status(k: string, o: Partial<PeerStatus> = {}): PeerStatus {
  return { publicKey: PublicKey.parse(k)!, allowedIPs: ['10.0.0.2/32'], persistentKeepalive: 0, lastHandshakeAt: null, rxBytes: 0n, txBytes: 0n, hasPresharedKey: false, ...o };
}

function allowed(o: Partial<PeerGrant> = {}): AdmissionResult {
  return { allowed: true, grant: { allowedIPs: cidrs('10.0.0.2/32'), version: 'v1', ...o } };
}

describe('planReconcile', () => {
  it('removes what the store refuses, with the reason, and leaves keys it could not answer for', () => {
    const device = [status(key('a')), status(key('b')), status(key('c')), status(key('d'))];
    const admissions = new Map<string, AdmissionResult>([
      [pk('a').id, { allowed: false, reason: 'unknown' }],
      [pk('b').id, { allowed: false, reason: 'disabled' }],
      [pk('c').id, { allowed: false, reason: 'expired' }],
      // d: corrupt in the store, no answer
    ]);
    const plan = planReconcile(device, admissions, new InstalledPeers(), T0);
    expect(plan.remove).toEqual([
      { publicKey: pk('a'), reason: 'unknown' },
      { publicKey: pk('b'), reason: 'disabled' },
      { publicKey: pk('c'), reason: 'expired' },
    ]);
    expect(plan.adopt).toEqual([]);
    expect(plan.update).toEqual([]);
  });

  it('adopts authorized peers it did not install, rewriting only those whose device state differs from the record', () => {
    const device = [
      status(key('a')), // as the record says
      status(key('b'), { allowedIPs: ['10.0.0.9/32'] }), // allowed IPs changed
      status(key('c'), { persistentKeepalive: 25 }), // keepalive removed in the store
      status(key('d')), // the record has a preshared key: its value cannot be compared
    ];
    const admissions = new Map([
      [pk('a').id, allowed()],
      [pk('b').id, allowed()],
      [pk('c').id, allowed()],
      [pk('d').id, allowed({ presharedKey: testKey('psk').bytes })],
    ]);
    const plan = planReconcile(device, admissions, new InstalledPeers(), T0);
    expect(plan.adopt.map((a) => a.status.publicKey.toString())).toEqual([key('a'), key('b'), key('c'), key('d')]);
    expect(plan.adopt.every((a) => a.version === 'v1')).toBe(true);
    expect(plan.update.map((u) => u.config.publicKey.toString())).toEqual([key('b'), key('c'), key('d')]);
    expect(plan.update[0]!.config).toMatchObject({ allowedIPs: cidrs('10.0.0.2/32'), replaceAllowedIPs: true, updateOnly: true });
    expect(plan.remove).toEqual([]);
  });

  it('rewrites an installed peer when the store holds a newer version of its record (a lost change event)', () => {
    const installed = new InstalledPeers();
    installed.add(pk('a'), T0 - 60_000, null, 'confirmed').recordVersion = 'v1';
    installed.add(pk('b'), T0 - 60_000, null, 'confirmed').recordVersion = 'v1';
    const plan = planReconcile([status(key('a')), status(key('b'))], new Map([[pk('a').id, allowed({ version: 'v2' })], [pk('b').id, allowed()]]), installed, T0);
    expect(plan.update.map((u) => [u.config.publicKey.toString(), u.version])).toEqual([[key('a'), 'v2']]);
    expect(plan.adopt).toEqual([]);
  });

  it('forgets installed peers the device lost, but not one installed after the read began', () => {
    const installed = new InstalledPeers();
    installed.add(pk('a'), T0 - 1, null);
    installed.add(pk('b'), T0 + 1, null); // installed while the device was being read
    const plan = planReconcile([], new Map(), installed, T0);
    expect(plan.forget.map(String)).toEqual([key('a')]);
  });
});
