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

/** The not-found and error handlers; `bodyLimit` is the app's, named in the oversized-body message. */
export function handleErrors(app: FastifyInstance, bodyLimit: number): void {
  app.setNotFoundHandler((request, reply) => sendError(reply, 'not_found', `no route ${request.method} ${request.url.split('?')[0]}`));

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
    if (fe.validation) return sendError(reply, 'bad_request', validationMessage(fe.validation, fe.validationContext));
    switch (fe.code) {
      case 'FST_ERR_CTP_BODY_TOO_LARGE':
        // A route may have a limit of its own (the batch route).
        return sendError(reply, 'payload_too_large', `body is larger than ${request.routeOptions.bodyLimit ?? bodyLimit} bytes`);
      case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
        return sendError(reply, 'bad_request', 'send the body as JSON with Content-Type: application/json');
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
