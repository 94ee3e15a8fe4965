/**
 * Prometheus metrics (prom-client), one registry per process: wgjit's own
 * under wgjit_*, and prom-client's process_* and nodejs_* under their stock
 * names, so stock dashboards work. Counters carry the reason as a label with
 * a fixed, small set of values.
 *
 * Counters the kernel or a table already keeps (the XDP program's exits,
 * the installed peers) are read when scraped (collect()), from the sources
 * given to observe(); between scrapes they cost nothing.
 *
 * These are wgjit's only counts: every event is counted here once, by the
 * stage where it happens, and GET /v1/gateway/stats reads the same
 * counters under its flat names (stats.ts).
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { DeviceError } from '../install/device.js';
import { WGJIT_VERSION } from '../api/version.js';

/** The XDP program's exits that lose an initiation before verification: also counted in wgjit_capture_drops_total. */
export const XDP_DROP_REASONS = ['rate_limited', 'ringbuf_full'] as const;

/** What is read at scrape time; each source may be absent (a test, or before the capture is open). */
export interface MetricSources {
  /** The XDP program's exit counters, summed over CPUs; null once the capture is closed. */
  xdpStats?: () => Readonly<Record<string, bigint>> | null;
  /** Records the capture took from the ring that did not parse. */
  badRecords?: () => number;
  /** Peers wgjit holds on the device, by state. */
  installedPeers?: () => { provisional: number; confirmed: number };
  /** Initiations waiting in the intake queue. */
  intakeQueued?: () => number;
  /** The peer store's state (PeerStore.health()): up as logged, and the wall-clock ms of its last successful round trip. */
  store?: () => { up: boolean; lastSuccessMs: number | null };
}

export interface Metrics {
  registry: Registry;
  /** result: the outcome; verified: whether the Noise verification passed (rejected_* did not). */
  initiations: Counter<'result' | 'verified'>;
  installs: Counter<'result'>;
  replays: Counter<'result'>;
  removals: Counter<'reason'>;
  updates: Counter;
  holds: Counter<'result'>;
  routeChanges: Counter<'op' | 'result'>;
  refusalsCached: Counter;
  captureDrops: Counter<'reason'>;
  xdpPackets: Counter<'result'>;
  deviceErrors: Counter<'operation' | 'code'>;
  admissionLogsSuppressed: Counter<'result'>;
  installedPeers: Gauge<'state'>;
  intakeQueued: Gauge;
  storeUp: Gauge;
  storeLastSuccess: Gauge;
  coldConnectSeconds: Histogram;
  storeSeconds: Histogram;
  verifySeconds: Histogram;
  installSeconds: Histogram;
  confirmSeconds: Histogram;
  storeReset: Gauge;
  timestampsWrittenBack: Counter;
  /** Unix time of the reconciler's last pass that ran to its end (src/lifecycle/reconciler.ts). */
  lastReconciliation: Gauge;
  /** Sets (or replaces) what is read at scrape time. */
  observe(sources: MetricSources): void;
}

/**
 * `processMetrics`: prom-client's process_* and nodejs_*; `libbpf`: the
 * libbpf version for wgjit_build_info ("none" where no addon is loaded,
 * `wgjit api`; "unknown" where the addon does not say).
 */
export function createMetrics(opts: { processMetrics?: boolean; libbpf?: string } = {}): Metrics {
  const registry = new Registry();
  if (opts.processMetrics ?? true) collectDefaultMetrics({ register: registry });
  const registers = [registry];
  new Gauge({ name: 'wgjit_build_info', help: 'Always 1; the labels say which release, Node.js and libbpf serve', labelNames: ['version', 'node', 'libbpf'], registers }).set(
    { version: WGJIT_VERSION, node: process.versions.node, libbpf: opts.libbpf ?? 'none' },
    1,
  );
  let sources: MetricSources = {};
  /** Kernel counts taken into wgjit_capture_drops_total so far (the counter only goes up by the difference). */
  const xdpDropsTaken = new Map<string, bigint>();
  let badRecordsTaken = 0;

  const captureDrops = new Counter({
    name: 'wgjit_capture_drops_total',
    help: 'Initiations lost before verification, by reason: rate_limited and ringbuf_full in XDP (not captured; the packet still reaches the device), bad_record (a ring record that did not parse), queue_full, source_full and stale in the intake',
    labelNames: ['reason'],
    registers,
    collect() {
      const xdp = sources.xdpStats?.() ?? null;
      if (xdp !== null) {
        for (const reason of XDP_DROP_REASONS) {
          const now = xdp[reason] ?? 0n;
          const taken = xdpDropsTaken.get(reason) ?? 0n;
          if (now > taken) this.inc({ reason }, Number(now - taken));
          xdpDropsTaken.set(reason, now > taken ? now : taken);
        }
      }
      const bad = sources.badRecords?.() ?? badRecordsTaken;
      if (bad > badRecordsTaken) this.inc({ reason: 'bad_record' }, bad - badRecordsTaken);
      badRecordsTaken = Math.max(bad, badRecordsTaken);
    },
  });

  return {
    registry,
    initiations: new Counter({
      name: 'wgjit_initiations_total',
      help: 'Handshake initiations the daemon handled, by outcome (installed, or the reason they were not) and whether they passed the Noise verification',
      labelNames: ['result', 'verified'],
      registers,
    }),
    installs: new Counter({ name: 'wgjit_installs_total', help: 'Peer installs into the device, by result', labelNames: ['result'], registers }),
    replays: new Counter({ name: 'wgjit_replays_total', help: 'Captured initiations re-injected, by result', labelNames: ['result'], registers }),
    removals: new Counter({
      name: 'wgjit_peer_removals_total',
      help: 'Peers removed from the device, by reason: idle, unconfirmed, expired (the record\'s expiresAt passed), revoked (deleted or disabled in the store), operator (DELETE /v1/gateway/peers), moved (another gateway took it), replay_reset (an operator cleared its replay state)',
      labelNames: ['reason'],
      registers,
    }),
    updates: new Counter({
      name: 'wgjit_peer_updates_total',
      help: 'Installed peers rewritten in place on the device because their record changed in the store (a store event or a reconciliation)',
      registers,
    }),
    holds: new Counter({
      name: 'wgjit_peer_holds_total',
      help: 'Takes of a confirmed peer in the store, by result: taken (this gateway holds it now), kept (it held it already), refused (another gateway holds it with a newer session), gone (no record), failed (store unavailable)',
      labelNames: ['result'],
      registers,
    }),
    routeChanges: new Counter({
      name: 'wgjit_route_changes_total',
      help: 'Routes to peers (--route-table) added or removed in the kernel, by op (add, remove) and result (ok, failed)',
      labelNames: ['op', 'result'],
      registers,
    }),
    refusalsCached: new Counter({
      name: 'wgjit_refusals_cached_total',
      help: 'Refusals (unknown, disabled, expired) answered from the refusal cache without a store lookup; also counted in wgjit_initiations_total',
      registers,
    }),
    deviceErrors: new Counter({
      name: 'wgjit_device_errors_total',
      help: 'Failed WireGuard device operations, by operation and DeviceError code',
      labelNames: ['operation', 'code'],
      registers,
    }),
    captureDrops,
    xdpPackets: new Counter({
      name: 'wgjit_xdp_packets_total',
      help: 'Frames the XDP program saw, by exit (each counted once): captured, or why not',
      labelNames: ['result'],
      registers,
      collect() {
        const xdp = sources.xdpStats?.() ?? null;
        if (xdp === null) return;
        // The kernel keeps the counts; a scrape copies them.
        this.reset();
        for (const [result, n] of Object.entries(xdp)) this.inc({ result }, Number(n));
      },
    }),
    admissionLogsSuppressed: new Counter({
      name: 'wgjit_admission_log_lines_suppressed_total',
      help: 'Admission log lines not written because their outcome exceeded its rate bound (ADMISSION_LOG_LINES_PER_SECOND), by outcome',
      labelNames: ['result'],
      registers,
    }),
    installedPeers: new Gauge({
      name: 'wgjit_installed_peers',
      help: 'Peers wgjit holds on the device, by state',
      labelNames: ['state'],
      registers,
      collect() {
        const peers = sources.installedPeers?.();
        if (peers === undefined) return;
        this.set({ state: 'provisional' }, peers.provisional);
        this.set({ state: 'confirmed' }, peers.confirmed);
      },
    }),
    intakeQueued: new Gauge({
      name: 'wgjit_intake_queued',
      help: 'Captured initiations waiting in the intake queue for verification',
      registers,
      collect() {
        const queued = sources.intakeQueued?.();
        if (queued !== undefined) this.set(queued);
      },
    }),
    storeUp: new Gauge({
      name: 'wgjit_store_up',
      help: 'Whether the peer store (Redis) answers: 1, or 0 while it is unreachable or not serving (and before it first answered); flips with the store\'s loss and recovery log lines',
      registers,
      collect() {
        const store = sources.store?.();
        if (store !== undefined) this.set(store.up ? 1 : 0);
      },
    }),
    storeLastSuccess: new Gauge({
      name: 'wgjit_store_last_success_timestamp_seconds',
      help: 'Unix time of the last successful round trip to the peer store (a PING every second while connected, or a reconnect); 0 before the first',
      registers,
      collect() {
        const store = sources.store?.();
        if (store !== undefined) this.set(store.lastSuccessMs === null ? 0 : store.lastSuccessMs / 1000);
      },
    }),
    coldConnectSeconds: new Histogram({
      name: 'wgjit_cold_connect_seconds',
      help: 'From the initiation reaching the uplink (XDP) to its replay into the device',
      buckets: [0.0005, 0.001, 0.002, 0.003, 0.005, 0.01, 0.015, 0.025, 0.05, 0.1, 0.25, 1],
      registers,
    }),
    storeSeconds: new Histogram({
      name: 'wgjit_store_request_seconds',
      help: 'Latency of peer store lookups on the admission path',
      buckets: [0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.1, 0.5],
      registers,
    }),
    verifySeconds: new Histogram({
      name: 'wgjit_verify_seconds',
      help: 'Noise verification of one initiation (mac1 to timestamp), CPU bound',
      buckets: [0.00005, 0.0001, 0.0002, 0.0005, 0.001, 0.002, 0.005],
      registers,
    }),
    installSeconds: new Histogram({
      name: 'wgjit_install_seconds',
      help: 'Latency of one peer install into the WireGuard device',
      buckets: [0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.1, 0.5],
      registers,
    }),
    confirmSeconds: new Histogram({
      name: 'wgjit_confirm_seconds',
      help: 'From a peer\'s install to the device read that found its handshake completed (the client confirmed the session here)',
      buckets: [0.05, 0.1, 0.2, 0.3, 0.5, 1, 2, 5, 15],
      registers,
    }),
    storeReset: new Gauge({
      name: 'wgjit_store_reset',
      help: '1 while the peer store is known to have lost its data and no operator has confirmed it (wgjit store confirm-reset): no peer is removed for being unknown to the store meanwhile',
      registers,
    }),
    timestampsWrittenBack: new Counter({
      name: 'wgjit_timestamps_written_back_total',
      help: 'Greatest initiation timestamps this gateway wrote back to a store that had lost them (after a reset, or a failover after an outage)',
      registers,
    }),
    lastReconciliation: new Gauge({
      name: 'wgjit_last_reconciliation_timestamp_seconds',
      help: 'Unix time of the last reconciliation of the device with the store that ran to its end; 0 before the first',
      registers,
    }),
    observe(next: MetricSources): void {
      sources = next;
    },
  };
}

/** The label for a failed device operation: the DeviceError code, or 'other'. */
export function deviceErrorCode(err: unknown): string {
  return err instanceof DeviceError ? err.code : 'other';
}
