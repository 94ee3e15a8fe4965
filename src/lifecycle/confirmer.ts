/**
 * Notices soon that a client confirmed the session of a peer just
 * installed: its device reports a handshake completed since the install
 * (sweep.ts: confirms), which only the real client can bring about. The
 * fleet moves a peer to the gateway where that happens
 * (src/fleet/member.ts), so it must be known in a few hundred
 * milliseconds, not at the next sweep (SWEEP_INTERVAL_MS).
 *
 * Neither backend reads one peer (the userspace API's get and the kernel's
 * dump give the whole device), so a read here serves every peer awaiting
 * confirmation: each is looked at CONFIRM_FIRST_CHECK_MS after its install,
 * then at doubling gaps until PROVISIONAL_GRACE_MS (then the sweep removes
 * it, `unconfirmed`). A client confirms one round trip after the replay
 * is answered, so the first or second look usually finds it. Reads are
 * bounded in time, not count: after a read that took t, the next waits at
 * least t × (1 / CONFIRM_READ_SHARE - 1), so on a large device they take
 * at most that share of the time (and of the device's request queue).
 */
import type { PublicKey } from '../handshake/keys.js';
import type { PeerStatus, WireGuardDevice } from '../install/device.js';
import type { Logger } from '../telemetry/log.js';
import { deviceErrorCode, type Metrics } from '../telemetry/metrics.js';
import type { InstalledPeers } from './installed.js';
import { confirms } from './sweep.js';

/** The first look after an install; each later one waits twice as long as the one before. */
export const CONFIRM_FIRST_CHECK_MS = 50;
/** The largest share of time confirmation reads may take. */
export const CONFIRM_READ_SHARE = 0.25;

interface Watch {
  key: PublicKey;
  /** When it is next due a look (unix ms). */
  due: number;
  gap: number;
  /** Given up on after this: the sweep's grace is over. */
  until: number;
}

export interface ConfirmerDeps {
  device: Pick<WireGuardDevice, 'listPeers'>;
  installed: InstalledPeers;
  metrics: Pick<Metrics, 'confirmSeconds' | 'deviceErrors'>;
  log: Logger;
  /** PROVISIONAL_GRACE_MS: how long a peer is watched. */
  graceMs: number;
  /** Wall clock, unix ms (installedAt's). */
  now?: () => number;
}

export class Confirmer {
  private readonly watched = new Map<string, Watch>();
  private readonly now: () => number;
  private timer: NodeJS.Timeout | null = null;
  private timerAt = 0;
  private reading: Promise<void> | null = null;
  /** Not before this (unix ms): CONFIRM_READ_SHARE. */
  private nextReadAt = 0;
  private closed = false;

  constructor(private readonly deps: ConfirmerDeps) {
    this.now = deps.now ?? Date.now;
  }

  /** Peers awaiting their confirmation. */
  get size(): number {
    return this.watched.size;
  }

  /** Watch a peer just installed. */
  watch(key: PublicKey): void {
    if (this.closed) return;
    const now = this.now();
    this.watched.set(key.id, { key, due: now + CONFIRM_FIRST_CHECK_MS, gap: CONFIRM_FIRST_CHECK_MS, until: now + this.deps.graceMs });
    this.schedule();
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    this.watched.clear();
    await this.reading;
  }

  private schedule(): void {
    if (this.closed || this.reading !== null || this.watched.size === 0) return;
    let due = Infinity;
    for (const w of this.watched.values()) due = Math.min(due, w.due);
    const at = Math.max(due, this.nextReadAt);
    if (this.timer !== null) {
      if (this.timerAt <= at) return;
      clearTimeout(this.timer);
    }
    this.timerAt = at;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.reading = this.read().finally(() => {
        this.reading = null;
        this.schedule();
      });
    }, Math.max(0, at - this.now()));
  }

  private async read(): Promise<void> {
    const started = this.now();
    let peers: PeerStatus[] | null = null;
    try {
      peers = await this.deps.device.listPeers();
    } catch (err) {
      this.deps.metrics.deviceErrors.inc({ operation: 'confirm_read', code: deviceErrorCode(err) });
      this.deps.log.debug({ err: (err as Error).message }, 'confirmation read failed');
    }
    const now = this.now();
    this.nextReadAt = now + (now - started) * (1 / CONFIRM_READ_SHARE - 1);
    if (peers !== null && !this.closed) this.apply(peers, now);
  }

  /** Confirms what the read shows confirmed; the others are due again after a longer gap, or given up. */
  private apply(peers: readonly PeerStatus[], now: number): void {
    const { installed, metrics } = this.deps;
    for (const status of peers) {
      const w = this.watched.get(status.publicKey.id);
      if (w === undefined) continue;
      const peer = installed.get(w.key);
      if (peer === undefined || peer.state !== 'provisional' || !confirms(peer, status)) continue;
      peer.lastHandshakeAt = status.lastHandshakeAt;
      if (status.endpoint !== undefined) peer.endpoint = status.endpoint;
      metrics.confirmSeconds.observe((now - peer.installedAt) / 1000);
      this.watched.delete(w.key.id);
      installed.confirm(w.key);
    }
    for (const [id, w] of this.watched) {
      if (installed.get(w.key)?.state !== 'provisional') {
        this.watched.delete(id);
        continue;
      }
      if (w.due <= now) {
        w.gap *= 2;
        w.due = now + w.gap;
      }
      if (w.due > w.until) this.watched.delete(id);
    }
  }
}
