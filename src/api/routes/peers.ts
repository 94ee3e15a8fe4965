/** The store routes: /v1/peers, served by gateways and by `wgjit api` alike. */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { checkCreate, gatewayConflict, publicView, validatePatch, type GatewaySelf, type PeerPatch, type Validation } from '../../authorize/peer.js';
import { parseCidr, type Cidr } from '../../net/cidr.js';
import type { PeerStore, UpsertItem } from '../../authorize/store.js';
import { ApiError } from '../errors.js';
import { audit } from '../audit.js';
import type { GatewayView } from '../gateway-view.js';
import type { Static } from 'typebox';
import { BATCH_BODY_LIMIT, ListQuery, MAX_BATCH_ITEMS, NoContent, PeerBatchBody, PeerBatchResult, PeerCreateBody, PeerDetail, PeerList, PeerPatchBody, PeerView, PublicKeyParams, ReplayReset } from '../schemas.js';
import { Gateways } from '../../fleet/gateways.js';
import { Holders } from '../../fleet/holders.js';
import { GatewayIdentities } from '../../fleet/identities.js';
import { pathKey, pathPublicKey, withErrors } from './shared.js';

type BatchItemResult = Static<typeof PeerBatchResult>['items'][number];

/**
 * A batch item as the store takes it: the record validateCreate makes, and
 * the fields the item gives (all but publicKey), as validateCreate read
 * them, which an existing record takes.
 */
function checkBatchItem(input: Static<typeof PeerCreateBody>, now: Date, selves: readonly GatewaySelf[]): Validation<UpsertItem> {
  const checked = checkCreate(input, now);
  if (!checked.ok) return checked;
  const { record, cidrs } = checked.value;
  const conflict = gatewayConflict(record.publicKey, cidrs, selves);
  if (conflict !== null) return conflict;
  const patch: PeerPatch = {};
  if (input.allowedIPs !== undefined) patch.allowedIPs = record.allowedIPs;
  if (input.presharedKey !== undefined) patch.presharedKey = record.presharedKey!;
  if (input.persistentKeepalive !== undefined) patch.persistentKeepalive = record.persistentKeepalive ?? null; // 0: off
  if (input.expiresAt !== undefined) patch.expiresAt = record.expiresAt!;
  if (input.disabled !== undefined) patch.disabled = record.disabled;
  if (input.name !== undefined) patch.name = record.name!;
  return { ok: true, value: { record, cidrs, patch } };
}

/** A CIDR validatePatch already spelled canonically. */
function checkedCidr(text: string): Cidr {
  const r = parseCidr(text);
  if (!r.ok) throw new Error(`validated CIDR ${text} does not parse: ${r.message}`);
  return r.cidr;
}

export interface PeerRoutesOptions {
  store: PeerStore;
  /** This process's data plane, which a DELETE also removes the peer from; absent in `wgjit api`. */
  gateway: GatewayView | undefined;
  /** This gateway's interface key and addresses (GatewayIdentities); absent in `wgjit api`. */
  self?: () => GatewaySelf;
  /** Clock for createdAt/updatedAt. */
  now: () => Date;
}

export const peerRoutes: FastifyPluginAsyncTypebox<PeerRoutesOptions> = async (app, { store, gateway, self, now }) => {
  const holders = new Holders(store);
  const gateways = new Gateways(store);
  // The keys and addresses of the gateways' interfaces, which no record may take.
  const identities = new GatewayIdentities({ gateways, ...(self !== undefined && { local: self }) });
  app.post(
    '/v1/peers',
    {
      schema: {
        summary: 'Create a peer in the store',
        description:
          'The preshared key is write-only: responses carry hasPresharedKey instead. ' +
          "Refused with 400 besides malformed input: a low-order (or all-zero) public key, a gateway's own interface key, allowed IPs in loopback, multicast, " +
          "link-local or unspecified ranges (default routes aside) or over a gateway's interface address, and dates that do not exist. The same holds for PATCH and each batch item.",
        body: PeerCreateBody,
        response: { 201: PeerView, ...withErrors(400, 401, 409, 503) },
      },
    },
    async (request, reply) => {
      // Bad input is a 400 even while the store is away; the gateways' keys and addresses come from the store.
      const input = checkCreate(request.body, now());
      if (!input.ok) throw new ApiError('bad_request', input.message);
      const { record, cidrs } = input.value;
      const conflict = gatewayConflict(record.publicKey, cidrs, await identities.current());
      if (conflict !== null) throw new ApiError('bad_request', conflict.message);
      const created = await store.create(record);
      if (!created.ok) throw new ApiError('conflict', `peer ${record.publicKey} already exists; PATCH it to change it`);
      audit(request, 'peer.create', { publicKey: record.publicKey });
      reply.header('location', `/v1/peers/${encodeURIComponent(record.publicKey)}`);
      return reply.code(201).send(publicView(created.record));
    },
  );

  app.post(
    '/v1/peers/batch',
    {
      bodyLimit: BATCH_BODY_LIMIT,
      schema: {
        summary: 'Create or update many peers at once (an import)',
        description:
          `At most ${MAX_BATCH_ITEMS} items, body at most ${BATCH_BODY_LIMIT} bytes. Every item is checked before anything is written. ` +
          'A new key is created; an existing one (mode upsert, the default) takes the fields its item gives and keeps the others (a field is never cleared, ' +
          'except persistentKeepalive 0, which turns it off), and is unchanged (not written, no event) when it already had them. ' +
          'An item with a bad value, or a key given twice, is refused with the reason and the others go ahead; a body of the wrong shape is a 400 and nothing is written. ' +
          'dryRun answers the same without writing. results: refused answers the counts and the refused items only. Gateways holding an updated peer apply it through the store event.',
        body: PeerBatchBody,
        response: { 200: PeerBatchResult, ...withErrors(400, 401, 503) },
      },
    },
    async (request) => {
      const { items, dryRun = false, mode = 'upsert', results: shown = 'all' } = request.body;
      const stamp = now();
      const selves = await identities.current();
      const results = new Array<BatchItemResult>(items.length);
      // Every item is checked before anything is written; the valid ones go to the store together.
      const writes: UpsertItem[] = [];
      const writtenAt: number[] = [];
      const firstAt = new Map<string, number>();
      for (const [i, input] of items.entries()) {
        const checked = checkBatchItem(input, stamp, selves);
        if (!checked.ok) {
          results[i] = { publicKey: input.publicKey, result: 'refused', reason: checked.message };
          continue;
        }
        const { publicKey } = checked.value.record;
        const first = firstAt.get(publicKey);
        if (first !== undefined) {
          results[i] = { publicKey, result: 'refused', reason: `publicKey: given twice in this batch, first as items[${first}]` };
          continue;
        }
        firstAt.set(publicKey, i);
        writes.push(checked.value);
        writtenAt.push(i);
      }
      const outcomes = await store.upsertMany(writes, { mode, dryRun, now: stamp });
      outcomes.forEach((outcome, j) => {
        const { publicKey } = writes[j]!.record;
        results[writtenAt[j]!] = outcome === 'exists' ? { publicKey, result: 'refused', reason: "publicKey: exists; mode 'create' leaves existing peers alone" } : { publicKey, result: outcome };
      });
      const counts = { created: 0, updated: 0, unchanged: 0, refused: 0 };
      for (const r of results) counts[r.result]++;
      // Counts, not every key: a batch may hold 1,000 of them.
      audit(request, 'peer.batch', { dryRun, mode, items: items.length, ...counts });
      if (shown === 'all') return { dryRun, counts, items: results };
      const refused: BatchItemResult[] = [];
      results.forEach((r, index) => r.result === 'refused' && refused.push({ index, ...r }));
      return { dryRun, counts, items: refused };
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
      schema: {
        summary: 'One peer, and the gateway that holds it',
        params: PublicKeyParams,
        response: { 200: PeerDetail, ...withErrors(400, 401, 404, 503) },
      },
    },
    async (request) => {
      const key = pathKey(request.params.publicKey);
      const [record, holder] = await Promise.all([store.get(key), holders.of(key)]);
      if (record === null) throw new ApiError('not_found', `no peer ${key}`);
      // A gateway that is gone holds nothing: its clients reconnect elsewhere.
      const alive = holder !== null && (await gateways.aliveOf([holder.gateway])).has(holder.gateway);
      return { ...publicView(record), holder: alive ? { gateway: holder.gateway, since: holder.since.toISOString() } : null };
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
      if (patch.value.allowedIPs !== undefined) {
        const conflict = gatewayConflict(null, patch.value.allowedIPs.map(checkedCidr), await identities.current());
        if (conflict !== null) throw new ApiError('bad_request', conflict.message);
      }
      const updated = await store.update(key, patch.value, now());
      if (!updated.ok) throw new ApiError('not_found', `no peer ${key}`);
      // The names of the fields changed, never their values (a preshared key).
      audit(request, 'peer.update', { publicKey: key, fields: Object.keys(request.body) });
      return publicView(updated.record);
    },
  );

  app.post(
    '/v1/peers/:publicKey/reset-replay',
    {
      schema: {
        summary: "Forget a key's greatest handshake timestamp, in the store and on every gateway",
        description:
          'For a client locked out by an initiation stamped ahead of time (a clock that jumped): every gateway forgets the timestamp within moments (store event) and removes the peer if it holds it, so the next initiation installs it again. Replay protection for that key starts over from the next initiation.',
        params: PublicKeyParams,
        response: { 200: ReplayReset, ...withErrors(400, 401, 503) },
      },
    },
    async (request) => {
      const key = pathKey(request.params.publicKey);
      const storeHadTimestamp = await store.resetReplay(key);
      audit(request, 'peer.reset-replay', { publicKey: key, storeHadTimestamp });
      return { publicKey: key, storeHadTimestamp };
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
      audit(request, 'peer.delete', { publicKey: key, existed, removedHere: removed });
      return reply.code(204).send(null);
    },
  );
};
