/**
 * `--route-table`: routes follow the peers this gateway holds. A peer's
 * allowed IPs are routed through the WireGuard interface (routes.ts) once
 * its client confirms a session here, the moment the gateway takes the peer
 * in the fleet (src/fleet/member.ts): a copy of an initiation raced to this
 * gateway installs a provisional peer that no handshake confirms, and must
 * not pull the client's traffic here. They change with the peer's allowed
 * IPs and go with the peer, whatever removes it (idle, revoked, moved, an
 * operator), unless another confirmed peer holds the address now (two
 * records claiming it). Changes made in one turn of the event loop go to the kernel
 * together (one batch each for additions and removals); reconcile() makes
 * the table exactly the confirmed peers' routes, at start and with every
 * reconciliation.
 */
import type { InstalledPeer, InstalledPeers } from '../lifecycle/installed.js';
import { parseCidr, type Cidr } from '../net/cidr.js';
import type { Logger } from '../telemetry/log.js';
import type { Metrics } from '../telemetry/metrics.js';
import type { PeerRoutes, ReconcileResult, RouteFailure } from './routes.js';

type Op = 'add' | 'remove';

export class RouteSync {
  /** By CIDR text: the last change asked for wins. */
  private readonly pending = new Map<string, Op>();
  private flushing: Promise<void> | null = null;
  private scheduled = false;

  constructor(
    private readonly routes: Pick<PeerRoutes, 'add' | 'remove' | 'reconcile'>,
    private readonly installed: Pick<InstalledPeers, 'values'>,
    private readonly log: Logger,
    private readonly metrics: Pick<Metrics, 'routeChanges'>,
  ) {}

  confirmed(peer: InstalledPeer): void {
    this.ask('add', peer.allowedIPs);
  }

  allowedIPsChanged(peer: InstalledPeer, before: readonly string[]): void {
    if (peer.state !== 'confirmed') return;
    const now = new Set(peer.allowedIPs);
    this.ask('remove', before.filter((ip) => !now.has(ip)));
    this.ask('add', peer.allowedIPs);
  }

  /**
   * Only a confirmed peer was routed: a provisional one leaving (a copied
   * initiation's, unconfirmed) sends nothing to the kernel, and cannot take
   * away a route that is another peer's.
   */
  removed(peer: InstalledPeer): void {
    if (peer.state === 'confirmed') this.ask('remove', peer.allowedIPs);
  }

  /** Makes the table exactly the confirmed peers' routes. Throws RouteError when the table cannot be read. */
  async reconcile(): Promise<ReconcileResult> {
    await this.idle();
    const wanted: Cidr[] = [];
    for (const peer of this.installed.values()) if (peer.state === 'confirmed') wanted.push(...cidrs(peer.allowedIPs));
    const result = await this.routes.reconcile(wanted);
    this.count('add', result.added, result.failed.length);
    this.count('remove', result.removed, 0);
    this.report(result.failed, 'reconciling routes');
    if (result.added + result.removed > 0) this.log.info({ added: result.added, removed: result.removed, kept: result.kept }, 'routes reconciled with the installed peers');
    return result;
  }

  /** Resolves once every change asked for so far has been sent. */
  async idle(): Promise<void> {
    while (this.flushing !== null || this.scheduled) await (this.flushing ?? new Promise((r) => setImmediate(r)));
  }

  private ask(op: Op, texts: readonly string[]): void {
    for (const text of texts) this.pending.set(text, op);
    if (this.scheduled || this.pending.size === 0) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      if (this.flushing === null) this.flushing = this.flush().finally(() => (this.flushing = null));
    });
  }

  private async flush(): Promise<void> {
    while (this.pending.size > 0) {
      const batch = { add: [] as string[], remove: [] as string[] };
      for (const [text, op] of this.pending) batch[op].push(text);
      this.pending.clear();
      // An address one peer lost to another (two records claiming it) is still routed: the route is the interface's.
      if (batch.remove.length > 0) {
        const held = this.confirmedAddresses();
        batch.remove = batch.remove.filter((text) => !held.has(text));
      }
      for (const op of ['remove', 'add'] as const) {
        if (batch[op].length === 0) continue;
        try {
          const change = await this.routes[op](cidrs(batch[op]));
          this.count(op, change.changed, change.failed.length);
          this.report(change.failed, op === 'add' ? 'adding routes' : 'removing routes');
        } catch (err) {
          this.count(op, 0, batch[op].length);
          this.log.warn({ err: (err as Error).message, count: batch[op].length }, `${op === 'add' ? 'adding' : 'removing'} routes failed; the next reconciliation tries again`);
        }
      }
    }
  }

  /** Every confirmed peer's allowed IPs, as text: one walk of the table, only for a batch with removals. */
  private confirmedAddresses(): Set<string> {
    const held = new Set<string>();
    for (const peer of this.installed.values()) if (peer.state === 'confirmed') for (const ip of peer.allowedIPs) held.add(ip);
    return held;
  }

  private count(op: Op, ok: number, failed: number): void {
    if (ok > 0) this.metrics.routeChanges.inc({ op, result: 'ok' }, ok);
    if (failed > 0) this.metrics.routeChanges.inc({ op, result: 'failed' }, failed);
  }

  private report(failed: readonly RouteFailure[], what: string): void {
    if (failed.length === 0) return;
    const first = failed[0]!;
    this.log.warn({ failed: failed.length, cidr: first.cidr.text, code: first.code, err: first.message }, `${what}: the kernel refused some; the next reconciliation tries again`);
  }
}

/** Allowed IPs as the table keeps them (text the device or the store wrote: it parses). */
function cidrs(texts: readonly string[]): Cidr[] {
  const out: Cidr[] = [];
  for (const text of texts) {
    const parsed = parseCidr(text);
    if (parsed.ok) out.push(parsed.cidr);
  }
  return out;
}
