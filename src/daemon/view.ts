/**
 * What the API sees of this gateway's data plane (GatewayView): the
 * installed table, removals, the counts and readiness. The stages do the
 * work; this spells their state as the API serves it.
 */
import type { GatewayInfo, GatewayView, InstalledPeerView } from '../api/gateway-view.js';
import type { Endpoint } from '../install/device.js';
import type { InstalledPeer, InstalledPeers } from '../lifecycle/installed.js';
import { removePeers, type RemovalDeps } from '../lifecycle/removal.js';
import type { Logger } from '../telemetry/log.js';
import type { Metrics } from '../telemetry/metrics.js';
import { gatewayStats } from '../telemetry/stats.js';
import type { Readiness } from './readiness.js';

export interface ViewDeps extends RemovalDeps {
  /** The device as the daemon found it at start. */
  identity: Omit<GatewayInfo, 'installedPeers'>;
  installed: InstalledPeers;
  metrics: Metrics;
  /** One pass of the sweeper: one device read that brings state, counters and allowed IPs up to date. */
  sweep(): Promise<void>;
  readiness: Readiness;
  /** The API's logger: removals through the API are logged as its own. */
  log: Logger;
}

export function gatewayView(deps: ViewDeps): GatewayView {
  const { identity, installed, metrics, log } = deps;
  return {
    listPeers: async ({ fresh }) => {
      if (fresh) await deps.sweep();
      return [...installed.values()].map(peerView);
    },
    info: () => ({ ...identity, installedPeers: installed.size }),
    removePeer: async (publicKey, reason) => {
      if (!installed.has(publicKey)) return false;
      await removePeers(deps, [{ publicKey, reason }], log, 'peer removed from the device through the API');
      return true;
    },
    stats: () => gatewayStats(metrics),
    ready: () => deps.readiness.check(),
  };
}

function peerView(p: InstalledPeer): InstalledPeerView {
  return {
    publicKey: p.publicKey.toString(),
    endpoint: p.endpoint === null ? null : endpointText(p.endpoint),
    allowedIPs: [...p.allowedIPs],
    state: p.state,
    installedAt: new Date(p.installedAt).toISOString(),
    lastHandshakeAt: p.lastHandshakeAt === null ? null : new Date(p.lastHandshakeAt).toISOString(),
    rxBytes: Number(p.rxBytes),
    txBytes: Number(p.txBytes),
  };
}

/** `ip:port`, or `[ip]:port` for IPv6. */
function endpointText(endpoint: Endpoint): string {
  return endpoint.address.includes(':') ? `[${endpoint.address}]:${endpoint.port}` : `${endpoint.address}:${endpoint.port}`;
}
