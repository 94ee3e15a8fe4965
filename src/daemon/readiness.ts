/**
 * Readiness (GET /readyz) of the data plane, from what is already known
 * where possible: a probe comes every few seconds from every prober, and a
 * read of the device at 100,000 peers costs 0.3-0.5 s of CPU.
 *
 * - device: a read of the device (the sweeper's, the reconciler's) that
 *   succeeded lately, with no failed read since, proves it answers; only
 *   when there is none does the probe read it itself (probes at once share
 *   that read).
 * - capture: every attachment's BPF link still holds its interface, the ring
 *   buffer is watched, and the watcher keeps up: what the XDP program had
 *   put in the ring at a mark at least RING_DRAIN_BOUND_MS old has been
 *   taken out since.
 * The store check is the API's (store.ping()).
 */
import type { CaptureHealth } from '../capture/addon.js';
import type { WireGuardDevice } from '../install/device.js';
import type { Logger } from '../telemetry/log.js';

/**
 * A record captured this long ago and still in the ring means the watcher
 * is stuck: a working one takes records out within a turn of the event
 * loop (1,024 a turn), and a loop blocked this long fails the probe anyway.
 */
export const RING_DRAIN_BOUND_MS = 2_000;

/** When the device was last read, and last failed to be read (monotonic ms). */
export interface DeviceReads {
  lastOkAt: number | null;
  lastFailedAt: number | null;
}

/** 'ok': a read this recent, not followed by a failure, proves the device answers; 'read': read it now. */
export function deviceCheck(reads: DeviceReads, now: number, freshMs: number): 'ok' | 'read' {
  if (reads.lastOkAt === null) return 'read';
  if (reads.lastFailedAt !== null && reads.lastFailedAt >= reads.lastOkAt) return 'read';
  return now - reads.lastOkAt <= freshMs ? 'ok' : 'read';
}

/** What the XDP program had captured at a moment (monotonic ms). */
export interface RingMark {
  captured: bigint;
  at: number;
}

/** What captureCheck carries from one probe to the next. */
export interface RingWatch {
  mark: RingMark | null;
  /** The latest judgement of the watcher; true until there is evidence. */
  keepingUp: boolean;
}

export interface CaptureVerdict {
  ok: boolean;
  /** What is wrong, for the log; empty when ok. */
  problems: string[];
  watch: RingWatch;
}

/**
 * Pure. `health` is null once the capture is closed. The watcher is judged
 * against the mark once it is at least `drainBoundMs` old, then a new mark
 * is taken; until then the previous judgement stands.
 */
export function captureCheck(health: CaptureHealth | null, watch: RingWatch, now: number, drainBoundMs = RING_DRAIN_BOUND_MS): CaptureVerdict {
  if (health === null) return { ok: false, problems: ['capture closed'], watch };
  const problems: string[] = [];
  if (health.links.length === 0) problems.push('attached to no device');
  for (const link of health.links) if (!link.live) problems.push(`detached from ${link.ifname}`);
  if (!health.polling) problems.push('ring buffer not watched');

  let next = watch;
  if (watch.mark === null) {
    next = { mark: { captured: health.captured, at: now }, keepingUp: watch.keepingUp };
  } else if (now - watch.mark.at >= drainBoundMs) {
    next = { mark: { captured: health.captured, at: now }, keepingUp: health.delivered >= watch.mark.captured };
  }
  if (!next.keepingUp) problems.push(`ring buffer not drained within ${drainBoundMs} ms (captured ${health.captured}, delivered ${health.delivered})`);
  return { ok: problems.length === 0, problems, watch: next };
}

/**
 * Keeps the times of device reads (through wrap()), and answers whether
 * the device answers, reading it only when no recent read says so.
 */
export class DeviceLiveness implements DeviceReads {
  lastOkAt: number | null = null;
  lastFailedAt: number | null = null;
  private reading: Promise<boolean> | null = null;

  constructor(
    /** A read newer than this proves the device answers. */
    private readonly freshMs: number,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** The device, with its reads (getDevice, listPeers) timed here; writes pass through. */
  wrap(device: WireGuardDevice): WireGuardDevice {
    return {
      kind: device.kind,
      name: device.name,
      getDevice: () => this.timed(device.getDevice()),
      listPeers: () => this.timed(device.listPeers()),
      setPeers: (peers) => device.setPeers(peers),
      removePeers: (keys) => device.removePeers(keys),
      close: () => device.close(),
    };
  }

  /**
   * True when a recent read succeeded; else reads `device` (the device
   * itself, not wrap()'s) and says whether that worked. Callers at once
   * share one read.
   */
  answers(device: WireGuardDevice): Promise<boolean> {
    if (deviceCheck(this, this.now(), this.freshMs) === 'ok') return Promise.resolve(true);
    this.reading ??= this.timed(device.listPeers())
      .then(
        () => true,
        () => false,
      )
      .finally(() => {
        this.reading = null;
      });
    return this.reading;
  }

  private timed<T>(read: Promise<T>): Promise<T> {
    return read.then(
      (value) => {
        this.lastOkAt = this.now();
        return value;
      },
      (err: unknown) => {
        this.lastFailedAt = this.now();
        throw err;
      },
    );
  }
}

export interface ReadinessDeps {
  capture: { readonly closed: boolean; health(): CaptureHealth };
  /** The device itself, read when no recent read says it answers. */
  device: WireGuardDevice;
  liveness: DeviceLiveness;
  log: Logger;
  /** What an operator should know that does not make the gateway unready (a store reset in force). */
  warnings?: () => string[];
}

/** The data plane's answer to GET /readyz: the device answers and the capture works. */
export class Readiness {
  private ringWatch: RingWatch = { mark: null, keepingUp: true };
  private wasReady: boolean | null = null;

  constructor(private readonly deps: ReadinessDeps) {}

  async check(): Promise<{ ready: boolean; checks: Record<string, boolean>; warnings?: string[] }> {
    const { capture, device, liveness, log } = this.deps;
    const verdict = captureCheck(capture.closed ? null : capture.health(), this.ringWatch, performance.now());
    this.ringWatch = verdict.watch;
    const checks = { device: await liveness.answers(device), capture: verdict.ok };
    const ready = checks.device && checks.capture;
    // Probes come every few seconds: a line when readiness changes, not per probe.
    if (ready !== this.wasReady) {
      const line = { checks, problems: verdict.problems };
      if (ready) log.info(line, 'data plane ready');
      else log.warn(line, 'data plane not ready');
      this.wasReady = ready;
    }
    const warnings = this.deps.warnings?.() ?? [];
    return { ready, checks, ...(warnings.length > 0 && { warnings }) };
  }
}
