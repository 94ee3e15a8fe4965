/** `wgjit peer add|rm|ls|show|import|reset-replay`: the peer store, through the REST API. */
import { readFileSync } from 'node:fs';
import type { Static } from 'typebox';
import type { PeerCreateBody, PeerDetail, PeerList, PeerView, ReplayReset } from '../../api/schemas.js';
import { KEY_FORM, keyProblem, normalizeKey } from '../../handshake/keys.js';
import { keyPath } from '../client.js';
import { client, CLIENT_OPTIONS, EXIT, parse, print, UsageError } from '../command.js';
import { ago, every, table } from '../format.js';
import { help } from '../help.js';
import { cmdPeerImport, importFormat } from './peer-import.js';

type Peer = Static<typeof PeerView>;

function requireKey(text: string | undefined): string {
  if (text === undefined) throw new UsageError(`missing PUBKEY (${KEY_FORM}, as \`wg pubkey\` prints)`);
  const key = normalizeKey(text);
  if (key === null) throw new UsageError(`"${text}" is not a WireGuard public key (${keyProblem(text)}); expected ${KEY_FORM}, as \`wg pubkey\` prints`);
  return key;
}

const PEER_COMMANDS = ['add', 'rm', 'ls', 'show', 'import', 'reset-replay'];
const ADD_OPTIONS = ['allowed-ips', 'preshared-key-file', 'keepalive', 'expires-at', 'disabled'];
const IMPORT_OPTIONS = ['format', 'dry-run'];

export async function cmdPeer(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, {
    ...CLIENT_OPTIONS,
    'allowed-ips': { type: 'string' },
    'preshared-key-file': { type: 'string' },
    keepalive: { type: 'string' },
    'expires-at': { type: 'string' },
    disabled: { type: 'boolean' },
    format: { type: 'string' },
    'dry-run': { type: 'boolean' },
  });
  const [sub, arg, extra] = positionals;
  if (values.help) return help(sub !== undefined && PEER_COMMANDS.includes(sub) ? `peer ${sub}` : 'peer');
  if (sub === undefined) return help('peer', EXIT.usage);
  if (!PEER_COMMANDS.includes(sub)) throw new UsageError(`unknown peer command "${sub}" (${PEER_COMMANDS.join(', ')}; see wgjit peer --help)`);
  if (extra !== undefined) throw new UsageError(`unexpected argument "${extra}"`);
  for (const [owner, options] of [['add', ADD_OPTIONS], ['import', IMPORT_OPTIONS]] as const) {
    if (sub === owner) continue;
    const stray = options.find((o) => values[o as keyof typeof values] !== undefined);
    if (stray !== undefined) throw new UsageError(`--${stray} is an option of 'peer ${owner}', not 'peer ${sub}'`);
  }
  switch (sub) {
    case 'import': {
      if (arg === undefined) throw new UsageError('peer import needs FILE, or - for stdin (a wg config, `wg show IF dump` output or JSON lines)');
      return cmdPeerImport({ source: arg, format: importFormat(values.format), dryRun: values['dry-run'] === true, json: values.json === true }, () => client(values));
    }
    case 'add': {
      const publicKey = requireKey(arg);
      if (values['allowed-ips'] === undefined) throw new UsageError('peer add needs --allowed-ips CIDR[,CIDR], e.g. 10.8.0.2/32');
      const body: Static<typeof PeerCreateBody> = {
        publicKey,
        allowedIPs: values['allowed-ips'].split(',').map((s) => s.trim()).filter(Boolean),
      };
      if (values['preshared-key-file'] !== undefined) {
        try {
          body.presharedKey = readFileSync(values['preshared-key-file'], 'utf8').trim();
        } catch (err) {
          throw new UsageError(`cannot read --preshared-key-file ${values['preshared-key-file']}: ${(err as NodeJS.ErrnoException).code}`);
        }
      }
      if (values.keepalive !== undefined) {
        if (!/^\d+$/.test(values.keepalive)) throw new UsageError(`--keepalive "${values.keepalive}" must be whole seconds, 0..65535`);
        body.persistentKeepalive = Number(values.keepalive);
      }
      if (values['expires-at'] !== undefined) body.expiresAt = values['expires-at'];
      if (values.disabled) body.disabled = true;
      const created = await client(values).request<Peer>('POST', '/v1/peers', body);
      print(values.json, created, () => `added ${created.publicKey} (${created.allowedIPs.join(', ')})`);
      return EXIT.ok;
    }
    case 'rm': {
      const publicKey = requireKey(arg);
      await client(values).request('DELETE', `/v1/peers/${keyPath(publicKey)}`);
      print(values.json, { removed: publicKey }, () => `removed ${publicKey}`);
      return EXIT.ok;
    }
    case 'reset-replay': {
      const publicKey = requireKey(arg);
      const r = await client(values).request<Static<typeof ReplayReset>>('POST', `/v1/peers/${keyPath(publicKey)}/reset-replay`);
      print(values.json, r, () => `forgot the greatest timestamp of ${publicKey} on every gateway${r.storeHadTimestamp ? '' : ' (the store kept none)'}: its next initiation is admitted`);
      return EXIT.ok;
    }
    case 'show': {
      const publicKey = requireKey(arg);
      const p = await client(values).request<Static<typeof PeerDetail>>('GET', `/v1/peers/${keyPath(publicKey)}`);
      print(values.json, p, () =>
        [
          `peer: ${p.publicKey}`,
          `  allowed ips: ${p.allowedIPs.join(', ')}`,
          `  preshared key: ${p.hasPresharedKey ? '(hidden)' : '(none)'}`,
          `  persistent keepalive: ${p.persistentKeepalive ? every(p.persistentKeepalive) : 'off'}`,
          `  expires: ${p.expiresAt ?? 'never'}`,
          `  disabled: ${p.disabled ? 'yes' : 'no'}`,
          // An API of an earlier release answers without it.
          `  held by: ${p.holder ? `${p.holder.gateway} (taken ${ago(p.holder.since)})` : p.holder === null ? '(no gateway)' : '(not known)'}`,
        ].join('\n'),
      );
      return EXIT.ok;
    }
    default: {
      if (arg !== undefined) throw new UsageError(`unexpected argument "${arg}"`);
      const items = await client(values).all<Static<typeof PeerList>>('/v1/peers');
      print(values.json, items, () =>
        table(
          ['PUBLIC KEY', 'ALLOWED IPS', 'KEEPALIVE', 'EXPIRES', 'STATE'],
          items.map((p) => [p.publicKey, p.allowedIPs.join(','), p.persistentKeepalive ? `${p.persistentKeepalive}s` : '-', p.expiresAt ?? '-', p.disabled ? 'disabled' : 'enabled']),
        ),
      );
      return EXIT.ok;
    }
  }
}
