/**
 * `wgjit demo`: the whole path on real parts, in throw-away namespaces.
 *
 *   wjd-c1 ─┐                                  wjd-gw: wireguard-go (no peers)
 *   wjd-c2 ─┼─ wjd-sw (bridge) ── uplink+XDP ─ redis-server, wgjit run
 *   wjd-c3 ─┘
 *
 * Clients 1 and 2 are registered in the store, client 3 is not. Each client
 * pings the gateway through its tunnel; a sniffer on its veth times the
 * first initiation to the gateway's handshake response.
 */
import { createTestbed, type Testbed, type TestbedClient } from '../testbed/topology.js';
import { startStack, type Stack } from '../testbed/stack.js';
import { nsRun } from '../testbed/exec.js';

const PREFIX = 'wjd';
/** How long an unregistered client is watched for an answer that must not come. */
const UNREGISTERED_WATCH_MS = 3_000;
/** Long enough for a client's first retry (REKEY_TIMEOUT 5 s + jitter). */
const RESPONSE_WAIT_MS = 7_000;

const say = (line: string) => process.stdout.write(`${line}\n`);

interface Row {
  client: string;
  registered: boolean;
  result: string;
  firstHandshakeMs: string;
  initiations: string;
  ok: boolean;
}

async function connect(tb: Testbed, client: TestbedClient, registered: boolean): Promise<Row> {
  const sniffer = await client.sniff();
  const ping = nsRun(client.ns, 'ping', ['-c', '1', '-W', '2', tb.gatewayTunnelAddress]).then(
    () => true,
    () => false,
  );
  const answered = await sniffer.waitForResponse(registered ? RESPONSE_WAIT_MS : UNREGISTERED_WATCH_MS);
  const pinged = await ping;
  const name = `client ${client.index} (${client.address})`;
  if (!answered) {
    return { client: name, registered, result: 'no answer', firstHandshakeMs: '-', initiations: String(sniffer.initiations), ok: !registered };
  }
  const ms = sniffer.firstResponseAt! - sniffer.firstInitiationAt!;
  return {
    client: name,
    registered,
    result: pinged ? 'connected, ping ok' : 'handshake ok',
    firstHandshakeMs: ms.toFixed(2),
    initiations: String(sniffer.initiationsBeforeResponse),
    ok: registered && sniffer.initiationsBeforeResponse === 1,
  };
}

function printTable(rows: Row[]): void {
  const headers = ['CLIENT', 'REGISTERED', 'RESULT', 'FIRST INITIATION → RESPONSE (ms)', 'INITIATIONS SENT'];
  const cells = rows.map((r) => [r.client, r.registered ? 'yes' : 'no', r.result, r.firstHandshakeMs, r.initiations]);
  const widths = headers.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i]!.length)));
  for (const line of [headers, ...cells]) say(line.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd());
}

export async function runDemo(): Promise<number> {
  if (process.getuid?.() !== 0) {
    process.stderr.write('wgjit demo: needs root (it creates network namespaces and attaches XDP); run it with sudo\n');
    return 2;
  }
  let tb: Testbed | null = null;
  let stack: Stack | null = null;
  try {
    say('• building the testbed: gateway, switch and 3 client namespaces, WireGuard on the gateway with no peers');
    tb = await createTestbed({ prefix: PREFIX, clients: 3, gatewayWg: true, wgKind: 'auto' });
    say(
      tb.wgKind === 'kernel'
        ? `• the running kernel has WireGuard: ${tb.gateway!.ifname} is a kernel WireGuard link (netlink backend)`
        : `• the running kernel has no WireGuard: ${tb.gateway!.ifname} is wireguard-go (userspace API backend)`,
    );
    say(`• starting redis-server and \`wgjit run\` in ${tb.gatewayNs} (XDP on ${tb.uplink})`);
    stack = await startStack(tb);
    const rows: Row[] = [];
    for (const client of tb.clients) {
      const registered = client.index <= 2;
      const wg = await client.startWireguard();
      if (registered) {
        await stack.cli(['peer', 'add', wg.publicKey, '--allowed-ips', `${client.tunnelAddress}/32`]);
        say(`• client ${client.index}: registered ${wg.publicKey} with wgjit peer add`);
      } else {
        say(`• client ${client.index}: ${wg.publicKey} is NOT registered`);
      }
      rows.push(await connect(tb, client, registered));
    }
    say('');
    printTable(rows);
    say('');
    say('`wgjit status` on the gateway:');
    say((await stack.cli(['status'])).stdout);
    const ok = rows.every((r) => r.ok);
    say(ok ? 'demo: registered clients were answered on their first initiation; the unregistered one got nothing.' : 'demo: UNEXPECTED RESULT (see the table above)');
    return ok ? 0 : 1;
  } finally {
    say('• cleaning up');
    await stack?.stop();
    await tb?.destroy();
  }
}
