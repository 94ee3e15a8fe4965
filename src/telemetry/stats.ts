/**
 * GET /v1/gateway/stats: the flat names operators and tests know
 * (docs/operations.md), read from the Prometheus counters (metrics.ts), so
 * the two never disagree and nothing is counted twice. An event's name
 * appears once it has been counted; what is read from the kernel or a
 * table (xdp_<exit>, ringbuf_drops, installed_peers, queued) always.
 */
import type { MetricValue } from 'prom-client';
import type { DropReason } from '../intake/intake.js';
import type { Metrics } from './metrics.js';

/** The intake's drops (wgjit_capture_drops_total's other reasons are XDP's, under xdp_<exit>). */
const INTAKE_DROPS: Record<DropReason, true> = { queue_full: true, source_full: true, stale: true };

export async function gatewayStats(metrics: Metrics): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  const add = (name: string, n: number) => {
    if (n > 0) out[name] = (out[name] ?? 0) + n;
  };
  const values = async (counter: { get(): Promise<{ values: Array<MetricValue<string>> }> }) => (await counter.get()).values;

  for (const { labels, value } of await values(metrics.initiations)) {
    add('initiations_seen', value);
    if (labels['verified'] === 'true') add('initiations_verified', value);
    // An install is `installs` (wgjit_installs_total); every other outcome under its own name.
    if (labels['result'] !== 'installed') add(String(labels['result']), value);
  }
  for (const { labels, value } of await values(metrics.installs)) if (labels['result'] === 'ok') add('installs', value);
  for (const { labels, value } of await values(metrics.replays)) add(labels['result'] === 'ok' ? 'replays' : 'replay_failures', value);
  for (const { value } of await values(metrics.refusalsCached)) add('refusals_cached', value);
  for (const { labels, value } of await values(metrics.removals)) add(`removed_${String(labels['reason'])}`, value);
  for (const { value } of await values(metrics.updates)) add('updates', value);
  for (const { labels, value } of await values(metrics.captureDrops)) {
    const reason = String(labels['reason']);
    if (Object.hasOwn(INTAKE_DROPS, reason)) add(`dropped_${reason}`, value);
  }

  // Read at scrape time from the kernel and the tables: present even at 0.
  for (const { labels, value } of await values(metrics.xdpPackets)) out[`xdp_${String(labels['result'])}`] = value;
  out['ringbuf_drops'] = out['xdp_ringbuf_full'] ?? 0;
  out['installed_peers'] = (await values(metrics.installedPeers)).reduce((sum, v) => sum + v.value, 0);
  out['queued'] = (await values(metrics.intakeQueued)).reduce((sum, v) => sum + v.value, 0);
  return out;
}
