/**
 * Requests served, by route and status, and how long they took: counted in
 * an onResponse hook into the registry the app serves at /metrics. The
 * route label is the route's pattern (`/v1/peers/:publicKey`), never the
 * URL, so the series stay few; a path no route takes is "unknown".
 */
import type { FastifyInstance } from 'fastify';
import { Counter, Histogram, type Registry } from 'prom-client';

export const HTTP_REQUESTS = 'wgjit_http_requests_total';
export const HTTP_REQUEST_DURATION = 'wgjit_http_request_duration_seconds';
/** The route label of a request no route took (unknown paths, wrong methods). */
export const UNKNOWN_ROUTE = 'unknown';
/** Methods with a label of their own; any other is "other" (the parser takes dozens). */
const METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']);

/** The registry's metric of that name, made once: the API and the --metrics-listen app share a registry. */
function once<T>(registry: Registry, name: string, make: () => T): T {
  return (registry.getSingleMetric(name) as T | undefined) ?? make();
}

export function countRequests(app: FastifyInstance, registry: Registry): void {
  const registers = [registry];
  const requests = once(registry, HTTP_REQUESTS, () => new Counter({ name: HTTP_REQUESTS, help: 'HTTP requests answered, by method, route pattern and status', labelNames: ['method', 'route', 'status'], registers }));
  const duration = once(
    registry,
    HTTP_REQUEST_DURATION,
    () =>
      new Histogram({
        name: HTTP_REQUEST_DURATION,
        help: 'Time from a request to its answer, by method and route pattern',
        labelNames: ['method', 'route'],
        buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
        registers,
      }),
  );
  app.addHook('onResponse', async (request, reply) => {
    // The not-found handler's route has no pattern of its own.
    const route = request.is404 ? UNKNOWN_ROUTE : (request.routeOptions.url ?? UNKNOWN_ROUTE);
    const method = METHODS.has(request.method) ? request.method : 'other';
    requests.inc({ method, route, status: String(reply.statusCode) });
    duration.observe({ method, route }, reply.elapsedTime / 1000);
  });
}
