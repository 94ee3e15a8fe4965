/**
 * The store's own state: a reset recorded by a gateway (src/authorize/epoch.ts)
 * and its confirmation by an operator. Served by gateways and `wgjit api` alike.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { StoreEpoch } from '../../authorize/epoch.js';
import type { PeerStore } from '../../authorize/store.js';
import { audit } from '../audit.js';
import { ApiError } from '../errors.js';
import { StoreState } from '../schemas.js';
import { withErrors } from './shared.js';

export const storeRoutes: FastifyPluginAsyncTypebox<{ store: PeerStore }> = async (app, { store }) => {
  const epoch = new StoreEpoch(store);
  app.get(
    '/v1/store',
    {
      schema: {
        summary: "The store's state: a reset (lost data) recorded and not yet confirmed, or null",
        response: { 200: StoreState, ...withErrors(401, 503) },
      },
    },
    async () => ({ reset: await epoch.reset() }),
  );

  app.post(
    '/v1/store/confirm-reset',
    {
      schema: {
        summary: 'Confirm a recorded store reset: gateways remove the peers the store does not know again',
        description: 'Re-register the peers that should stay first (they are kept meanwhile); after this, a reconciliation on every gateway removes the others.',
        response: { 200: StoreState, ...withErrors(401, 404, 503) },
      },
    },
    async (request) => {
      const confirmed = await epoch.confirmReset();
      if (confirmed === null) throw new ApiError('not_found', 'no store reset is recorded: nothing to confirm');
      audit(request, 'store.confirm-reset', { since: confirmed.since, detectedBy: confirmed.detectedBy });
      return { reset: confirmed };
    },
  );
};
