/** The store routes: /v1/peers, served by gateways and by `wgjit api` alike. */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { publicView, validateCreate, validatePatch } from '../../authorize/peer.js';
import type { PeerStore } from '../../authorize/store.js';
import { ApiError } from '../errors.js';
import type { GatewayView } from '../gateway-view.js';
import { ListQuery, NoContent, PeerCreateBody, PeerList, PeerPatchBody, PeerView, PublicKeyParams } from '../schemas.js';
import { pathKey, pathPublicKey, withErrors } from './shared.js';

export interface PeerRoutesOptions {
  store: PeerStore;
  /** This process's data plane, which a DELETE also removes the peer from; absent in `wgjit api`. */
  gateway: GatewayView | undefined;
  /** Clock for createdAt/updatedAt. */
  now: () => Date;
}

export const peerRoutes: FastifyPluginAsyncTypebox<PeerRoutesOptions> = async (app, { store, gateway, now }) => {
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
      const publicKey = pathPublicKey(request.params.publicKey);
      const key = publicKey.toString();
      const existed = await store.delete(key);
      // Other gateways react to the store event; this one acts at once.
      const removed = gateway ? await gateway.removePeer(publicKey, 'revoked') : false;
      if (!existed && !removed) throw new ApiError('not_found', `no peer ${key}`);
      return reply.code(204).send(null);
    },
  );
};
