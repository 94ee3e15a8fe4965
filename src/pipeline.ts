/**
 * The one place that knows the order of the stages:
 *
 *   capture → verify (mac1, Noise up to the timestamp) → authorize (store)
 *           → install (device) → replay (re-inject the initiation)
 *
 * Every initiation ends in exactly one counted outcome. Nothing from the
 * network reaches the store or the device before the Noise verification
 * proved which static key sent it.
 *
 * Replay protection outlives the peer: the device keeps the greatest
 * timestamp per peer only while it holds the peer, so the store keeps it
 * for every authorized key (advanceTimestamp), and an initiation whose
 * timestamp is not greater is never installed. Timestamps too far ahead of
 * our clock are refused before they are kept, so one bad clock cannot lock
 * its key out; timestamps older than the store keeps a deleted key's
 * (TIMESTAMP_RETENTION_MS) are refused too, so a key deleted and
 * registered again is safe from captures of its earlier life once its
 * tombstone has gone.
 */
import type { AdmissionResult } from './authorize/peer.js';
import { formatAddress } from './net/address.js';
import { cidrTexts } from './net/cidr.js';
import type { CaptureEvent } from './capture/types.js';
import type { PublicKey } from './handshake/keys.js';
import type { VerifyResult } from './handshake/verify.js';
import type { WireGuardDevice } from './install/device.js';
import { peerConfigFromGrant } from './install/peer-config.js';
import { RecentKeys } from './authorize/recent-keys.js';
import type { RefusalCache } from './authorize/refusals.js';
import { TIMESTAMP_RETENTION_MS } from './authorize/store.js';
import { tai64nAfter } from './handshake/tai64n.js';
import type { InstalledPeers } from './lifecycle/installed.js';
import { LineBudget, type Logger } from './telemetry/log.js';
import { deviceErrorCode, type Metrics } from './telemetry/metrics.js';

/** What the store answers for a verified key (src/authorize). */
export type Admission = AdmissionResult;

export interface PipelineDeps {
  verifier: { verify(message: Uint8Array, onClaimedStatic?: (claimedKey: PublicKey) => void): VerifyResult };
  authorize(publicKey: PublicKey, now: Date): Promise<Admission>;
  /**
   * Keeps `timestamp` for the key if greater than the one kept; false for a
   * replay (src/authorize/store.ts). `admitting`: for an admission here (a
   * twin of an admission at another gateway counts as greater), not only
   * kept for a peer installed already.
   */
  advanceTimestamp(publicKey: PublicKey, timestamp: Uint8Array, admitting: boolean): Promise<boolean>;
  /** Told of each install, to notice its confirmation soon (src/lifecycle/confirmer.ts). */
  confirmer?: { watch(publicKey: PublicKey): void };
  /** Keys the store refused lately: answered from here, not the store (src/authorize/refusals.ts). */
  refusals?: RefusalCache;
  /** How far ahead of our clock an initiation's timestamp may be. Default MAX_TIMESTAMP_AHEAD_MS. */
  maxTimestampAheadMs?: number;
  /** How far behind our clock an initiation's timestamp may be. Default TIMESTAMP_RETENTION_MS. */
  maxTimestampAgeMs?: number;
  device: WireGuardDevice;
  replayer: { replay(event: CaptureEvent): void } | null;
  installed: InstalledPeers;
  log: Logger;
  metrics: Metrics;
  /** Wall clock, unix ms. */
  now?: () => number;
  /** Monotonic clock in ns, the clock of CaptureEvent.arrivalNs. */
  monotonicNs?: () => bigint;
  /** Monotonic clock in ms, for the log's rate bound (performance.now). */
  monotonicMs?: () => number;
  /** Default ADMISSION_LOG_LINES_PER_SECOND. */
  admissionLogLinesPerSecond?: number;
}

export type Outcome =
  | 'installed'
  | 'already_installed'
  | 'in_flight'
  | `rejected_${VerifyRejectionName}`
  | 'unknown'
  | 'disabled'
  | 'expired'
  | 'replayed'
  | 'future_timestamp'
  | 'stale_timestamp'
  | 'too_soon'
  | 'store_unavailable'
  | 'install_failed';

/**
 * An initiation stamped further ahead of our clock than this is refused:
 * were it kept, its key could not connect again until our clock caught up.
 */
export const MAX_TIMESTAMP_AHEAD_MS = 10 * 60_000;

/**
 * Admission lines per outcome per second (LINE_BUDGET_WINDOW_MS): every
 * decision about a verified initiation is logged, but a flood of valid
 * initiations from unregistered keys, or an outage, must not flood the
 * log. Lines held back are counted (wgjit_admission_log_lines_suppressed_total)
 * and reported in the next line of the same outcome (`suppressed`).
 */
export const ADMISSION_LOG_LINES_PER_SECOND = 10;

interface StoreFailure {
  failed: string;
}

/** An outcome, and for a failure the error behind it (for the log line). */
interface Decision {
  outcome: Outcome;
  err?: string;
  /** A refusal answered from the refusal cache. */
  cached?: boolean;
}

type VerifyRejectionName = Extract<VerifyResult, { ok: false }>['reason'];

export class Pipeline {
  /** Admissions under way, by PublicKey.id: a resend joins the one in progress. */
  private readonly inFlight = new Map<string, Promise<Decision>>();
  private readonly logBudget: LineBudget;
  /** Replays seen here, and at most one initiation per key per 20 ms. */
  private readonly recent: RecentKeys;
  private readonly now: () => number;
  private readonly monotonicNs: () => bigint;

  constructor(private readonly deps: PipelineDeps) {
    this.now = deps.now ?? Date.now;
    this.monotonicNs = deps.monotonicNs ?? process.hrtime.bigint;
    this.recent = new RecentKeys(undefined, undefined, this.now);
    this.logBudget = new LineBudget(deps.admissionLogLinesPerSecond ?? ADMISSION_LOG_LINES_PER_SECOND, deps.monotonicMs);
  }

  /** Handle one captured initiation. Never throws. */
  async handle(event: CaptureEvent): Promise<Outcome> {
    // For a key not seen lately (a cold client), the store lookup starts as
    // soon as the static key decrypts and runs while ss and the timestamp
    // are checked. Its answer is used only if the whole verification
    // passes; it costs nothing an attacker could not already cause with a
    // valid initiation from a key of their own.
    let lookup = null as Promise<Admission | StoreFailure> | null;
    const stopVerifyTimer = this.deps.metrics.verifySeconds.startTimer();
    const verdict = this.deps.verifier.verify(event.message, (claimed) => {
      if (this.deps.installed.has(claimed) || this.inFlight.has(claimed.id) || this.deps.refusals?.get(claimed) !== undefined) return;
      if (this.recent.lookAhead(claimed)) lookup = this.lookup(claimed);
    });
    stopVerifyTimer();
    if (!verdict.ok) return this.finish({ outcome: `rejected_${verdict.reason}` }, event);

    const key = verdict.initiatorKey;
    if (tai64nAfter(verdict.timestamp, this.now() + (this.deps.maxTimestampAheadMs ?? MAX_TIMESTAMP_AHEAD_MS))) {
      return this.finish({ outcome: 'future_timestamp' }, event, key);
    }
    if (!tai64nAfter(verdict.timestamp, this.now() - (this.deps.maxTimestampAgeMs ?? TIMESTAMP_RETENTION_MS))) {
      return this.finish({ outcome: 'stale_timestamp' }, event, key);
    }
    const consideration = this.recent.consider(key, verdict.timestamp);
    if (consideration !== 'considered') return this.finish({ outcome: consideration }, event, key);
    // The device got this packet too (XDP passes everything): a peer it
    // already holds answers on its own, and must not be touched here. Its
    // timestamp is still kept, so a capture of it cannot install the peer
    // again once the peer has been removed.
    if (this.deps.installed.has(key)) {
      this.keepTimestamp(key, verdict.timestamp);
      return this.finish({ outcome: 'already_installed' }, event, key);
    }
    const pending = this.inFlight.get(key.id);
    if (pending !== undefined) {
      await pending;
      return this.finish({ outcome: 'in_flight' }, event, key);
    }
    const refused = this.deps.refusals?.get(key);
    if (refused !== undefined) {
      this.deps.metrics.refusalsCached.inc();
      return this.finish({ outcome: refused, cached: true }, event, key);
    }
    const admission = this.admit(key, event, lookup ?? this.lookup(key), verdict.timestamp);
    this.inFlight.set(key.id, admission);
    try {
      return this.finish(await admission, event, key);
    } finally {
      this.inFlight.delete(key.id);
    }
  }

  /**
   * The greatest timestamp the store accepted for each key lately, as far
   * as this gateway knows (bounded: RECENT_KEYS_SIZE keys), and each peer
   * installed here, kept since `sinceMs` (unix ms): what it writes back
   * when the store forgot its own (src/lifecycle/store-guard.ts).
   */
  *keptTimestamps(sinceMs = -Infinity): Generator<[PublicKey, Uint8Array]> {
    yield* this.recent.keptTimestamps(sinceMs);
    for (const peer of this.deps.installed.values()) if (peer.timestamp !== null && peer.installedAt >= sinceMs) yield [peer.publicKey, peer.timestamp];
  }

  /** An operator cleared the key's replay state (`wgjit peer reset-replay`): this gateway forgets it too. */
  forget(key: PublicKey): void {
    this.recent.forget(key);
  }

  /** Ask the store; a store failure is an answer too, never a rejection. */
  private lookup(key: PublicKey): Promise<Admission | StoreFailure> {
    const stopTimer = this.deps.metrics.storeSeconds.startTimer();
    return this.deps.authorize(key, new Date(this.now())).then(
      (admission) => {
        stopTimer();
        return admission;
      },
      (err: unknown) => {
        stopTimer();
        return { failed: err instanceof Error ? err.message : String(err) };
      },
    );
  }

  /** For a peer already installed: best effort, off the packet path. */
  private keepTimestamp(key: PublicKey, timestamp: Uint8Array): void {
    this.deps.advanceTimestamp(key, timestamp, false).then((kept) => {
      if (kept) this.recent.keep(key, timestamp);
    }, (err: unknown) => {
      this.deps.log.debug({ publicKey: key, err: (err as Error).message }, 'could not keep the timestamp of an installed peer');
    });
  }

  private async admit(key: PublicKey, event: CaptureEvent, lookup: Promise<Admission | StoreFailure>, timestamp: Uint8Array): Promise<Decision> {
    const { log, metrics } = this.deps;
    const admission = await lookup;
    if ('failed' in admission) return { outcome: 'store_unavailable', err: admission.failed };
    if (!admission.allowed) {
      this.deps.refusals?.set(key, admission.reason);
      return { outcome: admission.reason };
    }
    // Only for authorized keys: anyone can make authentic initiations with
    // keys of their own, and those must not grow the store.
    try {
      if (!(await this.deps.advanceTimestamp(key, timestamp, true))) return { outcome: 'replayed' };
      this.recent.keep(key, timestamp);
    } catch (err) {
      return { outcome: 'store_unavailable', err: (err as Error).message };
    }

    const stopInstallTimer = metrics.installSeconds.startTimer();
    try {
      await this.deps.device.setPeers([peerConfigFromGrant(key, admission.grant)]);
      stopInstallTimer();
    } catch (err) {
      metrics.installs.inc({ result: 'failed' });
      metrics.deviceErrors.inc({ operation: 'install', code: deviceErrorCode(err) });
      return { outcome: 'install_failed', err: (err as Error).message };
    }
    metrics.installs.inc({ result: 'ok' });
    // The installed table holds endpoints as the device reports them (text):
    // the captured source is spelled once, here.
    const installed = this.deps.installed.add(key, this.now(), { address: formatAddress(event.src.address), port: event.src.port });
    installed.recordVersion = admission.grant.version;
    this.deps.installed.setAllowedIPs(installed, cidrTexts(admission.grant.allowedIPs));
    installed.timestamp = timestamp;
    this.deps.confirmer?.watch(key);

    if (this.deps.replayer !== null) {
      try {
        this.deps.replayer.replay(event);
        metrics.replays.inc({ result: 'ok' });
      } catch (err) {
        // The peer stays installed: the client's retry still connects.
        metrics.replays.inc({ result: 'failed' });
        log.warn({ publicKey: key, err: (err as Error).message }, 'replay failed; the client will connect on its retry');
      }
    }
    metrics.coldConnectSeconds.observe(Number(this.monotonicNs() - event.arrivalNs) / 1e9);
    return { outcome: 'installed' };
  }

  /**
   * Counts the outcome (wgjit_initiations_total, which GET /v1/gateway/stats
   * reads too: src/telemetry/stats.ts), and logs it: a decision about a
   * verified initiation at info (warn or error for a failure), within the
   * per-outcome bound; a rejection by the verification at debug (anyone can
   * send junk), and already_installed too: every installed peer rekeys every
   * 2 minutes, the device answers it, and nothing was decided.
   */
  private finish(decision: Decision, event: CaptureEvent, publicKey?: PublicKey): Outcome {
    const { outcome } = decision;
    const verified = publicKey !== undefined;
    const { log, metrics } = this.deps;
    metrics.initiations.inc({ result: outcome, verified: verified ? 'true' : 'false' });
    const src = `${formatAddress(event.src.address)}:${event.src.port}`;
    if (!verified || outcome === 'already_installed') {
      log.debug({ decision: outcome, publicKey, src, ifindex: event.ifindex }, 'admission');
      return outcome;
    }
    const held = this.logBudget.take(outcome);
    if (held === null) {
      metrics.admissionLogsSuppressed.inc({ result: outcome });
      return outcome;
    }
    const level = outcome === 'install_failed' ? 'error' : outcome === 'store_unavailable' ? 'warn' : 'info';
    const line: Record<string, unknown> = { decision: outcome, publicKey, src, ifindex: event.ifindex };
    if (decision.err !== undefined) line['err'] = decision.err;
    if (decision.cached === true) line['cached'] = true;
    if (held > 0) line['suppressed'] = held;
    log[level](line, outcome === 'store_unavailable' ? 'admission: peer store unavailable' : outcome === 'install_failed' ? 'admission: install into the device failed' : 'admission');
    return outcome;
  }
}
