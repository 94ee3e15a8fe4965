/** `wgjit status`: this gateway as `wg show` prints a device, then its counters. */
import type { Static } from 'typebox';
import type { GatewayInfo as GatewayInfoSchema, GatewayStats, InstalledPeer, InstalledPeerList } from '../../api/schemas.js';
import { ApiClientError } from '../client.js';
import { client, CLIENT_OPTIONS, EXIT, parse, print, UsageError } from '../command.js';
import { ago, bytes, table } from '../format.js';
import { help } from '../help.js';

type GatewayInfo = Static<typeof GatewayInfoSchema>;
type GatewayPeer = Static<typeof InstalledPeer>;
type Stats = Static<typeof GatewayStats>;

/** wg's order: the latest handshake first, peers without one last. */
function byLatestHandshake(a: GatewayPeer, b: GatewayPeer): number {
  const ta = a.lastHandshakeAt === null ? -Infinity : Date.parse(a.lastHandshakeAt);
  const tb = b.lastHandshakeAt === null ? -Infinity : Date.parse(b.lastHandshakeAt);
  return ta === tb ? 0 : ta < tb ? 1 : -1;
}

/** The device and its peers as `wg show` prints them, each peer with wgjit's state; then the counters. */
export function statusText(gateway: GatewayInfo, peers: GatewayPeer[], stats: Stats, now = Date.now()): string {
  const blocks = [
    [`interface: ${gateway.interface}`, `  public key: ${gateway.publicKey}`, `  listening port: ${gateway.listenPort}`, `  backend: ${gateway.backend}`].join('\n'),
    ...[...peers].sort(byLatestHandshake).map((p) =>
      [
        `peer: ${p.publicKey}`,
        ...(p.endpoint === null ? [] : [`  endpoint: ${p.endpoint}`]),
        `  allowed ips: ${p.allowedIPs.length > 0 ? p.allowedIPs.join(', ') : '(none)'}`,
        ...(p.lastHandshakeAt === null ? [] : [`  latest handshake: ${ago(p.lastHandshakeAt, now)}`]),
        ...(p.rxBytes === 0 && p.txBytes === 0 ? [] : [`  transfer: ${bytes(p.rxBytes)} received, ${bytes(p.txBytes)} sent`]),
        `  wgjit state: ${p.state}, installed ${ago(p.installedAt, now)}`,
      ].join('\n'),
    ),
    table(['COUNTER', 'VALUE'], Object.entries(stats).sort(([a], [b]) => a.localeCompare(b)).map(([k, v]) => [k, String(v)])),
  ];
  return blocks.join('\n\n');
}

export async function cmdStatus(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, CLIENT_OPTIONS, 'status');
  if (values.help) return help('status');
  if (positionals.length > 0) throw new UsageError(`unexpected argument "${positionals[0]}"`);
  const api = client(values);
  let gateway: GatewayInfo;
  try {
    gateway = await api.request<GatewayInfo>('GET', '/v1/gateway');
  } catch (err) {
    if (err instanceof ApiClientError && err.code === 'no_gateway') {
      throw new Error(`the API at ${api.base} has no gateway (it is a control plane, \`wgjit api\`); point --api or WGJIT_API at the API of a \`wgjit run\``);
    }
    throw err;
  }
  const [peers, stats] = await Promise.all([api.all<Static<typeof InstalledPeerList>>('/v1/gateway/peers'), api.request<Stats>('GET', '/v1/gateway/stats')]);
  print(values.json, { gateway, peers, stats }, () => statusText(gateway, peers, stats));
  return EXIT.ok;
}
