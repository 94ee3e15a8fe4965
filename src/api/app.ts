/**
 * The REST API (docs: /work/shared/spec/interface.md, GET /openapi.json).
 * buildApp() makes the app; the caller decides whether to listen() or
 * inject(). Every /v1 route needs `Authorization: Bearer TOKEN`; only
 * /healthz, /readyz, /metrics, /openapi.json and the /docs pages are open.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import Fastify, { type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest, type RouteOptions } from 'fastify';
import { TypeBoxValidatorCompiler, type TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import fastifySwagger from '@fastify/swagger';
import fastifySwaggerUi from '@fastify/swagger-ui';
import type { Logger } from 'pino';
import { Registry } from 'prom-client';
import { KEY_BASE64_LENGTH, keyProblem, normalizeKey } from '../handshake/keys.js';
import { publicView, validateCreate, validatePatch } from '../authorize/peer.js';
import { decodeCursor, DEFAULT_LIST_LIMIT, encodeCursor, StoreCorruptError, StoreUnavailableError, type PeerStore } from '../authorize/store.js';
import { ApiError, errorBody, ERROR_STATUS, type ErrorCode } from './errors.js';
import type { GatewayView } from './gateway-view.js';
import { buildOpenApi, type RouteDoc } from './openapi.js';
import {
  ErrorResponse,
  GatewayInfo,
  GatewayStats,
  Health,
  InstalledPeerList,
  ListQuery,
  NoContent,
  PeerCreateBody,
  PeerList,
  PeerPatchBody,
  PeerView,
  PublicKeyParams,
  Readiness,
} from './schemas.js';

/** A create with 256 IPv6 CIDRs and every field is ~15 KB; 64 KiB leaves room and stops junk early. */
export const DEFAULT_BODY_LIMIT = 64 * 1024;
export const API_VERSION = '1';
/** Log level of /healthz, /readyz and /metrics: Kubernetes probes them every few seconds. */
export const PROBE_LOG_LEVEL = 'warn';
/** Swagger UI over /openapi.json; its assets come from the package (gateways often have no Internet). */
export const DOCS_PREFIX = '/docs';

export interface BuildAppOptions {
  store: PeerStore;
  /** The bearer token every /v1 request must carry. Must not be empty. */
  token: string;
  /** The data plane of this process; absent in `wgjit api` mode. */
  gateway?: GatewayView;
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

function digest(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest();
}

const BEARER = /^Bearer +(\S+) *$/i;

/** Validation errors from TypeBox, as one line naming the field. */
function validationMessage(errors: FastifyError['validation'], context: string | undefined): string {
  const list = errors ?? [];
  const where = context ?? 'request';
  const pick = list.find((e) => e.keyword === 'additionalProperties') ?? list.find((e) => e.keyword === 'required') ?? list.find((e) => e.keyword === 'anyOf') ?? list.find((e) => e.keyword !== 'boolean') ?? list[0];
  if (!pick) return `${where}: invalid`;
  const params = pick.params as Record<string, unknown>;
  const field = pick.instancePath ? pick.instancePath.slice(1).replace(/\/(\d+)/g, '[$1]').replace(/\//g, '.') : where;
  if (pick.keyword === 'additionalProperties') {
    const names = (params.additionalProperties as string[] | string | undefined) ?? [];
    return `${where}: unknown field ${[names].flat().map((n) => `'${n}'`).join(', ')}`;
  }
  if (pick.keyword === 'required') {
    const names = (params.requiredProperties as string[] | undefined) ?? [params.missingProperty as string];
    return `${where}: missing field ${names.map((n) => `'${n}'`).join(', ')}`;
  }
  if (pick.keyword === 'anyOf') {
    // A nullable field: say what is wrong with the value (a range), else which types fit.
    const variants = list.filter((e) => e.instancePath === pick.instancePath && e.keyword !== 'anyOf');
    const specific = variants.find((e) => e.keyword !== 'type');
    if (specific) return `${field}: ${specific.message ?? 'invalid'}`;
    const types = variants.map((e) => String((e.params as { type?: unknown }).type));
    return `${field}: must be ${types.length > 0 ? types.join(' or ') : 'something else'}`;
  }
  if (pick.keyword === 'minProperties') return `${where}: nothing to change; give at least one field`;
  return `${field}: ${pick.message ?? 'invalid'}`;
}

function pathKey(raw: string): string {
  const key = normalizeKey(raw);
  if (key === null) {
    throw new ApiError(
      'bad_request',
      `publicKey in the path is not a WireGuard key (${keyProblem(raw)}): use its ${KEY_BASE64_LENGTH}-character base64, percent-encoded (/ + = as %2F %2B %3D), or base64url`,
    );
  }
  return key;
}

/** Index of the first peer whose key sorts after `key` (peers sorted by key). */
function firstAfter(peers: readonly { publicKey: string }[], key: string): number {
  let lo = 0;
  let hi = peers.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (peers[mid]!.publicKey <= key) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

const withErrors = (...statuses: number[]) => Object.fromEntries(statuses.map((s) => [s, ErrorResponse]));

export async function buildApp(opts: BuildAppOptions): Promise<FastifyInstance> {
  if (typeof opts.token !== 'string' || opts.token.length === 0) throw new TypeError('buildApp: an API token is required');
  const expected = digest(opts.token);
  const { store, gateway } = opts;
  const registry = opts.registry ?? new Registry();
  const now = opts.now ?? (() => new Date());
  const bodyLimit = opts.bodyLimit ?? DEFAULT_BODY_LIMIT;

  const logging = typeof opts.logger === 'object' ? { loggerInstance: opts.logger } : { logger: opts.logger ?? false };
  const app = Fastify({ ...logging, bodyLimit, return503OnClosing: true }).withTypeProvider<TypeBoxTypeProvider>();
  // TypeBox's own checker: bodies are taken as sent (no type coercion, no
  // silent removal of unknown fields); query and path strings are converted.
  app.setValidatorCompiler(TypeBoxValidatorCompiler);

  const routes: RouteDoc[] = [];
  app.addHook('onRoute', (r) => {
    // The docs pages are as open as the document they show.
    if (r.url === DOCS_PREFIX || r.url.startsWith(`${DOCS_PREFIX}/`)) r.config = { ...r.config, public: true };
    if ((r.schema as { hide?: boolean } | undefined)?.hide) return;
    for (const method of [r.method].flat()) {
      routes.push({ method, url: r.url, schema: r.schema as RouteDoc['schema'], auth: !r.config?.public, produces: r.config?.produces });
    }
  });
  if (opts.onRoute) app.addHook('onRoute', opts.onRoute);

  const send = (reply: FastifyReply, code: ErrorCode, message: string) => reply.code(ERROR_STATUS[code]).send(errorBody(code, message));

  // Everything that is not marked public needs the token, also unknown
  // paths: a 404 must not tell a stranger which routes exist.
  app.addHook('onRequest', async (request: FastifyRequest, reply: FastifyReply) => {
    if (request.routeOptions.config?.public) return;
    const match = BEARER.exec(request.headers.authorization ?? '');
    // Comparing fixed-size digests: the time taken does not depend on
    // where the tokens differ, nor on the token's length.
    if (match && timingSafeEqual(digest(match[1]!), expected)) return;
    reply.header('www-authenticate', 'Bearer');
    return send(reply, 'unauthorized', 'missing or wrong bearer token (Authorization: Bearer TOKEN)');
  });

  app.setNotFoundHandler((request, reply) => send(reply, 'not_found', `no route ${request.method} ${request.url.split('?')[0]}`));

  app.setErrorHandler((err: FastifyError | Error, request, reply) => {
    if (err instanceof ApiError) return send(reply, err.code, err.message);
    if (err instanceof StoreUnavailableError) {
      request.log.warn({ err: err.message }, 'peer store unavailable');
      reply.header('retry-after', '1');
      return send(reply, 'store_unavailable', 'the peer store (Redis) is unreachable; try again shortly');
    }
    if (err instanceof StoreCorruptError) {
      request.log.error({ err: err.message }, 'corrupt peer record');
      return send(reply, 'internal', err.message);
    }
    const fe = err as FastifyError;
    if (fe.validation) return send(reply, 'bad_request', validationMessage(fe.validation, fe.validationContext));
    switch (fe.code) {
      case 'FST_ERR_CTP_BODY_TOO_LARGE':
        return send(reply, 'payload_too_large', `body is larger than ${bodyLimit} bytes`);
      case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
        return send(reply, 'bad_request', 'send the body as JSON with Content-Type: application/json');
      case 'FST_ERR_CTP_EMPTY_JSON_BODY':
        return send(reply, 'bad_request', 'the body is empty; send a JSON object');
    }
    if (fe.statusCode !== undefined && fe.statusCode >= 400 && fe.statusCode < 500) {
      return send(reply, 'bad_request', fe.message);
    }
    request.log.error({ err }, 'request failed');
    return send(reply, 'internal', 'internal error');
  });

  // --- store routes --------------------------------------------------------

  app.post(
    '/v1/peers',
    {
      schema: {
        summary: 'Create a peer in the store',
        description: 'The preshared key is write-only: responses carry hasPresharedKey instead.',
        body: PeerCreateBody,
        response: { 201: PeerView, ...withErrors(400, 401, 409, 503) },
      },
    },
    async (request, reply) => {
      const input = validateCreate(request.body, now());
      if (!input.ok) throw new ApiError('bad_request', input.message);
      const created = await store.create(input.value);
      if (!created.ok) throw new ApiError('conflict', `peer ${input.value.publicKey} already exists; PATCH it to change it`);
      reply.header('location', `/v1/peers/${encodeURIComponent(input.value.publicKey)}`);
      return reply.code(201).send(publicView(created.record));
    },
  );

  app.get(
    '/v1/peers',
    {
      schema: {
        summary: 'List peers in key order, one page at a time',
        querystring: ListQuery,
        response: { 200: PeerList, ...withErrors(400, 401, 503) },
      },
    },
    async (request) => {
      const page = await store.list({ limit: request.query.limit, cursor: request.query.cursor });
      if (!page.ok) throw new ApiError('bad_request', 'cursor: not a cursor from a previous page');
      return { items: page.items.map(publicView), nextCursor: page.nextCursor };
    },
  );

  app.get(
    '/v1/peers/:publicKey',
    {
      schema: { summary: 'One peer', params: PublicKeyParams, response: { 200: PeerView, ...withErrors(400, 401, 404, 503) } },
    },
    async (request) => {
      const key = pathKey(request.params.publicKey);
      const record = await store.get(key);
      if (record === null) throw new ApiError('not_found', `no peer ${key}`);
      return publicView(record);
    },
  );

  app.patch(
    '/v1/peers/:publicKey',
    {
      schema: {
        summary: 'Change fields of a peer',
        description: 'null clears presharedKey, persistentKeepalive or expiresAt. Gateways holding the peer apply the change through the store event.',
        params: PublicKeyParams,
        body: PeerPatchBody,
        response: { 200: PeerView, ...withErrors(400, 401, 404, 503) },
      },
    },
    async (request) => {
      const key = pathKey(request.params.publicKey);
      const patch = validatePatch(request.body);
      if (!patch.ok) throw new ApiError('bad_request', patch.message);
      const updated = await store.update(key, patch.value, now());
      if (!updated.ok) throw new ApiError('not_found', `no peer ${key}`);
      return publicView(updated.record);
    },
  );

  app.delete(
    '/v1/peers/:publicKey',
    {
      schema: {
        summary: 'Remove a peer from the store and from the gateways that hold it',
        params: PublicKeyParams,
        response: { 204: NoContent, ...withErrors(400, 401, 404, 503) },
      },
    },
    async (request, reply) => {
      const key = pathKey(request.params.publicKey);
      const existed = await store.delete(key);
      // Other gateways react to the store event; this one acts at once.
      const removed = gateway ? await gateway.removePeer(key, 'revoked') : false;
      if (!existed && !removed) throw new ApiError('not_found', `no peer ${key}`);
      return reply.code(204).send(null);
    },
  );

  // --- gateway routes ------------------------------------------------------

  const needGateway = (): GatewayView => {
    if (!gateway) throw new ApiError('no_gateway', 'this process has no data plane (wgjit api); ask a gateway (wgjit run) instead');
    return gateway;
  };

  app.get(
    '/v1/gateway',
    { schema: { summary: "This gateway's WireGuard interface", response: { 200: GatewayInfo, ...withErrors(401, 404) } } },
    async () => needGateway().info(),
  );

  app.get(
    '/v1/gateway/peers',
    {
      schema: {
        summary: 'Peers installed on this gateway, in key order, one page at a time',
        querystring: ListQuery,
        response: { 200: InstalledPeerList, ...withErrors(400, 401, 404) },
      },
    },
    async (request) => {
      const gw = needGateway();
      const { limit = DEFAULT_LIST_LIMIT, cursor } = request.query;
      // Same cursors as the store's list: the last key of the previous page.
      const after = cursor === undefined || cursor === '' ? null : decodeCursor(cursor);
      if (after === null && cursor !== undefined && cursor !== '') throw new ApiError('bad_request', 'cursor: not a cursor from a previous page');
      const peers = (await gw.listPeers({ fresh: after === null })).sort((a, b) => (a.publicKey < b.publicKey ? -1 : a.publicKey > b.publicKey ? 1 : 0));
      const start = after === null ? 0 : firstAfter(peers, after);
      const items = peers.slice(start, start + limit);
      const last = items[items.length - 1];
      return { items, nextCursor: start + limit < peers.length && last !== undefined ? encodeCursor(last.publicKey) : null };
    },
  );

  app.delete(
    '/v1/gateway/peers/:publicKey',
    {
      schema: {
        summary: 'Remove a peer from this gateway now (the store keeps it)',
        params: PublicKeyParams,
        response: { 204: NoContent, ...withErrors(400, 401, 404) },
      },
    },
    async (request, reply) => {
      const gw = needGateway();
      const key = pathKey(request.params.publicKey);
      if (!(await gw.removePeer(key, 'operator'))) throw new ApiError('not_found', `peer ${key} is not installed on this gateway`);
      return reply.code(204).send(null);
    },
  );

  app.get(
    '/v1/gateway/stats',
    { schema: { summary: 'Counters of this gateway', response: { 200: GatewayStats, ...withErrors(401, 404) } } },
    async () => needGateway().stats(),
  );

  // --- open routes ---------------------------------------------------------

  // Probes and scrapes come every few seconds: their request lines only at warn.
  app.get('/healthz', { config: { public: true }, logLevel: PROBE_LOG_LEVEL, schema: { summary: 'Liveness', response: { 200: Health } } }, async () => ({ status: 'ok' as const }));

  app.get(
    '/readyz',
    { config: { public: true }, logLevel: PROBE_LOG_LEVEL, schema: { summary: 'Readiness: store reachable, and the gateway checks', response: { 200: Readiness, 503: Readiness } } },
    async (_request, reply) => {
      const storeOk = await store.ping();
      let gw: { ready: boolean; checks: Record<string, boolean> } = { ready: true, checks: {} };
      if (gateway) gw = await gateway.ready().catch(() => ({ ready: false, checks: { gateway: false } }));
      const ready = storeOk && gw.ready;
      return reply.code(ready ? 200 : 503).send({ ready, checks: { store: storeOk, ...gw.checks } });
    },
  );

  app.get(
    '/metrics',
    { config: { public: true, produces: 'text/plain' }, logLevel: PROBE_LOG_LEVEL, schema: { summary: 'Prometheus metrics (text format)' } },
    async (_request, reply) => reply.type(registry.contentType).send(await registry.metrics()),
  );

  // Built once every route is in; /openapi.json and the docs page serve this one object.
  const document: Record<string, unknown> = {};
  app.addHook('onReady', async () => {
    Object.assign(document, buildOpenApi(routes, { title: 'wgjit', version: API_VERSION }));
  });

  app.get('/openapi.json', { config: { public: true }, schema: { summary: 'This document' } }, async () => document);

  // @fastify/swagger only holds the document for the UI (static mode: it
  // generates nothing); the UI's own routes are hidden from the document.
  // The cast: its types know OpenAPI 2 and 3.0 documents, ours is 3.1.
  void app.register(fastifySwagger, { mode: 'static', specification: { document: document as never } });
  void app.register(fastifySwaggerUi, { routePrefix: DOCS_PREFIX, uiConfig: { docExpansion: 'list', deepLinking: true }, theme: { title: 'wgjit API' } });

  // Not ready()-ed: the caller may still add routes or hooks; listen() and
  // inject() make it ready.
  return app as unknown as FastifyInstance;
}
