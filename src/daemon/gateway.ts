/**
 * `wgjit run`: wiring only. Opens the device, builds the responder from the
 * device's own key, connects the store, attaches the capture, and serves the
 * API. Stages live in their folders; their order lives in pipeline.ts, the
 * lifecycle's timings in lifecycle/timings.ts.
 */
import type { FastifyInstance } from 'fastify';
import { XdpCapture } from '../capture/addon.js';
import type { CaptureEvent } from '../capture/types.js';
import { createNativeResponder } from '../handshake/native.js';
import { wipe } from '../handshake/keys.js';
import { RefusalCache } from '../authorize/refusals.js';
import { PeerStore } from '../authorize/store.js';
import { buildApp } from '../api/app.js';
import type { GatewayView } from '../api/gateway-view.js';
import { openDevice } from '../install/select.js';
import { Replayer } from '../replay/replayer.js';
import { InstalledPeers } from '../lifecycle/installed.js';
import { Sweeper } from '../lifecycle/sweeper.js';
import { StoreSync } from '../lifecycle/store-sync.js';
import { Reconciler } from '../lifecycle/reconciler.js';
import { DEVICE_READ_FRESH_MS, PROVISIONAL_GRACE_MS, SWEEP_INTERVAL_MS } from '../lifecycle/timings.js';
import { removePeers } from '../lifecycle/removal.js';
import { Intake } from '../intake/intake.js';
import { Pipeline } from '../pipeline.js';
import type { Logger } from '../telemetry/log.js';
import { createMetrics, type Metrics } from '../telemetry/metrics.js';
import { gatewayStats } from '../telemetry/stats.js';
import { captureCheck, DeviceLiveness, type RingWatch } from './readiness.js';

/** How long the start waits for the store before reconciling (it goes on without it). */
export const STORE_WAIT_AT_START_MS = 5_000;
/** How long a stop waits for admissions under way to finish. */
export const DRAIN_TIMEOUT_MS = 5_000;

export interface GatewayOptions {
  interface: string;
  captureDevs: string[];
  redis: string;
  api: { host: string; port: number };
  token: string;
  backend: 'auto' | 'uapi' | 'netlink';
  xdpMode: 'auto' | 'native' | 'generic';
  idleTimeoutS: number;
  /** Seconds between reconciliations with the store (src/lifecycle/reconciler.ts). */
  reconcileIntervalS: number;
  /** Initiations captured per second and at once per source, in XDP (0: no limit). */
  sourceRate: number;
  sourceBurst: number;
  /** Diffie-Hellman budget per second (src/intake). */
  dhPerSecond: number;
  replay: boolean;
  uapiDir: string;
  log: Logger;
}

export interface RunningGateway {
  app: FastifyInstance;
  pipeline: Pipeline;
  metrics: Metrics;
  stop(): Promise<void>;
}

export async function startGateway(opts: GatewayOptions): Promise<RunningGateway> {
  const { log } = opts;
  const metrics = createMetrics();
  const cleanups: Array<() => Promise<void> | void> = [];
  const cleanup = async () => {
    for (const fn of cleanups.reverse()) {
      try {
        await fn();
      } catch (err) {
        log.warn({ err: (err as Error).message }, 'shutdown step failed');
      }
    }
  };

  try {
    const deviceLog = log.child({ component: 'device' });
    const rawDevice = await openDevice(opts);
    cleanups.push(() => rawDevice.close());
    // Every read of the device is timed, so readiness needs no read of its own.
    const liveness = new DeviceLiveness(DEVICE_READ_FRESH_MS);
    const device = liveness.wrap(rawDevice);
    const info = await device.getDevice();
    // The addon's responder: same checks as handshake/responder.ts at a third
    // of the cost (bench/verify.ts); it copies the key, so ours is wiped now.
    const responder = createNativeResponder(info.privateKey);
    cleanups.push(() => responder.close());
    wipe(info.privateKey);
    deviceLog.info({ interface: info.name, publicKey: info.publicKey, listenPort: info.listenPort, backend: device.kind, peers: info.peers.length }, 'device opened');

    const installed = new InstalledPeers();
    const store = PeerStore.connect(opts.redis);
    cleanups.push(() => store.close());

    const replayer = opts.replay ? new Replayer() : null;
    if (replayer !== null) cleanups.push(() => replayer.close());

    const refusals = new RefusalCache();
    const pipeline = new Pipeline({
      verifier: responder,
      refusals,
      authorize: (key, now) => store.authorize(key, now),
      advanceTimestamp: (key, timestamp) => store.advanceTimestamp(key, timestamp),
      device,
      replayer,
      installed,
      log: log.child({ component: 'pipeline' }),
      metrics,
    });

    // Before the capture starts: take over the peers an earlier run left on
    // the device (the authorized ones, with their state), remove the others,
    // so nothing leaks and nothing is installed twice.
    // A store that is not there yet leaves them as they are; the periodic
    // pass takes over once it is.
    const reconciler = new Reconciler({
      device,
      store,
      installed,
      log: log.child({ component: 'lifecycle' }),
      metrics,
    });
    await store.whenReady(STORE_WAIT_AT_START_MS);
    await reconciler.reconcile();

    const captureLog = log.child({ component: 'capture' });
    // The capture's default ring (DEFAULT_RING_BYTES, 1 MiB): about 5,000 records.
    const capture = XdpCapture.open({ listenPort: info.listenPort, sourceRate: opts.sourceRate, sourceBurst: opts.sourceBurst });
    cleanups.push(() => capture.close());
    for (const dev of opts.captureDevs) {
      const attached = capture.attach(dev, opts.xdpMode);
      captureLog.info({ device: dev, ifindex: attached.ifindex, mode: attached.mode }, 'capture attached');
    }
    const intakeLog = log.child({ component: 'intake' });
    const intake = new Intake({
      handle: (event) => pipeline.handle(event),
      dhPerSecond: opts.dhPerSecond,
      onDrop: (reason) => {
        metrics.captureDrops.inc({ reason });
        // Unverified: anyone can cause these, so debug only (counted above).
        intakeLog.debug({ reason }, 'initiation dropped before verification');
      },
      onError: (err) => intakeLog.error({ err: (err as Error).message }, 'admission failed unexpectedly'),
    });
    // Read at scrape time: the kernel's counters and the live table, never a copy that lags.
    metrics.observe({
      xdpStats: () => (capture.closed ? null : capture.stats()),
      badRecords: () => capture.badRecords,
      installedPeers: () => installed.byState(),
      intakeQueued: () => intake.queued,
    });
    // On stop: no new admissions; the ones under way finish (bounded) before
    // the store and the device close under them.
    cleanups.push(async () => {
      intake.close();
      if (!(await intake.idle(DRAIN_TIMEOUT_MS))) log.warn({ inProgress: intake.inProgress }, 'stop: admissions still under way after the drain timeout');
    });
    capture.start((events: CaptureEvent[]) => intake.offer(events));

    reconciler.start(opts.reconcileIntervalS * 1000);
    cleanups.push(() => reconciler.stop());

    const sweeper = new Sweeper(
      device,
      installed,
      { idleTimeoutMs: opts.idleTimeoutS * 1000, provisionalGraceMs: PROVISIONAL_GRACE_MS },
      log.child({ component: 'lifecycle' }),
      metrics,
    );
    sweeper.start(SWEEP_INTERVAL_MS);
    cleanups.push(() => sweeper.stop());

    const sync = new StoreSync({
      store,
      device,
      installed,
      log: log.child({ component: 'store-sync' }),
      metrics,
      onChange: (key) => refusals.delete(key),
      onConnected: () => void reconciler.reconcile(),
    });
    await sync.start();
    cleanups.push(() => sync.close());

    const apiLog = log.child({ component: 'api' });
    const readinessLog = log.child({ component: 'readiness' });
    let ringWatch: RingWatch = { mark: null, keepingUp: true };
    let wasReady: boolean | null = null;
    const identity = { interface: info.name, publicKey: info.publicKey, listenPort: info.listenPort, backend: device.kind };
    const view: GatewayView = {
      listPeers: async ({ fresh }) => {
        // The sweep (one device read) brings state, counters and allowed IPs up to date.
        if (fresh) await sweeper.sweep();
        return [...installed.values()].map((p) => ({
          publicKey: p.publicKey,
          endpoint: p.endpoint === null ? null : p.endpoint.address.includes(':') ? `[${p.endpoint.address}]:${p.endpoint.port}` : `${p.endpoint.address}:${p.endpoint.port}`,
          allowedIPs: [...p.allowedIPs],
          state: p.state,
          installedAt: new Date(p.installedAt).toISOString(),
          lastHandshakeAt: p.lastHandshakeAt === null ? null : new Date(p.lastHandshakeAt).toISOString(),
          rxBytes: Number(p.rxBytes),
          txBytes: Number(p.txBytes),
        }));
      },
      info: () => ({ ...identity, installedPeers: installed.size }),
      removePeer: async (publicKey, reason) => {
        if (!installed.has(publicKey)) return false;
        await removePeers({ device, installed, metrics }, [{ publicKey, reason }], apiLog, 'peer removed from the device through the API');
        return true;
      },
      stats: () => gatewayStats(metrics),
      ready: async () => {
        const verdict = captureCheck(capture.closed ? null : capture.health(), ringWatch, performance.now());
        ringWatch = verdict.watch;
        const checks = { device: await liveness.answers(rawDevice), capture: verdict.ok };
        const ready = checks.device && checks.capture;
        // Probes come every few seconds: a line when readiness changes, not per probe.
        if (ready !== wasReady) {
          const line = { checks, problems: verdict.problems };
          if (ready) readinessLog.info(line, 'data plane ready');
          else readinessLog.warn(line, 'data plane not ready');
          wasReady = ready;
        }
        return { ready, checks };
      },
    };

    const app = await buildApp({ store, token: opts.token, gateway: view, logger: apiLog, registry: metrics.registry });
    cleanups.push(() => app.close());
    await app.listen({ host: opts.api.host, port: opts.api.port });
    log.info({ listen: `${opts.api.host}:${opts.api.port}` }, 'API listening');

    return { app, pipeline, metrics, stop: cleanup };
  } catch (err) {
    await cleanup();
    throw err;
  }
}
