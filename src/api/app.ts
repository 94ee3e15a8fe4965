/**
 * The REST API (docs: /work/shared/spec/interface.md, GET /openapi.json).
 * buildApp() makes the app; the caller decides whether to listen() or
 * inject(). Every /v1 route needs `Authorization: Bearer TOKEN`; only
 * /healthz, /readyz, /metrics, /openapi.json and the /docs pages are open.
 * The routes live in routes/, one plugin per concern; authentication and the
 * error handler cover the whole app.
 */
import Fastify, { type FastifyInstance, type RouteOptions } from 'fastify';
import { TypeBoxValidatorCompiler, type TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { Logger } from 'pino';
import { Registry } from 'prom-client';
import type { GatewaySelf } from '../authorize/peer.js';
import type { PeerStore } from '../authorize/store.js';
import { requireBearerToken } from './auth.js';
import { VERSION_HEADER, WGJIT_VERSION } from './version.js';
import { handleErrors } from './error-handler.js';
import { ApiError } from './errors.js';
import { countRequests } from './request-metrics.js';
import { requestSerializer } from '../telemetry/log.js';
import type { GatewayView } from './gateway-view.js';
import { collectRouteDocs, docsRoutes } from './routes/docs.js';
import { fleetRoutes } from './routes/fleet.js';
import { gatewayRoutes } from './routes/gateway.js';
import { peerRoutes } from './routes/peers.js';
import { probeRoutes } from './routes/probes.js';
import { storeRoutes } from './routes/store.js';

/** A create with 256 IPv6 CIDRs and every field is ~15 KB; 64 KiB leaves room and stops junk early. */
export const DEFAULT_BODY_LIMIT = 64 * 1024;

export interface BuildAppOptions {
  store: PeerStore;
  /** The bearer token every /v1 request must carry. Must not be empty. */
  token: string;
  /** The data plane of this process; absent in `wgjit api` mode. */
  gateway?: GatewayView;
  /** This gateway's interface key and addresses, which no record may take (the fleet's come from the store); absent in `wgjit api`. */
  self?: () => GatewaySelf;
  /** A pino logger, or true for fastify's own, false/absent for none. */
  logger?: Logger | boolean;
  bodyLimit?: number;
  /** Served at /metrics; a fresh registry when absent. */
  registry?: Registry;
  /** Clock for createdAt/updatedAt (tests). */
  now?: () => Date;
  /** Called for every route as it is added, HEAD routes too (the tests' walk of all routes). */
  onRoute?: (route: RouteOptions) => void;
}

declare module 'fastify' {
  interface FastifySchema {
    /** For the OpenAPI document. */
    summary?: string;
    description?: string;
  }
  interface FastifyContextConfig {
    /** Served without a token (health, metrics, the API document). */
    public?: boolean;
    /** Content type of a non-JSON response, for the OpenAPI document. */
    produces?: string;
  }
}

/** A PATCH may say it is a JSON merge patch (RFC 7396): its semantics are the API's PATCH, so the same parser. */
export const MERGE_PATCH_TYPE = 'application/merge-patch+json';

/**
 * A request without a body is taken whatever its Content-Type says (a
 * `curl -X DELETE -H 'Content-Type: application/json'`): fastify would run
 * the JSON parser on nothing and refuse it. The header is dropped so no
 * parser runs; a route that needs a body then says the body is empty.
 * Also: merge-patch JSON on PATCH.
 */
function acceptBodilessRequests(app: FastifyInstance): void {
  app.addHook('onRequest', async (request) => {
    const { headers } = request.raw;
    const bodiless = headers['transfer-encoding'] === undefined && (headers['content-length'] === undefined || headers['content-length'] === '0');
    if (bodiless) delete headers['content-type'];
  });
  const json = app.getDefaultJsonParser('error', 'error');
  app.addContentTypeParser(MERGE_PATCH_TYPE, { parseAs: 'string' }, (request, body, done) => {
    if (request.method !== 'PATCH') return done(new ApiError('bad_request', `${MERGE_PATCH_TYPE} is for PATCH; send this body with Content-Type: application/json`), undefined);
    json(request, body as string, done);
  });
}

export interface BuildMetricsAppOptions {
  store: PeerStore;
  gateway?: GatewayView;
  registry: Registry;
  logger?: Logger | boolean;
}

/**
 * The --metrics-listen app: /metrics, /healthz and /readyz alone, the same
 * routes (and readiness) as buildApp's, no token and no /v1 route, so it can
 * face scrapers and probes while the API stays on loopback.
 */
export async function buildMetricsApp(opts: BuildMetricsAppOptions): Promise<FastifyInstance> {
  const logging = typeof opts.logger === 'object' ? { loggerInstance: opts.logger.child({}, { serializers: { req: requestSerializer } }) } : { logger: opts.logger === true };
  // No route takes a body.
  const app = Fastify({ ...logging, bodyLimit: 1024, return503OnClosing: true }).withTypeProvider<TypeBoxTypeProvider>();
  const root = app as unknown as FastifyInstance;
  root.addHook('onRequest', async (_request, reply) => {
    reply.header(VERSION_HEADER, WGJIT_VERSION);
  });
  handleErrors(root, 1024);
  countRequests(root, opts.registry);
  await app.register(probeRoutes, { store: opts.store, gateway: opts.gateway, registry: opts.registry });
  return root;
}

export async function buildApp(opts: BuildAppOptions): Promise<FastifyInstance> {
  if (typeof opts.token !== 'string' || opts.token.length === 0) throw new TypeError('buildApp: an API token is required');
  const { store, gateway } = opts;
  const bodyLimit = opts.bodyLimit ?? DEFAULT_BODY_LIMIT;

  // Request lines show the query's parameter names, never their values (src/telemetry/log.ts).
  const serializers = { req: requestSerializer };
  const logging = typeof opts.logger === 'object' ? { loggerInstance: opts.logger.child({}, { serializers }) } : opts.logger === true ? { logger: { serializers } } : { logger: false };
  const app = Fastify({ ...logging, bodyLimit, return503OnClosing: true }).withTypeProvider<TypeBoxTypeProvider>();
  // TypeBox's own checker: bodies are taken as sent (no type coercion, no
  // silent removal of unknown fields); query and path strings are converted.
  app.setValidatorCompiler(TypeBoxValidatorCompiler);

  // The app-wide parts see fastify's default types (the instance's logger is pino's own).
  const root = app as unknown as FastifyInstance;
  // Hooks on the root before any plugin, so they see every route.
  const routes = collectRouteDocs(root);
  if (opts.onRoute) app.addHook('onRoute', opts.onRoute);
  root.addHook('onRequest', async (_request, reply) => {
    reply.header(VERSION_HEADER, WGJIT_VERSION);
  });
  requireBearerToken(root, opts.token);
  handleErrors(root, bodyLimit);
  acceptBodilessRequests(root);
  const registry = opts.registry ?? new Registry();
  countRequests(root, registry);

  await app.register(peerRoutes, { store, gateway, ...(opts.self !== undefined && { self: opts.self }), now: opts.now ?? (() => new Date()) });
  await app.register(gatewayRoutes, { gateway });
  await app.register(fleetRoutes, { store });
  await app.register(storeRoutes, { store });
  await app.register(probeRoutes, { store, gateway, registry });
  await app.register(docsRoutes, { routes });

  // Not ready()-ed: the caller may still add routes or hooks; listen() and
  // inject() make it ready.
  return root;
}
