/**
 * Every error leaves as `{ error: { code, message } }` with the status of
 * its code (errors.ts): thrown ApiErrors, store failures, validation and
 * body-parsing errors, unknown routes. Applied to the root instance, so
 * every route plugin inherits it.
 */
import type { FastifyError, FastifyInstance, FastifyReply } from 'fastify';
import { StoreCorruptError, StoreUnavailableError, StoreUnreplicatedError } from '../authorize/store.js';
import { ApiError, errorBody, ERROR_STATUS, type ErrorCode } from './errors.js';

export const sendError = (reply: FastifyReply, code: ErrorCode, message: string) => reply.code(ERROR_STATUS[code]).send(errorBody(code, message));

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
    // Inside a list (a batch's items[3]) the message names the element, not just the body.
    const inside = pick.instancePath ? ` in ${field}` : '';
    return `${where}: unknown field ${[names].flat().map((n) => `'${n}'`).join(', ')}${inside}`;
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

/**
 * The methods each route pattern takes, for the 405's `Allow` header. Fastify
 * answers a known path with a wrong method as an unknown route; this tells
 * the two apart. Patterns are `/v1/peers/:publicKey` style (no wildcards in
 * /v1), so a segment-by-segment match is enough.
 */
class RouteMethods {
  private readonly routes = new Map<string, { segments: string[]; methods: Set<string> }>();

  add(url: string, methods: string | string[]): void {
    let entry = this.routes.get(url);
    if (!entry) this.routes.set(url, (entry = { segments: url.split('/'), methods: new Set() }));
    for (const m of [methods].flat()) entry.methods.add(m.toUpperCase());
  }

  /** The methods of the first pattern that matches `path`, in a fixed order; empty when none does. */
  allowed(path: string): string[] {
    const parts = path.split('/');
    for (const { segments, methods } of this.routes.values()) {
      if (segments.length !== parts.length) continue;
      if (segments.every((seg, i) => (seg.startsWith(':') ? parts[i] !== '' : seg === parts[i]))) {
        return ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'].filter((m) => methods.has(m));
      }
    }
    return [];
  }
}

/**
 * The not-found and error handlers; `bodyLimit` is the app's, named in the
 * oversized-body message. Call before the routes are registered: it records
 * them as they are added.
 */
export function handleErrors(app: FastifyInstance, bodyLimit: number): void {
  const known = new RouteMethods();
  app.addHook('onRoute', (route) => known.add(route.url, route.method));

  // Reached only with the token (auth covers unknown paths), so the Allow header tells nothing to a stranger.
  app.setNotFoundHandler((request, reply) => {
    const path = request.url.split('?')[0]!;
    const allow = known.allowed(path);
    if (allow.length > 0) {
      reply.header('allow', allow.join(', '));
      return sendError(reply, 'method_not_allowed', `${path} does not take ${request.method}; it takes ${allow.join(', ')}`);
    }
    return sendError(reply, 'not_found', `no route ${request.method} ${path}`);
  });

  app.setErrorHandler((err: FastifyError | Error, request, reply) => {
    if (err instanceof ApiError) return sendError(reply, err.code, err.message);
    if (err instanceof StoreUnavailableError) {
      request.log.warn({ err: err.message }, 'peer store unavailable');
      reply.header('retry-after', '1');
      if (err instanceof StoreUnreplicatedError) {
        return sendError(reply, 'store_unavailable', 'the write reached the peer store (Redis) but too few replicas acknowledged it in time, so a failover could lose it; read the peer back and try again');
      }
      return sendError(reply, 'store_unavailable', 'the peer store (Redis) is unreachable; try again shortly');
    }
    if (err instanceof StoreCorruptError) {
      request.log.error({ err: err.message }, 'corrupt peer record');
      return sendError(reply, 'internal', err.message);
    }
    const fe = err as FastifyError;
    // A route that needs a body, called without one (no body is never a content-type error: app.ts).
    if (fe.validation && fe.validationContext === 'body' && request.body === undefined) return sendError(reply, 'bad_request', 'the body is empty; send a JSON object');
    if (fe.validation) return sendError(reply, 'bad_request', validationMessage(fe.validation, fe.validationContext));
    switch (fe.code) {
      case 'FST_ERR_CTP_BODY_TOO_LARGE':
        // A route may have a limit of its own (the batch route).
        return sendError(reply, 'payload_too_large', `body is larger than ${request.routeOptions.bodyLimit ?? bodyLimit} bytes, this route's limit; send a smaller body`);
      case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
        return sendError(reply, 'bad_request', 'send the body as JSON with Content-Type: application/json (application/merge-patch+json for a PATCH)');
      case 'FST_ERR_CTP_EMPTY_JSON_BODY':
        return sendError(reply, 'bad_request', 'the body is empty; send a JSON object');
    }
    if (fe.statusCode !== undefined && fe.statusCode >= 400 && fe.statusCode < 500) {
      return sendError(reply, 'bad_request', fe.message);
    }
    request.log.error({ err }, 'request failed');
    return sendError(reply, 'internal', 'internal error');
  });
}
