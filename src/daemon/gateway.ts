/**
 * `wgjit run`: wiring only. Opens the device, builds the responder from the
 * device's own key, connects the store, takes over what an earlier run left
 * on the device, attaches the capture, starts the lifecycle, and serves the
 * API. Stages live in their folders; their order lives in pipeline.ts, the
 * lifecycle's timings in lifecycle/timings.ts, what the API sees in view.ts.
 */
import type { FastifyInstance } from 'fastify';
import { XdpCapture } from '../capture/addon.js';
import type { CaptureEvent } from '../capture/types.js';
import { createNativeResponder } from '../handshake/native.js';
import { wipe } from '../handshake/keys.js';
import { RefusalCache } from '../authorize/refusals.js';
import { PeerStore } from '../authorize/store.js';
import { buildApp, buildMetricsApp } from '../api/app.js';
import { openDevice } from '../install/select.js';
import { Replayer } from '../replay/replayer.js';
import { InstalledPeers } from '../lifecycle/installed.js';
import { Sweeper } from '../lifecycle/sweeper.js';
import { StoreSync } from '../lifecycle/store-sync.js';
import { Reconciler } from '../lifecycle/reconciler.js';
import { Confirmer } from '../lifecycle/confirmer.js';
import { StoreGuard } from '../lifecycle/store-guard.js';
import { StoreEpoch, type ResetMarker } from '../authorize/epoch.js';
import { removePeers } from '../lifecycle/removal.js';
import { Holders } from '../fleet/holders.js';
import { Gateways } from '../fleet/gateways.js';
import { FleetMember } from '../fleet/member.js';
import { Presence } from '../fleet/presence.js';
import { InterfaceAddresses } from '../fleet/identities.js';
import { WGJIT_VERSION } from '../api/version.js';
import { interfaceAddresses, PeerRoutes } from '../route/routes.js';
import { RouteSync } from '../route/route-sync.js';
import { DEVICE_READ_FRESH_MS, PROVISIONAL_GRACE_MS, RX_STILL_MS, SWEEP_INTERVAL_MS } from '../lifecycle/timings.js';
import { Intake } from '../intake/intake.js';
import { Pipeline } from '../pipeline.js';
import type { Logger } from '../telemetry/log.js';
import { createMetrics, type Metrics } from '../telemetry/metrics.js';
import { DeviceLiveness, Readiness } from './readiness.js';
import { gatewayView } from './view.js';

/** How long a stop waits for admissions under way to finish. */
export const DRAIN_TIMEOUT_MS = 5_000;

/** Named as the settings of `wgjit run` (src/cli/settings.ts), which pass on as they are. */
export interface GatewayOptions {
  interface: string;
  /** This gateway's name in the fleet (src/fleet/gateway-id.ts). */
  gatewayId: string;
  /** The table peers' routes go to (src/route/); null: no routes. */
  routeTable: number | null;
  /** Devices the XDP capture attaches to. */
  captureDev: string[];
  /** The --redis URL (src/authorize/redis-url.ts). */
  redis: string;
  /** From --redis-password-file; never logged. */
  redisPassword?: string;
  /** Replicas each API write waits for (WAIT); 0: none. */
  redisWaitReplicas: number;
  /** Where the API listens. */
  apiListen: { host: string; port: number };
  /** Where /metrics, /healthz and /readyz are served again without a token (and no /v1); absent: nowhere else. */
  metricsListen?: { host: string; port: number } | undefined;
  token: string;
  backend: 'auto' | 'uapi' | 'netlink';
  xdpMode: 'auto' | 'native' | 'generic';
  /** Seconds without a handshake before a peer is removed. */
  idleTimeout: number;
  /** Seconds between reconciliations with the store (src/lifecycle/reconciler.ts). */
  reconcileInterval: number;
  /** Initiations stamped more than this many seconds in the past are refused; 0: the store's retention. */
  maxTimestampAge: number;
  /** Initiations captured per second and at once per source, in XDP (0: no limit). */
  sourceRate: number;
  sourceBurst: number;
  /** Diffie-Hellman budget per second (src/intake). */
  dhBudget: number;
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
  // The addon does not report its libbpf's version.
  const metrics = createMetrics({ libbpf: 'unknown' });
  const cleanups = new Cleanups(log);
  try {
    // The device and the responder; the store; the pipeline over them.
    const { rawDevice, device, liveness, info, responder } = await openGatewayDevice(opts, cleanups);
    const store = PeerStore.connect(opts.redis, { ...(opts.redisPassword !== undefined && { password: opts.redisPassword }), waitReplicas: opts.redisWaitReplicas, log });
    cleanups.push(() => store.close());
    const lifecycleLog = log.child({ component: 'lifecycle' });
    // The fleet: peers are taken as their clients confirm here, let go as they leave.
    const fleetLog = log.child({ component: 'fleet', gatewayId: opts.gatewayId });
    const installed = new InstalledPeers();
    const fleet = new FleetMember({
      gatewayId: opts.gatewayId,
      holders: new Holders(store),
      installed,
      remove: (removals) => removePeers({ device, installed, metrics }, removals, fleetLog, 'peer moved to another gateway: removed from the device'),
      log: fleetLog,
      metrics,
    });
    installed.listen(fleet);
    let routes: RouteSync | null = null;
    if (opts.routeTable !== null) {
      const table = await PeerRoutes.open(opts.interface, opts.routeTable);
      cleanups.push(() => table.close());
      const sync = new RouteSync(table, installed, log.child({ component: 'routes', table: opts.routeTable }), metrics);
      installed.listen(sync);
      cleanups.push(() => sync.idle());
      routes = sync;
    }
    const confirmer = new Confirmer({ device, installed, metrics, log: lifecycleLog, graceMs: PROVISIONAL_GRACE_MS });
    cleanups.push(() => confirmer.close());
    const replayer = opts.replay ? new Replayer() : null;
    if (replayer !== null) cleanups.push(() => replayer.close());
    const refusals = new RefusalCache();
    const pipeline = new Pipeline({
      verifier: responder,
      refusals,
      authorize: (key, now) => store.authorize(key, now),
      advanceTimestamp: (key, timestamp, admitting) => store.advanceTimestamp(key, timestamp, admitting ? opts.gatewayId : ''),
      confirmer,
      device,
      replayer,
      installed,
      log: log.child({ component: 'pipeline' }),
      metrics,
      ...(opts.maxTimestampAge > 0 && { maxTimestampAgeMs: opts.maxTimestampAge * 1000 }),
    });
    // A store that lost its data must not make this gateway drop every peer (src/lifecycle/store-guard.ts).
    const guard = new StoreGuard({
      epoch: new StoreEpoch(store),
      gatewayId: opts.gatewayId,
      evidence: () => installed.size > 0 || info.peers.length > 0,
      timestamps: (sinceMs) => pipeline.keptTimestamps(sinceMs),
      advanceTimestamp: (key, timestamp) => store.advanceTimestamp(key, timestamp),
      onConfirmed: () => void reconciler.reconcile(),
      log: log.child({ component: 'store-guard' }),
      metrics,
    });
    store.onChange((change) => guard.storeChanged(change.to === 'up'));

    // Before the capture starts: take over the peers an earlier run left on
    // the device (the authorized ones, with their state), remove the others,
    // so nothing leaks and nothing is installed twice.
    // A store that is not there yet leaves them as they are; the periodic
    // pass takes over once it is.
    const reconciler = new Reconciler({ device, store, installed, guard, fleet, ...(routes !== null && { routes }), log: lifecycleLog, metrics });
    // A store still in an earlier release's layout would answer "unknown" for every peer.
    await store.readyAtStart();
    // The interface's addresses, which no peer may take: in the heartbeat for the fleet's writes, and for this API's.
    const ownAddresses = new InterfaceAddresses(opts.interface, () => interfaceAddresses(opts.interface), fleetLog);
    await ownAddresses.refresh();
    ownAddresses.start();
    cleanups.push(() => ownAddresses.stop());
    // Before the device is touched: a gateway id alive elsewhere is refused here.
    const presence = new Presence({
      gateways: new Gateways(store),
      id: opts.gatewayId,
      version: WGJIT_VERSION,
      publicKey: info.publicKey?.toString() ?? '',
      interface: opts.interface,
      addresses: () => ownAddresses.spelled,
      installedPeers: () => installed.size,
      log: fleetLog,
    });
    await presence.join();
    presence.start();
    cleanups.push(() => presence.stop());
    await guard.start();
    cleanups.push(() => guard.stop());
    await reconciler.reconcile();

    // The capture, feeding the pipeline through the intake.
    const { capture, intake } = startCapture(opts, info.listenPort, pipeline, metrics, cleanups);
    // Read at scrape time: the kernel's counters and the live table, never a copy that lags.
    metrics.observe({
      xdpStats: () => (capture.closed ? null : capture.stats()),
      badRecords: () => capture.badRecords,
      installedPeers: () => installed.byState(),
      intakeQueued: () => intake.queued,
      store: () => store.health(),
    });

    // The lifecycle: periodic reconciliation, the sweep, store events.
    reconciler.start(opts.reconcileInterval * 1000);
    cleanups.push(() => reconciler.stop());
    const sweeper = new Sweeper(device, installed, { idleTimeoutMs: opts.idleTimeout * 1000, provisionalGraceMs: PROVISIONAL_GRACE_MS, rxStillMs: RX_STILL_MS }, lifecycleLog, metrics, () => guard.reset !== null);
    sweeper.start(SWEEP_INTERVAL_MS);
    cleanups.push(() => sweeper.stop());
    const sync = new StoreSync({
      store,
      device,
      installed,
      log: log.child({ component: 'store-sync' }),
      metrics,
      onChange: (key) => refusals.delete(key),
      onHeld: (event) => fleet.held(event),
      onResetReplay: (key) => pipeline.forget(key),
      onConnected: () => void reconciler.reconcile(),
      // Addresses a change took from a peer go back to a peer whose record claims them, at once.
      onNarrowed: () => void reconciler.recheck(),
    });
    await sync.start();
    cleanups.push(() => sync.close());

    // The API, over what it may see of the data plane.
    const apiLog = log.child({ component: 'api' });
    const view = gatewayView({
      identity: { interface: info.name, publicKey: info.publicKey?.toString() ?? '', listenPort: info.listenPort, backend: device.kind },
      device,
      installed,
      metrics,
      sweep: () => sweeper.sweep(),
      readiness: new Readiness({ capture, device: rawDevice, liveness, log: log.child({ component: 'readiness' }), warnings: () => resetWarnings(guard.reset) }),
      log: apiLog,
    });
    const self = () => ({ gateway: opts.gatewayId, interface: opts.interface, publicKey: info.publicKey?.toString() ?? null, addresses: ownAddresses.addresses });
    const app = await buildApp({ store, token: opts.token, gateway: view, self, logger: apiLog, registry: metrics.registry });
    cleanups.push(() => app.close());
    await app.listen({ host: opts.apiListen.host, port: opts.apiListen.port });
    log.info({ listen: `${opts.apiListen.host}:${opts.apiListen.port}` }, 'API listening');
    if (opts.metricsListen !== undefined) {
      const metricsApp = await buildMetricsApp({ store, gateway: view, registry: metrics.registry, logger: log.child({ component: 'metrics' }) });
      cleanups.push(() => metricsApp.close());
      await metricsApp.listen({ host: opts.metricsListen.host, port: opts.metricsListen.port });
      log.info({ listen: `${opts.metricsListen.host}:${opts.metricsListen.port}` }, 'metrics listening (/metrics, /healthz, /readyz)');
    }

    return { app, pipeline, metrics, stop: () => cleanups.run() };
  } catch (err) {
    await cleanups.run();
    throw err;
  }
}

/** What /readyz says of a reset in force: the gateway still serves, but an operator has work to do. */
function resetWarnings(reset: ResetMarker | null): string[] {
  if (reset === null) return [];
  return [`the peer store lost its data (recognized ${reset.since} by ${reset.detectedBy}, ${reset.lostGroups} groups): peers unknown to it are kept until \`wgjit store confirm-reset\``];
}

/** What a stop undoes, the last step first; a step that fails is logged and the others still run. */
class Cleanups {
  private readonly steps: Array<() => Promise<void> | void> = [];

  constructor(private readonly log: Logger) {}

  push(step: () => Promise<void> | void): void {
    this.steps.push(step);
  }

  async run(): Promise<void> {
    for (const step of this.steps.reverse()) {
      try {
        await step();
      } catch (err) {
        this.log.warn({ err: (err as Error).message }, 'shutdown step failed');
      }
    }
  }
}

/**
 * The WireGuard device, its reads timed so readiness needs no read of its
 * own, and the responder built from its private key.
 */
async function openGatewayDevice(opts: GatewayOptions, cleanups: Cleanups) {
  const rawDevice = await openDevice(opts);
  cleanups.push(() => rawDevice.close());
  const liveness = new DeviceLiveness(DEVICE_READ_FRESH_MS);
  const device = liveness.wrap(rawDevice);
  const info = await device.getDevice();
  // The addon's responder: same checks as harness/noise/responder.ts (the reference) at a third
  // of the cost (bench/verify.ts); it copies the key, so ours is wiped now.
  const responder = createNativeResponder(info.privateKey);
  cleanups.push(() => responder.close());
  wipe(info.privateKey);
  opts.log
    .child({ component: 'device' })
    .info({ interface: info.name, publicKey: info.publicKey, listenPort: info.listenPort, backend: device.kind, peers: info.peers.length }, 'device opened');
  return { rawDevice, device, liveness, info, responder };
}

/**
 * The XDP capture on every capture device, feeding the pipeline through
 * the intake. On stop: no new admissions; the ones under way finish
 * (bounded) before the store and the device close under them.
 */
function startCapture(opts: GatewayOptions, listenPort: number, pipeline: Pipeline, metrics: Metrics, cleanups: Cleanups) {
  const captureLog = opts.log.child({ component: 'capture' });
  // The capture's default ring (DEFAULT_RING_BYTES, 1 MiB): about 5,000 records.
  const capture = XdpCapture.open({ listenPort, sourceRate: opts.sourceRate, sourceBurst: opts.sourceBurst });
  cleanups.push(() => capture.close());
  for (const dev of opts.captureDev) {
    const attached = capture.attach(dev, opts.xdpMode);
    captureLog.info({ device: dev, ifindex: attached.ifindex, mode: attached.mode }, 'capture attached');
  }
  const intakeLog = opts.log.child({ component: 'intake' });
  const intake = new Intake({
    handle: (event) => pipeline.handle(event),
    dhPerSecond: opts.dhBudget,
    onDrop: (reason) => {
      metrics.captureDrops.inc({ reason });
      // Unverified: anyone can cause these, so debug only (counted above).
      intakeLog.debug({ reason }, 'initiation dropped before verification');
    },
    onError: (err) => intakeLog.error({ err: (err as Error).message }, 'admission failed unexpectedly'),
  });
  cleanups.push(async () => {
    intake.close();
    if (!(await intake.idle(DRAIN_TIMEOUT_MS))) opts.log.warn({ inProgress: intake.inProgress }, 'stop: admissions still under way after the drain timeout');
  });
  capture.start((events: CaptureEvent[]) => intake.offer(events));
  return { capture, intake };
}
