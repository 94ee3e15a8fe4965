/**
 * Audit lines: one per change an operator makes through the API, at info,
 * with `audit` naming the action, the key or object it touched, and which
 * token did it: `tokenId` is a short digest of the bearer token presented
 * (never the token), so a line can be traced to a token without the log
 * holding anything that authenticates.
 */
import { createHash } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import { BEARER } from './auth.js';

/** The first 8 hex digits of the SHA-256 of the request's bearer token; null without one. */
export function tokenId(request: Pick<FastifyRequest, 'headers'>): string | null {
  const match = BEARER.exec(request.headers.authorization ?? '');
  return match ? createHash('sha256').update(match[1]!, 'utf8').digest('hex').slice(0, 8) : null;
}

export function audit(request: FastifyRequest, action: string, fields: Record<string, unknown>): void {
  request.log.info({ audit: action, tokenId: tokenId(request), ...fields }, `audit: ${action}`);
}
