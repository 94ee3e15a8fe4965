/**
 * Prometheus metrics (prom-client) under wgjit_*, one registry per process.
 * Counters carry the reason as a label with a fixed, small set of values.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { DeviceError } from '../install/device.js';

export interface Metrics {
  registry: Registry;
  initiations: Counter<'result'>;
  installs: Counter<'result'>;
  replays: Counter<'result'>;
  expiries: Counter<'reason'>;
  captureDrops: Counter<'reason'>;
  deviceErrors: Counter<'operation' | 'code'>;
  installedPeers: Gauge<'state'>;
  coldConnectSeconds: Histogram;
  storeSeconds: Histogram;
  verifySeconds: Histogram;
  installSeconds: Histogram;
}

export function createMetrics(opts: { processMetrics?: boolean } = {}): Metrics {
  const registry = new Registry();
  if (opts.processMetrics ?? true) collectDefaultMetrics({ register: registry, prefix: 'wgjit_' });
  const registers = [registry];
  return {
    registry,
    initiations: new Counter({
      name: 'wgjit_initiations_total',
      help: 'Handshake initiations captured, by outcome (installed, or the reason they were not)',
      labelNames: ['result'],
      registers,
    }),
    installs: new Counter({ name: 'wgjit_installs_total', help: 'Peer installs into the device, by result', labelNames: ['result'], registers }),
    replays: new Counter({ name: 'wgjit_replays_total', help: 'Captured initiations re-injected, by result', labelNames: ['result'], registers }),
    expiries: new Counter({ name: 'wgjit_peer_removals_total', help: 'Peers removed from the device, by reason', labelNames: ['reason'], registers }),
    deviceErrors: new Counter({
      name: 'wgjit_device_errors_total',
      help: 'Failed WireGuard device operations, by operation (install, sweep_read, sweep_remove) and DeviceError code',
      labelNames: ['operation', 'code'],
      registers,
    }),
    captureDrops: new Counter({ name: 'wgjit_capture_drops_total', help: 'Captured records lost before verification, by reason', labelNames: ['reason'], registers }),
    installedPeers: new Gauge({ name: 'wgjit_installed_peers', help: 'Peers wgjit holds on the device, by state', labelNames: ['state'], registers }),
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
  };
}

/** The label for a failed device operation: the DeviceError code, or 'other'. */
export function deviceErrorCode(err: unknown): string {
  return err instanceof DeviceError ? err.code : 'other';
}
