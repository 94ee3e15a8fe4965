/**
 * Between the ring buffer and the verifier: every captured initiation costs
 * Diffie-Hellman work before anything is known about it, so that work is
 * budgeted, and what waits for it waits in a bounded queue that is fair
 * between sources (IPv4 /32, IPv6 /64, as the XDP program keys its buckets).
 * Under a flood, the budget caps the CPU the daemon spends, the queue
 * fills, and what does not fit is dropped and counted; a registered client
 * still gets its turn within one round of the sources ahead of it.
 *
 * The work runs in slices of at most SLICE_MS, yielding to I/O in between,
 * so the API, the store's replies and the device keep being served.
 */
import type { CaptureEvent } from '../capture/types.js';
import { formatIPv4 } from '../net/address.js';
import { FairQueue } from './fair-queue.js';
import { TokenBucket } from './token-bucket.js';

/** Charged per initiation: es and ss, whatever the ss cache saves. */
export const DH_PER_INITIATION = 2;
/** Default Diffie-Hellman budget: about 10,000 initiations per second. */
export const DEFAULT_DH_PER_SECOND = 20_000;
/** The budget saved up while idle: 50 ms worth. */
export const BUDGET_BURST_SECONDS = 0.05;
export const QUEUE_SIZE = 4_096;
export const QUEUE_PER_SOURCE = 4;
/**
 * An initiation older than this is not worth verifying: WireGuard clients
 * send their next one after REKEY_TIMEOUT (5 s), and that one counts.
 */
export const STALE_AFTER_MS = 5_000;
/** Admissions past verification (store, device) under way at once; the queue waits beyond it. */
export const MAX_CONCURRENT_ADMISSIONS = 256;
/** Longest stretch of verification before yielding to I/O. */
export const SLICE_MS = 2;

export type DropReason = 'queue_full' | 'source_full' | 'stale';

export interface IntakeOptions {
  /** Runs one initiation through the pipeline (pipeline.handle). */
  handle(event: CaptureEvent): Promise<unknown>;
  onDrop(reason: DropReason): void;
  onError?(err: unknown): void;
  dhPerSecond?: number;
  queueSize?: number;
  perSource?: number;
  maxConcurrent?: number;
  /** Monotonic clock in ms (performance.now). */
  nowMs?: () => number;
  /** Monotonic clock in ns, the clock of CaptureEvent.arrivalNs. */
  monotonicNs?: () => bigint;
}

/**
 * The key sources are told apart by, read from the address bytes: IPv4 /32
 * (the dotted quad), IPv6 /64 (its 64 bits in hex, then `::/64`).
 */
export function sourceKey(event: CaptureEvent): string {
  const b = event.src.address.bytes;
  if (event.family === 4) return formatIPv4(b);
  const high = ((b[0]! << 24) | (b[1]! << 16) | (b[2]! << 8) | b[3]!) >>> 0;
  const low = ((b[4]! << 24) | (b[5]! << 16) | (b[6]! << 8) | b[7]!) >>> 0;
  return high === 0 ? `${low.toString(16)}::/64` : `${high.toString(16)}${low.toString(16).padStart(8, '0')}::/64`;
}

export class Intake {
  private readonly queue: FairQueue<CaptureEvent>;
  private readonly budget: TokenBucket;
  private readonly maxConcurrent: number;
  private readonly nowMs: () => number;
  private readonly monotonicNs: () => bigint;
  private readonly staleNs = BigInt(STALE_AFTER_MS) * 1_000_000n;
  private active = 0;
  private idleWaiters: Array<() => void> = [];
  private immediate: NodeJS.Immediate | null = null;
  private timer: NodeJS.Timeout | null = null;
  private closed = false;

  constructor(private readonly opts: IntakeOptions) {
    const dhPerSecond = opts.dhPerSecond ?? DEFAULT_DH_PER_SECOND;
    if (!Number.isInteger(dhPerSecond) || dhPerSecond < DH_PER_INITIATION) {
      throw new RangeError(`the Diffie-Hellman budget must be an integer of at least ${DH_PER_INITIATION} per second, got ${dhPerSecond}`);
    }
    this.nowMs = opts.nowMs ?? (() => performance.now());
    this.monotonicNs = opts.monotonicNs ?? process.hrtime.bigint;
    this.queue = new FairQueue(opts.queueSize ?? QUEUE_SIZE, opts.perSource ?? QUEUE_PER_SOURCE);
    this.budget = new TokenBucket(dhPerSecond, Math.max(DH_PER_INITIATION, dhPerSecond * BUDGET_BURST_SECONDS), this.nowMs);
    this.maxConcurrent = opts.maxConcurrent ?? MAX_CONCURRENT_ADMISSIONS;
  }

  /** Initiations waiting for their turn. */
  get queued(): number {
    return this.queue.size;
  }

  /** Admissions past verification, under way. */
  get inProgress(): number {
    return this.active;
  }

  offer(events: readonly CaptureEvent[]): void {
    for (const event of events) {
      const admitted = this.closed ? 'queue_full' : this.queue.push(sourceKey(event), event);
      // Displaced: this one waits, the newest of a longer FIFO was dropped.
      if (admitted !== 'queued') this.opts.onDrop(admitted === 'displaced' ? 'queue_full' : admitted);
    }
    this.schedule();
  }

  /** Stops taking work; admissions under way finish on their own. */
  close(): void {
    this.closed = true;
    if (this.immediate !== null) clearImmediate(this.immediate);
    if (this.timer !== null) clearTimeout(this.timer);
    this.immediate = this.timer = null;
    while (this.queue.shift() !== undefined) this.opts.onDrop('queue_full');
  }

  private schedule(): void {
    if (this.closed || this.immediate !== null || this.timer !== null || this.queue.size === 0) return;
    if (this.active >= this.maxConcurrent) return; // the next admission to finish calls again
    this.immediate = setImmediate(this.pump);
  }

  private readonly pump = (): void => {
    this.immediate = this.timer = null;
    const sliceEnd = this.nowMs() + SLICE_MS;
    while (this.queue.size > 0 && this.active < this.maxConcurrent) {
      const wait = this.budget.msUntil(DH_PER_INITIATION);
      if (wait > 0) {
        this.timer = setTimeout(this.pump, Math.max(1, Math.ceil(wait)));
        return;
      }
      const event = this.queue.shift()!;
      if (this.monotonicNs() - event.arrivalNs > this.staleNs) {
        this.opts.onDrop('stale');
        continue;
      }
      this.budget.take(DH_PER_INITIATION);
      this.active++;
      this.opts.handle(event).then(this.finished, this.failed);
      if (this.nowMs() >= sliceEnd) break;
    }
    this.schedule();
  };

  /**
   * Resolves once no admission is under way, or after `timeoutMs`: true if
   * they all finished. With close(), what a stop waits for.
   */
  idle(timeoutMs: number): Promise<boolean> {
    if (this.active === 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), timeoutMs);
      this.idleWaiters.push(() => {
        clearTimeout(timer);
        resolve(true);
      });
    });
  }

  private readonly finished = (): void => {
    this.active--;
    if (this.active === 0) for (const wake of this.idleWaiters.splice(0)) wake();
    this.schedule();
  };

  /** handle() is not meant to reject; if it does, the slot is still freed. */
  private readonly failed = (err: unknown): void => {
    this.finished();
    this.opts.onError?.(err);
  };
}
