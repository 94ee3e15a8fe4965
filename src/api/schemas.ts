/**
 * Request and response schemas (TypeBox, i.e. JSON Schema). They check the
 * shape: types, required fields, unknown fields. The meaning (is it a key,
 * a CIDR, a time?) is checked by src/authorize/peer.ts, which names the
 * field in its message. Response schemas also filter: a field not listed
 * here (the PSK) cannot be serialized even by mistake.
 */
import { Type } from '@fastify/type-provider-typebox';
import { MAX_ALLOWED_IPS, MAX_NAME_LENGTH, MAX_PERSISTENT_KEEPALIVE, MAX_TIMESTAMP_LENGTH } from '../authorize/peer.js';
import { MAX_CIDR_TEXT_LENGTH } from '../net/cidr.js';
import { MAX_LIST_LIMIT } from '../authorize/store.js';
import { ERROR_CODES } from './errors.js';

/** Longer than any key spelling (44), short enough that junk is cut off early. */
const MAX_KEY_TEXT = 64;
/** Cursors are base64url of a 44-character key: 59 characters. */
const MAX_CURSOR_TEXT = 80;

const Key = (description: string) => Type.String({ minLength: 1, maxLength: MAX_KEY_TEXT, description });
const Timestamp = (description: string) => Type.String({ maxLength: MAX_TIMESTAMP_LENGTH, description });

const AllowedIPs = Type.Array(Type.String({ maxLength: MAX_CIDR_TEXT_LENGTH }), {
  minItems: 1,
  maxItems: MAX_ALLOWED_IPS,
  description: 'CIDRs routed to the peer, e.g. ["10.0.0.2/32", "fd00::2/128"]; a bare address is one host',
});
// maxLength counts UTF-16 units: a name of MAX_NAME_LENGTH characters outside the BMP takes twice as many; peer.ts counts characters.
const Name = (description: string) => Type.String({ minLength: 1, maxLength: 2 * MAX_NAME_LENGTH, description });
const NAME_TEXT = `a label for people: 1 to ${MAX_NAME_LENGTH} printable characters (no control characters)`;
const Keepalive = Type.Integer({ minimum: 0, maximum: MAX_PERSISTENT_KEEPALIVE, description: 'seconds; 0 is off' });

export const PublicKeyParams = Type.Object(
  { publicKey: Key('the peer public key: standard base64 (percent-encoded) or base64url') },
  { additionalProperties: false },
);

export const PeerCreateBody = Type.Object(
  {
    publicKey: Key('standard base64 as `wg pubkey` prints it (base64url also accepted)'),
    allowedIPs: AllowedIPs,
    presharedKey: Type.Optional(Key('write-only: stored, never returned')),
    persistentKeepalive: Type.Optional(Keepalive),
    expiresAt: Type.Optional(Timestamp('ISO 8601 with a zone, or a date alone (midnight UTC); the peer is refused from then on')),
    disabled: Type.Optional(Type.Boolean()),
    name: Type.Optional(Name(NAME_TEXT)),
  },
  { additionalProperties: false },
);

/**
 * Records per POST /v1/peers/batch: 1,000 answers in well under a second
 * and stays one pipelined write to Redis; an import of more is sent in
 * several requests (`wgjit peer import` does).
 */
export const MAX_BATCH_ITEMS = 1000;
/**
 * The batch route's body limit, beside the app's 64 KiB: 1,000 typical
 * records (key, PSK, a few CIDRs) are ~200 KB; records with hundreds of
 * CIDRs each need several requests.
 */
export const BATCH_BODY_LIMIT = 1024 * 1024;

export const PeerBatchBody = Type.Object(
  {
    items: Type.Array(PeerCreateBody, { maxItems: MAX_BATCH_ITEMS, description: `records as POST /v1/peers takes them, at most ${MAX_BATCH_ITEMS}` }),
    dryRun: Type.Optional(Type.Boolean({ description: 'answer what would happen to each item, write nothing (default false)' })),
    mode: Type.Optional(
      Type.Union([Type.Literal('upsert'), Type.Literal('create')], {
        description: "upsert (default): an existing peer takes the item's fields, the others stay; create: an existing peer is left alone and its item refused",
      }),
    ),
    results: Type.Optional(
      Type.Union([Type.Literal('all'), Type.Literal('refused')], {
        description: 'all (default): items answers one result per item, in order; refused: only the refused items, each with its index (counts has the rest), which spares a big import a result per record',
      }),
    ),
  },
  { additionalProperties: false },
);

export const PeerBatchResult = Type.Object(
  {
    dryRun: Type.Boolean(),
    counts: Type.Object(
      { created: Type.Integer(), updated: Type.Integer(), unchanged: Type.Integer(), refused: Type.Integer() },
      { additionalProperties: false, description: 'how many items had each result' },
    ),
    items: Type.Array(
      Type.Object(
        {
          index: Type.Optional(Type.Integer({ description: "the item's place in the request, from 0; given with results: refused" })),
          publicKey: Type.String({ description: "the item's key in wg's spelling (as sent when it is not a key)" }),
          result: Type.Union([Type.Literal('created'), Type.Literal('updated'), Type.Literal('unchanged'), Type.Literal('refused')], {
            description: 'unchanged: the stored record already had these values (nothing written); refused: see reason, nothing written for it',
          }),
          reason: Type.Optional(Type.String({ description: 'why it was refused, naming the field; never echoes a preshared key' })),
        },
        { additionalProperties: false },
      ),
      { description: 'one per item, in order; with results: refused, the refused items only' },
    ),
  },
  { additionalProperties: false },
);

export const PeerPatchBody = Type.Object(
  {
    allowedIPs: Type.Optional(AllowedIPs),
    presharedKey: Type.Optional(Type.Union([Key('write-only'), Type.Null()], { description: 'null removes it' })),
    persistentKeepalive: Type.Optional(Type.Union([Keepalive, Type.Null()], { description: 'null or 0 turns it off' })),
    expiresAt: Type.Optional(Type.Union([Timestamp('ISO 8601 with a zone, or a date alone (midnight UTC)'), Type.Null()], { description: 'null: never expires' })),
    disabled: Type.Optional(Type.Boolean()),
    name: Type.Optional(Type.Union([Name(NAME_TEXT), Type.Null()], { description: 'null removes it' })),
  },
  { additionalProperties: false, minProperties: 1 },
);

export const ListQuery = Type.Object(
  {
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_LIST_LIMIT, description: `page size, default 100, at most ${MAX_LIST_LIMIT}` })),
    cursor: Type.Optional(Type.String({ maxLength: MAX_CURSOR_TEXT, description: 'nextCursor of the previous page' })),
  },
  { additionalProperties: false },
);

export const PeerView = Type.Object(
  {
    publicKey: Type.String(),
    allowedIPs: Type.Array(Type.String()),
    hasPresharedKey: Type.Boolean(),
    persistentKeepalive: Type.Optional(Type.Integer()),
    expiresAt: Type.Optional(Type.String()),
    disabled: Type.Boolean(),
    name: Type.Optional(Type.String({ description: 'absent when the peer has none' })),
    createdAt: Type.String(),
    updatedAt: Type.String(),
  },
  { additionalProperties: false },
);

export const PeerHolder = Type.Union(
  [
    Type.Object(
      {
        gateway: Type.String({ description: 'the --gateway-id of the gateway where the client confirmed its latest session' }),
        since: Type.String({ description: 'when it took the peer' }),
      },
      { additionalProperties: false },
    ),
    Type.Null(),
  ],
  { description: 'the gateway that holds the peer now; null when none does (never connected, removed everywhere, or its gateway is gone)' },
);

export const PeerDetail = Type.Object({ ...PeerView.properties, holder: PeerHolder }, { additionalProperties: false });

export const FleetGateway = Type.Object(
  {
    id: Type.String({ description: '--gateway-id' }),
    alive: Type.Boolean({ description: 'its heartbeat is current; false: stopped or lost (its last beat is kept for a day)' }),
    lastHeartbeatAt: Type.String(),
    startedAt: Type.String(),
    installedPeers: Type.Integer({ description: 'at its last heartbeat' }),
    host: Type.String(),
    publicKey: Type.String({ description: "its WireGuard interface's public key" }),
    interface: Type.Optional(Type.String({ description: 'its WireGuard interface (absent for a gateway of an earlier release)' })),
    addresses: Type.Array(Type.String(), { description: "its WireGuard interface's addresses, which no peer's allowed IPs may contain" }),
    version: Type.String(),
  },
  { additionalProperties: false },
);

export const FleetGatewayList = Type.Object({ items: Type.Array(FleetGateway) }, { additionalProperties: false });

export const PeerList = Type.Object(
  { items: Type.Array(PeerView), nextCursor: Type.Union([Type.String(), Type.Null()], { description: 'null on the last page' }) },
  { additionalProperties: false },
);

export const InstalledPeer = Type.Object(
  {
    publicKey: Type.String(),
    endpoint: Type.Union([Type.String(), Type.Null()], { description: 'ip:port or [ip]:port of the client; null before WireGuard saw one' }),
    allowedIPs: Type.Array(Type.String(), { description: 'CIDRs the device routes to the peer' }),
    state: Type.Union([Type.Literal('provisional'), Type.Literal('confirmed')], { description: 'provisional: installed on an initiation; confirmed: a handshake completed' }),
    installedAt: Type.String(),
    lastHandshakeAt: Type.Union([Type.String(), Type.Null()]),
    rxBytes: Type.Number({ description: 'bytes received from the peer' }),
    txBytes: Type.Number({ description: 'bytes sent to the peer' }),
  },
  { additionalProperties: false },
);

export const InstalledPeerList = Type.Object(
  { items: Type.Array(InstalledPeer), nextCursor: Type.Union([Type.String(), Type.Null()], { description: 'null on the last page' }) },
  { additionalProperties: false },
);

export const GatewayInfo = Type.Object(
  {
    interface: Type.String({ description: 'the WireGuard interface peers are installed into' }),
    publicKey: Type.String({ description: "the interface's public key (its private key is never served)" }),
    listenPort: Type.Integer(),
    backend: Type.Union([Type.Literal('netlink'), Type.Literal('uapi')], { description: 'netlink: kernel WireGuard; uapi: a userspace implementation' }),
    installedPeers: Type.Integer(),
  },
  { additionalProperties: false },
);

export const GatewayStats = Type.Record(Type.String(), Type.Number(), { description: 'flat counters, e.g. initiations_seen, verified, rejected_<reason>, installs' });

export const ErrorResponse = Type.Object(
  {
    error: Type.Object(
      { code: Type.Union(ERROR_CODES.map((c) => Type.Literal(c))), message: Type.String() },
      { additionalProperties: false },
    ),
  },
  { additionalProperties: false },
);

export const Health = Type.Object({ status: Type.Literal('ok') });
export const Readiness = Type.Object({
  ready: Type.Boolean(),
  checks: Type.Record(Type.String(), Type.Boolean()),
  warnings: Type.Optional(Type.Array(Type.String(), { description: 'what an operator should know that does not make the process unready, e.g. a store reset not yet confirmed' })),
});
export const NoContent = Type.Null({ description: 'no body' });

export const StoreReset = Type.Object(
  {
    since: Type.String({ format: 'date-time' }),
    detectedBy: Type.String({ description: 'the gateway that recognized it' }),
    lostGroups: Type.Integer({ description: 'groups (of 4,096) that had lost their epoch marker' }),
    epoch: Type.String(),
  },
  { description: 'a reset of the store (it lost its data), as a gateway recorded it' },
);
/** GET /v1/store; POST /v1/store/confirm-reset answers the reset it confirmed. */
export const StoreState = Type.Object({ reset: Type.Union([StoreReset, Type.Null()]) });
export const ReplayReset = Type.Object({
  publicKey: Type.String(),
  storeHadTimestamp: Type.Boolean({ description: 'whether the store kept a timestamp for the key (gateways forget theirs either way)' }),
});
