/** The gateway routes: /v1/gateway, this process's data plane; 404 no_gateway in `wgjit api`. */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { decodeCursor, DEFAULT_LIST_LIMIT, encodeCursor } from '../../authorize/store.js';
import { audit } from '../audit.js';
import { ApiError } from '../errors.js';
import type { GatewayView } from '../gateway-view.js';
import { GatewayInfo, GatewayStats, InstalledPeerList, ListQuery, NoContent, PublicKeyParams } from '../schemas.js';
import { pathPublicKey, withErrors } from './shared.js';

export interface GatewayRoutesOptions {
  gateway: GatewayView | undefined;
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

export const gatewayRoutes: FastifyPluginAsyncTypebox<GatewayRoutesOptions> = async (app, { gateway }) => {
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
      const key = pathPublicKey(request.params.publicKey);
      if (!(await gw.removePeer(key, 'operator'))) throw new ApiError('not_found', `peer ${key.toString()} is not installed on this gateway`);
      audit(request, 'gateway.peer.remove', { publicKey: key.toString() });
      return reply.code(204).send(null);
    },
  );

  app.get(
    '/v1/gateway/stats',
    { schema: { summary: 'Counters of this gateway', response: { 200: GatewayStats, ...withErrors(401, 404) } } },
    async () => needGateway().stats(),
  );
};
