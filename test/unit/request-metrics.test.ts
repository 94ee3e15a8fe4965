import Fastify from 'fastify';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { countRequests, HTTP_REQUEST_DURATION, HTTP_REQUESTS, UNKNOWN_ROUTE } from '../../src/api/request-metrics.js';
import { WGJIT_VERSION } from '../../src/api/version.js';
import { createMetrics } from '../../src/telemetry/metrics.js';

/** `name{labels}` → value, from the text format. */
async function series(registry: Registry): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (const line of (await registry.metrics()).split('\n')) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{[^}]*\})?) (\S+)$/.exec(line);
    if (m) out.set(m[1]!, Number(m[2]));
  }
  return out;
}

describe('HTTP request metrics', () => {
  it('names follow Prometheus conventions', () => {
    expect(HTTP_REQUESTS).toMatch(/^wgjit_[a-z_]+_total$/);
    expect(HTTP_REQUEST_DURATION).toMatch(/^wgjit_[a-z_]+_seconds$/);
  });

  it('count by the route pattern, never the URL; an unknown path is route="unknown"; two apps share one registry', async () => {
    const registry = new Registry();
    const apps = [Fastify(), Fastify()];
    for (const app of apps) {
      countRequests(app, registry);
      app.get('/v1/peers/:publicKey', async (_req, reply) => reply.code(204).send());
    }
    await apps[0]!.inject({ url: '/v1/peers/AAAA' });
    await apps[0]!.inject({ url: '/v1/peers/BBBB' });
    await apps[1]!.inject({ url: '/v1/peers/CCCC' });
    await apps[0]!.inject({ url: '/v1/nope/1234' });
    const m = await series(registry);
    expect(m.get(`${HTTP_REQUESTS}{method="GET",route="/v1/peers/:publicKey",status="204"}`)).toBe(3);
    expect(m.get(`${HTTP_REQUESTS}{method="GET",route="${UNKNOWN_ROUTE}",status="404"}`)).toBe(1);
    expect(m.get(`${HTTP_REQUEST_DURATION}_count{method="GET",route="/v1/peers/:publicKey"}`)).toBe(3);
    const text = await registry.metrics();
    for (const raw of ['AAAA', 'BBBB', 'CCCC', '/v1/nope']) expect(text).not.toContain(raw);
    for (const app of apps) await app.close();
  });
});

describe('build info and reconciliation time', () => {
  it('wgjit_build_info is 1 with the release, Node.js and libbpf ("none" without the addon)', async () => {
    const m = await series(createMetrics({ processMetrics: false }).registry);
    expect(m.get(`wgjit_build_info{version="${WGJIT_VERSION}",node="${process.versions.node}",libbpf="none"}`)).toBe(1);
    const run = await series(createMetrics({ processMetrics: false, libbpf: 'unknown' }).registry);
    expect(run.get(`wgjit_build_info{version="${WGJIT_VERSION}",node="${process.versions.node}",libbpf="unknown"}`)).toBe(1);
  });

  it('wgjit_last_reconciliation_timestamp_seconds is 0 until set, then the time set', async () => {
    const metrics = createMetrics({ processMetrics: false });
    expect((await series(metrics.registry)).get('wgjit_last_reconciliation_timestamp_seconds')).toBe(0);
    metrics.lastReconciliation.set(1_800_000_000);
    expect((await series(metrics.registry)).get('wgjit_last_reconciliation_timestamp_seconds')).toBe(1_800_000_000);
  });
});
