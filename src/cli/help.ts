/**
 * The help pages: written here once, the run and api pages' options built
 * from the settings themselves (flag, purpose, default, variable, form).
 */
import { API_SETTINGS, envName, RUN_SETTINGS, SETTINGS, STORE_SETTINGS, type SettingName } from './settings.js';
import { DEFAULT_API } from './client.js';
import { EXIT } from './command.js';

/** The options `peer` and `status` share: where the API is and how to authenticate. */
const CLIENT_HELP = `Options:
  --api URL              the wgjit REST API (default ${DEFAULT_API});
                         HOST:PORT alone means http://HOST:PORT
                         env WGJIT_API
  --api-token-file FILE  file holding the API bearer token
                         env WGJIT_API_TOKEN_FILE, or the token itself in
                         WGJIT_API_TOKEN
  --json                 print JSON for scripts instead of text
  -h, --help             this help`;

const EXIT_HELP = `Exit codes: 0 success, 1 failure (API unreachable, server error, no gateway),
2 usage or configuration error (also a 400, 401 or 413 from the API),
3 no such peer, 4 the peer already exists.`;

const HELP: Record<string, string> = {
  main: `wgjit — on-demand WireGuard peer gateway

Usage:
  wgjit run    --interface WG_IF --capture-dev DEV[,DEV] --redis URL [options]
  wgjit api    --redis URL [--api-listen HOST:PORT] [--api-token-file FILE]
  wgjit peer   add PUBKEY --allowed-ips CIDR[,CIDR] [options]
  wgjit peer   set PUBKEY [--allowed-ips CIDR[,CIDR]] [options]
  wgjit peer   rm PUBKEY | ls [--json] | show PUBKEY [--json]
  wgjit peer   import FILE|- [--format auto|wg|dump|jsonl] [--dry-run]
  wgjit peer   reset-replay PUBKEY
  wgjit status [--json]
  wgjit store  status | confirm-reset | migrate --redis URL [--dry-run]
  wgjit version | --version | -V
  wgjit demo
  wgjit help [COMMAND [SUBCOMMAND]]

Run 'wgjit COMMAND --help' (and 'wgjit peer SUBCOMMAND --help'), or
'wgjit help COMMAND [SUBCOMMAND]', for the options of a command. 'peer' and
'status' talk to the REST API at --api URL or WGJIT_API (default
${DEFAULT_API}); the token comes from --api-token-file FILE,
WGJIT_API_TOKEN_FILE or WGJIT_API_TOKEN.

${EXIT_HELP}`,
  peer: `Usage:
  wgjit peer add PUBKEY --allowed-ips CIDR[,CIDR] [--preshared-key-file F]
                 [--keepalive N] [--expires-at ISO8601] [--disabled]
                 [--name NAME]
  wgjit peer set PUBKEY [--allowed-ips CIDR[,CIDR]]
                 [--preshared-key-file F | --no-preshared-key]
                 [--keepalive N] [--expires-at ISO8601 | --no-expiry]
                 [--disable | --enable] [--name NAME]
  wgjit peer rm PUBKEY
  wgjit peer ls [--json]
  wgjit peer show PUBKEY [--json]
  wgjit peer import FILE|- [--format auto|wg|dump|jsonl] [--dry-run] [--json]
  wgjit peer reset-replay PUBKEY

Manages the peer store through the REST API; gateways install a stored peer
when its first handshake arrives. 'wgjit peer SUBCOMMAND --help' (or
'wgjit peer help SUBCOMMAND') for more.

${CLIENT_HELP}

${EXIT_HELP}`,
  'peer add': `Usage: wgjit peer add PUBKEY --allowed-ips CIDR[,CIDR] [--preshared-key-file F]
                 [--keepalive N] [--expires-at ISO8601] [--disabled]
                 [--name NAME] [options]

Stores a peer (POST /v1/peers). PUBKEY is the client's public key as
'wg pubkey' prints it.

  --allowed-ips CIDR[,CIDR]  addresses routed to the peer (required),
                             e.g. 10.8.0.2/32,fd00::2/128
  --preshared-key-file FILE  file holding a preshared key ('wg genpsk');
                             stored, never shown again
  --keepalive N              persistent keepalive in seconds, 0..65535 (0: off)
  --expires-at ISO8601       refuse the peer from then on,
                             e.g. 2030-01-01T00:00:00Z, or a date alone
                             (2030-01-01: midnight UTC); a time already
                             past is sent, with a warning
  --disabled                 store it, but refuse it until enabled
  --name NAME                a label for people, up to 64 printable
                             characters (peer ls shows it)

${CLIENT_HELP}

Exit code 4 when the peer already exists, 2 for bad input.`,
  'peer set': `Usage: wgjit peer set PUBKEY [--allowed-ips CIDR[,CIDR]]
                 [--preshared-key-file F | --no-preshared-key]
                 [--keepalive N] [--expires-at ISO8601 | --no-expiry]
                 [--disable | --enable] [--name NAME] [options]

Changes a stored peer (PATCH /v1/peers/PUBKEY); the fields not given stay.
Gateways that hold the peer apply the change. Prints the record as
'peer show' does (--json: the API's record).

  --allowed-ips CIDR[,CIDR]  replace the allowed IPs
  --preshared-key-file FILE  set the preshared key from FILE ('wg genpsk')
  --no-preshared-key         remove the preshared key
  --keepalive N              persistent keepalive in seconds, 0..65535 (0: off)
  --expires-at ISO8601       refuse the peer from then on (a date alone:
                             midnight UTC; a time already past is sent,
                             with a warning)
  --no-expiry                never expires
  --disable                  refuse the peer (gateways remove it)
  --enable                   admit it again
  --name NAME                set the name (up to 64 printable characters);
                             --name '' removes it

At least one change is needed; the two flags of a pair (--preshared-key-file
and --no-preshared-key, --expires-at and --no-expiry, --disable and
--enable) cannot be given together.

${CLIENT_HELP}

Exit code 3 when there is no such peer, 2 for bad input.`,
  'peer rm': `Usage: wgjit peer rm PUBKEY [options]

Removes a peer from the store (DELETE /v1/peers/PUBKEY); every gateway that
holds it removes it from its device.

${CLIENT_HELP}

Exit code 3 when there is no such peer.`,
  'peer reset-replay': `Usage: wgjit peer reset-replay PUBKEY [options]

Forgets the key's greatest handshake timestamp, in the store and on every
gateway (POST /v1/peers/PUBKEY/reset-replay, audited). For a client locked
out because one of its initiations was stamped ahead of time (a clock that
jumped): gateways drop the timestamp within moments and remove the peer if
they hold it, so the client's next initiation installs it again. Replay
protection for the key starts over from that initiation.

${CLIENT_HELP}

${EXIT_HELP}`,
  'peer ls': `Usage: wgjit peer ls [options]

Lists every stored peer (GET /v1/peers, all pages): public key, name,
allowed IPs, keepalive, expiry and state: enabled, disabled, or expired
(its expiry has passed: gateways refuse it). --json prints an array of
records.

${CLIENT_HELP}`,
  'peer show': `Usage: wgjit peer show PUBKEY [options]

Shows one stored peer (GET /v1/peers/PUBKEY): its name, allowed IPs,
whether it has a preshared key (never the key), keepalive, expiry, state
(enabled, disabled, or expired) and the gateway that holds it now.

${CLIENT_HELP}

Exit code 3 when there is no such peer.`,
  'peer import': `Usage: wgjit peer import FILE|- [--format auto|wg|dump|jsonl] [--dry-run]
                    [options]

Stores the peers of FILE (- reads stdin) through POST /v1/peers/batch: a new
key is created; an existing one takes the fields the file gives and keeps
the others (an import never removes a preshared key, an expiry or a
disabled flag); one that already has them is left unchanged.

  --format FORMAT  what FILE holds (default auto: told from its first line):
                   wg     a wg or wg-quick config: its [Peer] blocks
                          (PublicKey, AllowedIPs, PresharedKey,
                          PersistentKeepalive; Endpoint and [Interface]
                          are skipped)
                   dump   \`wg show IF dump\` output
                   jsonl  one JSON record a line, as POST /v1/peers takes it
  --dry-run        check everything and say what would change; write nothing

Every line is checked before anything is sent, and the API checks every
record before anything is written: a bad line stops the import with
FILE:LINE and what is wrong, and nothing is written. Long imports show
progress on stderr. --json prints {source, format, dryRun, written, counts,
items: [{line, publicKey, result, reason?}]}.

${CLIENT_HELP}

Exit code 2 for a bad line or usage, 1 when the API refused a record
(each listed on stderr with its line) or failed.`,
  status: `Usage: wgjit status [options]

This gateway as 'wg show' prints a device: the interface (public key,
listening port, backend), then each installed peer (endpoint, allowed ips,
latest handshake, transfer, and wgjit's state: provisional until a
handshake completes, then confirmed), then wgjit's counters. Needs the API
of a gateway ('wgjit run'); a control plane ('wgjit api') has no gateway.
--json prints {gateway, peers, stats}.

${CLIENT_HELP}

${EXIT_HELP}`,
  version: `Usage: wgjit version | wgjit --version | wgjit -V

Prints the release (wgjit VERSION), and on a second line the Node.js
runtime it runs on.`,
  demo: `Usage: wgjit demo

Builds a throw-away testbed in network namespaces — a gateway running
WireGuard with no peers, a private redis-server, the wgjit daemon, and three
WireGuard clients (two registered, one not) — connects each client, prints
whether it got through and how long its first handshake took, then removes
everything (also on Ctrl-C). Needs root.`,
};

const HELP_WIDTH = 80;

/** A setting's default as an operator would type it: 127.0.0.1:9180, on, auto. */
function showDefault(value: unknown): string {
  if (typeof value === 'boolean') return value ? 'on' : 'off';
  if (typeof value === 'object' && value !== null && 'host' in value && 'port' in value) {
    const { host, port } = value as { host: string; port: number };
    return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
  }
  return String(value);
}

/** Words of `text` in lines of at most `width` characters (a longer word gets a line of its own). */
function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/).filter(Boolean)) {
    if (line && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  if (line) lines.push(line);
  return lines;
}

/** One entry per setting: the flag, then what it does and its default, then its variable and form, in one aligned column. */
function settingsHelp(names: readonly SettingName[]): string {
  const flagWidth = Math.max(...names.map((n) => SETTINGS[n].flag.length)) + 2;
  const indent = 2 + flagWidth + 2;
  return names
    .map((n) => {
      const s: { flag: string; help: string; form: string; default?: unknown; required?: boolean } = SETTINGS[n];
      const tail = s.required ? ' (required)' : 'default' in s ? ` (default ${showDefault(s.default)})` : '';
      const lines = [...wrap(`${s.help}${tail}`, HELP_WIDTH - indent), ...wrap(`env ${envName(s.flag)}; ${s.form}`, HELP_WIDTH - indent)];
      return lines.map((l, i) => (i === 0 ? `  ${`--${s.flag}`.padEnd(flagWidth)}  ` : ' '.repeat(indent)) + l).join('\n');
    })
    .join('\n');
}
HELP['run'] = `Usage: wgjit run --interface WG_IF --capture-dev DEV[,DEV] --redis URL [options]

Runs the gateway daemon: captures handshake initiations with XDP on the
capture devices, verifies them, installs authorized peers into WG_IF and
replays the initiation. Flags win over WGJIT_* variables, which win over
the --config file (JSON, keys are flag names).

${settingsHelp(RUN_SETTINGS)}`;
HELP['api'] = `Usage: wgjit api --redis URL [--api-listen HOST:PORT] [--api-token-file FILE]

Serves the store routes of the REST API only (a central control plane, no
data plane).

${settingsHelp(API_SETTINGS)}`;

HELP['store'] = `Usage: wgjit store status [options]
       wgjit store confirm-reset [options]
       wgjit store migrate --redis URL [--dry-run]

status: whether a gateway found that the store lost its data (restarted
empty, flushed, a replica promoted before it caught up, a wrong database)
and nobody has confirmed it yet (GET /v1/store). Meanwhile every gateway
keeps the peers the store does not know, so no client is cut off.

confirm-reset: after re-registering the peers that should stay, tells
every gateway to remove the others again (POST /v1/store/confirm-reset,
audited). Exit code 3 when no reset is recorded.

status and confirm-reset talk to the REST API:
${CLIENT_HELP}

migrate: moves a store from the single-node layout of earlier wgjit releases (one
JSON string per peer, one index and one timestamp hash for all peers) to
this release's (packed records in 4,096 hash-tagged groups, which also run
on Redis Cluster), in place. Stop every wgjit process that uses the store
first (installed peers keep passing traffic), take a snapshot (BGSAVE),
migrate, then start this release. Safe to run again: what is already in the
new layout stays. The old keys are deleted only once every record has been
written and read back; a record that cannot be read keeps them all and is
named. Progress goes to stderr, the report to stdout.

migrate's options:
  --dry-run  read and check everything, write nothing
  -h, --help this help

${settingsHelp(STORE_SETTINGS)}`;

/** Whether `topic` ('peer set') has a page. */
export function hasHelp(topic: string): boolean {
  return Object.hasOwn(HELP, topic);
}

/** Prints a help page: on stdout when asked for, on stderr (with a usage exit) when the command was incomplete. */
export function help(topic: string, code: number = EXIT.ok): number {
  (code === EXIT.ok ? process.stdout : process.stderr).write(`${HELP[topic]}\n`);
  return code;
}
