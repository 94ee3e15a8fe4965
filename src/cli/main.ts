/**
 * The `wgjit` command. Wiring only: parse, validate, call, print.
 * Exit codes: 0 success, 1 the operation failed, 2 usage or configuration
 * error, 3 no such peer, 4 the peer already exists.
 */
import { WGJIT_VERSION } from '../api/version.js';
import { NoBackendError } from '../install/select.js';
import { ApiClientError } from './client.js';
import { EXIT, parse, UsageError } from './command.js';
import { cmdApi, cmdRun } from './commands/daemon.js';
import { cmdPeer } from './commands/peer.js';
import { cmdStatus } from './commands/status.js';
import { cmdStore } from './commands/store.js';
import { hasHelp, help } from './help.js';
import { nearest } from './suggest.js';
import { ConfigError } from './settings.js';
import { GatewayIdInUseError } from '../fleet/gateway-id.js';

export { EXIT } from './command.js';

/** The exit code for an error from the API (docs/operations.md, "CLI"). */
function exitFor(err: ApiClientError): number {
  if (err.code === 'not_found') return EXIT.notFound;
  if (err.status === 409) return EXIT.conflict;
  // An oversized body (413) is bad input like a 400: the exit code it had before the API said 413.
  if (err.status === 400 || err.status === 401 || err.status === 413) return EXIT.usage;
  return EXIT.failed;
}

const COMMANDS = ['run', 'api', 'peer', 'status', 'store', 'version', 'demo', 'help'];

/**
 * `wgjit version`: the release, then the runtime it runs on. libbpf's
 * version is not here: the addon does not report it, and loading the addon
 * (the BPF loader) to print a version would cost more than it tells.
 */
function versionText(): string {
  return `wgjit ${WGJIT_VERSION}\nnode ${process.versions.node}\n`;
}

/** `wgjit help [COMMAND [SUBCOMMAND]]`: the page `wgjit COMMAND [SUBCOMMAND] --help` prints. */
function helpTopic(words: string[]): string {
  if (words.length === 0) return 'main';
  const topic = words.join(' ');
  if (hasHelp(topic)) return topic;
  throw new UsageError(`no help for "${topic}"; the commands: ${COMMANDS.join(', ')}; see wgjit --help`);
}

export async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  try {
    switch (cmd) {
      case 'run':
        return await cmdRun(rest);
      case 'api':
        return await cmdApi(rest);
      case 'peer':
        return await cmdPeer(rest);
      case 'status':
        return await cmdStatus(rest);
      case 'store':
        return await cmdStore(rest);
      case 'demo': {
        const { values } = parse(rest, {}, 'demo');
        if (values.help) return help('demo');
        // The demo is harness, not shipped in dist/: bin/wgjit runs it from the checkout.
        process.stderr.write('wgjit demo: runs from a checkout of wgjit, as ./bin/wgjit demo (make demo)\n');
        return EXIT.usage;
      }
      case undefined:
        return help('main', EXIT.usage);
      case '--help':
      case '-h':
        return help('main');
      case 'help':
        return help(helpTopic(rest));
      case 'version':
      case '--version':
      case '-V': {
        const { values } = parse(rest, {}, 'version');
        if (values.help) return help('version');
        process.stdout.write(versionText());
        return EXIT.ok;
      }
      default: {
        const near = nearest(cmd, COMMANDS);
        throw new UsageError(`unknown command "${cmd}"${near === null ? '' : ` (did you mean ${near}?)`}; the commands: ${COMMANDS.join(', ')}; see wgjit --help`);
      }
    }
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`wgjit: ${err.message}\n`);
      return EXIT.usage;
    }
    // A setting, or a --backend that does not fit the interface: the operator's to fix.
    if (err instanceof ConfigError || err instanceof NoBackendError || err instanceof GatewayIdInUseError) {
      process.stderr.write(`wgjit: ${err.message}\n`);
      return EXIT.usage;
    }
    if (err instanceof ApiClientError) {
      const hint = err.status === 401 ? '; check --api-token-file, WGJIT_API_TOKEN_FILE or WGJIT_API_TOKEN' : '';
      process.stderr.write(`wgjit: ${err.message}${err.status ? ` (${err.code})` : ''}${hint}\n`);
      return exitFor(err);
    }
    process.stderr.write(`wgjit: ${(err as Error).message}\n`);
    return EXIT.failed;
  }
}
