/** GET /v1/gateways: the fleet as the store knows it, served by gateways and by `wgjit api` alike. */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { PeerStore } from '../../authorize/store.js';
import { Gateways } from '../../fleet/gateways.js';
import { FleetGatewayList } from '../schemas.js';
import { withErrors } from './shared.js';

export const fleetRoutes: FastifyPluginAsyncTypebox<{ store: PeerStore }> = async (app, { store }) => {
  const gateways = new Gateways(store);
  app.get(
    '/v1/gateways',
    {
      schema: {
        summary: 'The gateways of the fleet: alive ones first, then those gone in the last day',
        response: { 200: FleetGatewayList, ...withErrors(401, 503) },
      },
    },
    async () => ({
      items: (await gateways.list()).map((g) => ({
        id: g.id,
        alive: g.alive,
        lastHeartbeatAt: g.heartbeatAt,
        startedAt: g.startedAt,
        installedPeers: g.installedPeers,
        host: g.host,
        publicKey: g.publicKey,
        ...(g.interface !== undefined && { interface: g.interface }),
        addresses: g.addresses ?? [],
        version: g.version,
      })),
    }),
  );
};
