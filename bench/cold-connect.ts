/**
 * Cold-connect latency: a client's first handshake initiation to the
 * gateway's handshake response, for clients the gateway has never seen.
 *
 *   wgjit      XDP capture → verify → store → install → replay: the first
 *              initiation is answered.
 *   baseline   the same daemon with --replay off: the peer is installed
 *              after the first initiation was dropped, so the client's
 *              retry (REKEY_TIMEOUT 5 s + jitter) connects.
 *
 * Both run in the same testbed in the same run, on real wireguard-go,
 * redis-server and XDP; the clients are our Noise initiator with a real
 * client's retry timers, each with a fresh key registered through the API.
 *
 *   make bench                       (200 clients per path)
 *   npx tsx bench/cold-connect.ts --clients 500
 */
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { addAddress } from '../harness/testbed/netns.js';
import { nsRun } from '../harness/testbed/exec.js';
import { startStack } from '../harness/testbed/stack.js';
import { createTestbed, type Testbed } from '../harness/testbed/topology.js';

const { values } = parseArgs({ options: { clients: { type: 'string', default: '200' }, 'baseline-concurrency': { type: 'string', default: '50' } } });
const CLIENTS = Number(values.clients);
const BASELINE_CONCURRENCY = Number(values['baseline-concurrency']);
/** Source addresses for the synthetic clients: .100 .. .249 of the underlay. */
const SOURCE_FIRST = 100;
const SOURCE_COUNT = 150;
const TSX = resolve('node_modules/.bin/tsx');
const CLIENT_SCRIPT = resolve('bench/cold-connect-client.ts');

interface Result {
  i: number;
  ms: number;
  initiations: number;
  ok: boolean;
}

function quantile(sorted: number[], q: number): number {
  if (sorted.length === 0) return NaN;
  const idx = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[idx]!;
}

/**
 * A quantile of a Prometheus histogram, in ms, interpolated within its
 * bucket as PromQL's histogram_quantile does.
 */
function histogramQuantileMs(metrics: string, name: string, q: number): number {
  const buckets = [...metrics.matchAll(new RegExp(`^${name}_bucket\\{le="([^"]+)"\\} (\\S+)$`, 'gm'))].map((m) => ({
    le: m[1] === '+Inf' ? Infinity : Number(m[1]),
    count: Number(m[2]),
  }));
  const total = buckets[buckets.length - 1]?.count ?? 0;
  if (total === 0) return NaN;
  const rank = q * total;
  let prevLe = 0;
  let prevCount = 0;
  for (const b of buckets) {
    if (b.count >= rank) {
      if (b.le === Infinity) return prevLe * 1000;
      return (prevLe + ((b.le - prevLe) * (rank - prevCount)) / Math.max(1, b.count - prevCount)) * 1000;
    }
    prevLe = b.le;
    prevCount = b.count;
  }
  return NaN;
}

interface Phase {
  results: Result[];
  metrics: string;
}

async function phase(tb: Testbed, replay: boolean, tunnelBase: number, concurrency: number): Promise<Phase> {
  const stack = await startStack(tb, { apiOnUnderlay: true, logLevel: 'warn', runArgs: ['--replay', replay ? 'on' : 'off'] });
  try {
    const prefix = tb.gatewayAddress.split('.').slice(0, 3).join('.');
    const sources = Array.from({ length: CLIENTS }, (_, i) => `${prefix}.${SOURCE_FIRST + (i % SOURCE_COUNT)}`);
    const args = {
      gateway: tb.gatewayAddress,
      port: tb.listenPort,
      gatewayPublicKey: tb.gateway!.publicKey,
      api: stack.apiUrl,
      token: stack.token,
      sources,
      concurrency,
      tunnelBase,
    };
    process.stderr.write(`  ${replay ? 'wgjit' : 'baseline'}: ${CLIENTS} cold clients, ${concurrency} at a time…\n`);
    const { stdout } = await nsRun(tb.clients[0]!.ns, TSX, [CLIENT_SCRIPT, JSON.stringify(args)], { timeoutMs: 30 * 60_000 });
    const lines = stdout.trim().split('\n').map((l) => JSON.parse(l) as Result | { metrics: string });
    const results = lines.filter((l): l is Result => !('metrics' in l));
    const metrics = lines.find((l): l is { metrics: string } => 'metrics' in l)?.metrics ?? '';
    return { results, metrics };
  } finally {
    await stack.stop();
  }
}

function row(name: string, results: Result[]): string[] {
  const ok = results.filter((r) => r.ok);
  const ms = ok.map((r) => r.ms).sort((a, b) => a - b);
  const firstAnswered = ok.filter((r) => r.initiations === 1).length;
  const f = (n: number) => (n >= 100 ? n.toFixed(0) : n.toFixed(2));
  return [name, String(results.length), String(ok.length), `${firstAnswered}`, f(quantile(ms, 0.5)), f(quantile(ms, 0.9)), f(quantile(ms, 0.99)), f(ms[ms.length - 1] ?? NaN)];
}

async function main(): Promise<void> {
  if (!Number.isInteger(CLIENTS) || CLIENTS < 1) throw new Error('--clients must be a positive whole number');
  process.stderr.write('cold-connect benchmark: building the testbed…\n');
  const tb = await createTestbed({ prefix: 'bcc', clients: 1, gatewayWg: true, underlayOctet: 93, tunnelOctet: 201 });
  try {
    const c = tb.clients[0]!;
    const prefix = tb.gatewayAddress.split('.').slice(0, 3).join('.');
    for (let k = 0; k < Math.min(CLIENTS, SOURCE_COUNT); k++) await addAddress(c.ns, c.veth, `${prefix}.${SOURCE_FIRST + k}/24`);

    const wgjit = await phase(tb, true, 1, 1);
    const baseline = await phase(tb, false, 1 + CLIENTS, BASELINE_CONCURRENCY);

    const headers = ['path', 'clients', 'connected', 'first answered', 'p50 ms', 'p90 ms', 'p99 ms', 'max ms'];
    const rows = [row('wgjit (capture + replay)', wgjit.results), row('baseline (install, client retries)', baseline.results)];
    const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
    const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
    console.log(line(headers));
    console.log(`|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`);
    for (const r of rows) console.log(line(r));
    const p50 = (rs: Result[]) => quantile(rs.filter((r) => r.ok).map((r) => r.ms).sort((a, b) => a - b), 0.5);
    console.log(`\nmedian speed-up: ${(p50(baseline.results) / p50(wgjit.results)).toFixed(0)}× (baseline p50 / wgjit p50, same run)`);
    console.log('\nwhere the wgjit path spends its time (daemon histograms, estimated from buckets):');
    const stages: Array<[string, string]> = [
      ['verify (mac1 … timestamp)', 'wgjit_verify_seconds'],
      ['store lookup (overlaps verify)', 'wgjit_store_request_seconds'],
      ['install into the device', 'wgjit_install_seconds'],
      ['XDP arrival → replay sent', 'wgjit_cold_connect_seconds'],
    ];
    const w = Math.max(...stages.map(([l]) => l.length));
    console.log(`| ${'stage'.padEnd(w)} | p50 ms | p90 ms |`);
    console.log(`|${'-'.repeat(w + 2)}|--------|--------|`);
    for (const [label, name] of stages) {
      const [p50, p90] = [0.5, 0.9].map((q) => histogramQuantileMs(wgjit.metrics, name, q).toFixed(2).padStart(6));
      console.log(`| ${label.padEnd(w)} | ${p50} | ${p90} |`);
    }
  } finally {
    await tb.destroy();
  }
}

await main();
