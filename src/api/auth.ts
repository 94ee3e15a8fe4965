/**
 * Bearer-token authentication for the whole app. Applied to the root
 * instance rather than registered as a plugin: it must cover every route,
 * unknown paths too.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { sendError } from './error-handler.js';

function digest(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest();
}

/** `Authorization: Bearer TOKEN`; the token is group 1. */
export const BEARER = /^Bearer +(\S+) *$/i;

/**
 * Everything that is not marked public (`config: { public: true }`) needs
 * the token, also unknown paths: a 404 must not tell a stranger which
 * routes exist.
 */
export function requireBearerToken(app: FastifyInstance, token: string): void {
  const expected = digest(token);
  app.addHook('onRequest', async (request, reply) => {
    if (request.routeOptions.config?.public) return;
    const match = BEARER.exec(request.headers.authorization ?? '');
    // Comparing fixed-size digests: the time taken does not depend on
    // where the tokens differ, nor on the token's length.
    if (match && timingSafeEqual(digest(match[1]!), expected)) return;
    reply.header('www-authenticate', 'Bearer');
    return sendError(reply, 'unauthorized', 'missing or wrong bearer token (Authorization: Bearer TOKEN)');
  });
}
