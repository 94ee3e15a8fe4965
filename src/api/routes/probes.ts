/** The open routes a cluster polls: /healthz, /readyz, /metrics. */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { Registry } from 'prom-client';
import type { PeerStore } from '../../authorize/store.js';
import type { GatewayView } from '../gateway-view.js';
import { Health, Readiness } from '../schemas.js';

/** Log level of /healthz, /readyz and /metrics: Kubernetes probes them every few seconds. */
export const PROBE_LOG_LEVEL = 'warn';

export interface ProbeRoutesOptions {
  store: PeerStore;
  gateway: GatewayView | undefined;
  registry: Registry;
}

export const probeRoutes: FastifyPluginAsyncTypebox<ProbeRoutesOptions> = async (app, { store, gateway, registry }) => {
  // Probes and scrapes come every few seconds: their request lines only at warn.
  app.get('/healthz', { config: { public: true }, logLevel: PROBE_LOG_LEVEL, schema: { summary: 'Liveness', response: { 200: Health } } }, async () => ({ status: 'ok' as const }));

  app.get(
    '/readyz',
    { config: { public: true }, logLevel: PROBE_LOG_LEVEL, schema: { summary: 'Readiness: store reachable, and the gateway checks', response: { 200: Readiness, 503: Readiness } } },
    async (_request, reply) => {
      const storeOk = await store.ping();
      let gw: { ready: boolean; checks: Record<string, boolean>; warnings?: string[] } = { ready: true, checks: {} };
      if (gateway) gw = await gateway.ready().catch(() => ({ ready: false, checks: { gateway: false } }));
      const ready = storeOk && gw.ready;
      return reply.code(ready ? 200 : 503).send({ ready, checks: { store: storeOk, ...gw.checks }, ...(gw.warnings !== undefined && { warnings: gw.warnings }) });
    },
  );

  app.get(
    '/metrics',
    { config: { public: true, produces: 'text/plain' }, logLevel: PROBE_LOG_LEVEL, schema: { summary: 'Prometheus metrics (text format)' } },
    async (_request, reply) => reply.type(registry.contentType).send(await registry.metrics()),
  );
};
