/**
 * `wgjit store`: `migrate` moves the store's layout in place
 * (src/authorize/migrate.ts), talking to Redis itself; `status` and
 * `confirm-reset` show and confirm a store reset through the REST API
 * (src/authorize/epoch.ts).
 */
import type { Static } from 'typebox';
import type { MigrationProgress, MigrationReport } from '../../authorize/migrate.js';
import type { StoreState } from '../../api/schemas.js';
import { client, CLIENT_OPTIONS, EXIT, parse, print, UsageError } from '../command.js';
import { help } from '../help.js';
import { resolveRedisPassword, resolveSettings, settingOptions, STORE_SETTINGS } from '../settings.js';

/** How long a connection to the store may take before the command gives up. */
const CONNECT_TIMEOUT_MS = 10_000;

export async function cmdStore(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === undefined || sub === '--help' || sub === '-h' || sub === 'help') return help('store', sub === undefined ? EXIT.usage : EXIT.ok);
  if (sub === 'status' || sub === 'confirm-reset') return cmdStoreReset(sub, rest);
  if (sub !== 'migrate') throw new UsageError(`unknown store command "${sub}" (migrate, status, confirm-reset; see wgjit store --help)`);
  const { values, positionals } = parse(rest, { ...settingOptions(STORE_SETTINGS), 'dry-run': { type: 'boolean' } }, 'store');
  if (values.help) return help('store');
  if (positionals.length > 0) throw new UsageError(`unexpected argument "${positionals[0]}"`);
  const { 'dry-run': dryRun, ...settings } = values;
  const s = resolveSettings(STORE_SETTINGS, settings as Record<string, string>);
  const password = resolveRedisPassword(s);

  const { PeerStore } = await import('../../authorize/store.js');
  const { migrateLegacyLayout } = await import('../../authorize/migrate.js');
  const store = PeerStore.connect(s.redis, password === undefined ? {} : { password });
  try {
    if (!(await store.whenReady(CONNECT_TIMEOUT_MS))) {
      // Why, as the store's client saw it: which sentinels did not answer, a Cluster not formed, a refused connection.
      const why = store.problem();
      process.stderr.write(`wgjit: the peer store did not answer within ${CONNECT_TIMEOUT_MS / 1000} s${why === null ? '' : ` (${why})`}; nothing was written; check --redis\n`);
      return EXIT.failed;
    }
    const report = await migrateLegacyLayout(store, { dryRun: dryRun === true, onProgress: progress });
    process.stdout.write(`${reportText(report)}\n`);
    return report.unreadable.length > 0 ? EXIT.failed : EXIT.ok;
  } finally {
    await store.close();
  }
}

async function cmdStoreReset(sub: 'status' | 'confirm-reset', argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, CLIENT_OPTIONS, 'store');
  if (values.help) return help('store');
  if (positionals.length > 0) throw new UsageError(`unexpected argument "${positionals[0]}"`);
  if (sub === 'status') {
    const state = await client(values).request<Static<typeof StoreState>>('GET', '/v1/store');
    print(values.json, state, () =>
      state.reset === null
        ? 'store: intact (no reset recorded)'
        : [
            `store: RESET, not confirmed: it lost its data (${state.reset.lostGroups} of 4096 groups)`,
            `  recognized: ${state.reset.since} by gateway ${state.reset.detectedBy}`,
            '  gateways keep the peers it does not know; re-register the ones that should stay,',
            '  then run `wgjit store confirm-reset`',
          ].join('\n'),
    );
    return EXIT.ok;
  }
  const { reset } = await client(values).request<Static<typeof StoreState>>('POST', '/v1/store/confirm-reset');
  print(values.json, { reset }, () => `confirmed the store reset recognized ${reset?.since} by ${reset?.detectedBy}: gateways now remove the peers the store does not know`);
  return EXIT.ok;
}

let lastLine = 0;
/** A line per phase and every few seconds on a long run, as rsync's --info=progress2 keeps it to one place on a terminal. */
function progress(p: MigrationProgress): void {
  const now = Date.now();
  const finished = p.done === p.total;
  if (!finished && now - lastLine < 2_000) return;
  lastLine = now;
  const line = `${p.phase}: ${p.done.toLocaleString('en')} of ${p.total.toLocaleString('en')}`;
  process.stderr.write(process.stderr.isTTY ? `\r${line}${finished ? '\n' : ''}` : `${line}\n`);
}

function reportText(r: MigrationReport): string {
  const lines = [
    `${r.dryRun ? 'would migrate' : 'migrated'}: ${r.records} records (${r.dryRun ? 'none written' : `${r.written} written, ${r.records - r.written} already there`}), ${r.timestamps} timestamps`,
  ];
  if (r.unreadable.length > 0) {
    lines.push(`not migrated (the old layout is kept; fix or delete these, then run again):`, ...r.unreadable.map((u) => `  ${u}`));
  } else if (r.records === 0 && r.timestamps === 0) lines.push('no old layout found: nothing to do');
  else if (r.cleanedUp) lines.push('the old layout is removed');
  return lines.join('\n');
}
