/**
 * `wgjit peer import FILE|-`: peers from a wg config, `wg show IF dump`
 * output or JSON lines, through POST /v1/peers/batch.
 *
 * Nothing of the file is written unless all of it is good: every line is
 * parsed and checked here first (a bad one stops the import with its line
 * number), against the keys and addresses of the fleet's gateways too (GET
 * /v1/gateways); an API of another release (other rules, maybe) then checks
 * every request as a dry run, and only then are the same requests sent
 * for real. A store lost midway through
 * the writes leaves part of the file written; the same import again
 * finishes it (an import is an upsert).
 */
import { readFileSync, statSync } from 'node:fs';
import type { Static } from 'typebox';
import { BATCH_BODY_LIMIT, MAX_BATCH_ITEMS, type FleetGatewayList, type PeerBatchResult } from '../../api/schemas.js';
import { WGJIT_VERSION } from '../../api/version.js';
import { GROUPS, groupNumber } from '../../authorize/store.js';
import { selfOfBeat } from '../../fleet/identities.js';
import { ApiClientError, type ApiClient } from '../client.js';
import { EXIT, print, UsageError } from '../command.js';
import { fileProblem } from '../settings.js';
import { IMPORT_FORMATS, MAX_IMPORT_BYTES, parsePeerFile, printable, shownMessage, type ImportFormat, type ImportRecord } from '../import-formats.js';

type BatchResult = Static<typeof PeerBatchResult>;
type Outcome = BatchResult['items'][number]['result'];

/** Fewer records than this go in one request and show no progress. */
export const PROGRESS_MIN_RECORDS = MAX_BATCH_ITEMS + 1;
/** Without a terminal, a progress line each time this many more records are done. */
export const PROGRESS_LINE_EVERY = 5000;
/**
 * Requests sent at once: while the API works on one, the next is on its
 * way and the CLI encodes a third (an import is otherwise a relay race of
 * three processes, each idle while another works).
 */
export const REQUESTS_IN_FLIGHT = 4;
/** Refusals listed one per line; beyond, counted. */
const MAX_REFUSALS_SHOWN = 20;
/** What a request adds around its items: `{"dryRun":false,"items":[…]}`. */
const BODY_OVERHEAD = 64;

export interface ImportOptions {
  source: string;
  format: ImportFormat | 'auto';
  dryRun: boolean;
  json: boolean;
}

/** The bytes of FILE or stdin, at most MAX_IMPORT_BYTES. */
async function readBytes(source: string): Promise<Buffer> {
  if (source === '-') {
    const chunks: Buffer[] = [];
    let total = 0;
    for await (const c of process.stdin) {
      const b = c as Buffer;
      total += b.length;
      if (total > MAX_IMPORT_BYTES) throw new UsageError(`stdin holds more than an import reads (${MAX_IMPORT_BYTES} bytes); split it into several files`);
      chunks.push(b);
    }
    return Buffer.concat(chunks, total);
  }
  try {
    const st = statSync(source);
    if (!st.isFile()) throw new UsageError(`${source} is not a file; give a file, or - for stdin`);
    if (st.size > MAX_IMPORT_BYTES) throw new UsageError(`${source} is ${st.size} bytes, more than an import reads (${MAX_IMPORT_BYTES}); split it into several files`);
    return readFileSync(source);
  } catch (err) {
    if (err instanceof UsageError) throw err;
    throw new UsageError(`cannot read ${source}: ${fileProblem(err)}`);
  }
}

/** FILE or stdin as UTF-8 text. */
async function readSource(source: string, name: string): Promise<string> {
  const bytes = await readBytes(source);
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new UsageError(`${name} is not UTF-8 text; give a wg config, \`wg show IF dump\` output or JSON lines`);
  }
}

/**
 * The records with the keys of one store group together, groups in key
 * order, each in file order (a counting sort: a million records are a
 * million steps): the store creates a group's records of one request in
 * one script call (docs/store-schema.md), so a request of many groups pays
 * many calls.
 */
function inGroupOrder(records: ImportRecord[]): ImportRecord[] {
  const starts = new Int32Array(GROUPS.length + 1);
  for (const r of records) starts[groupNumber(r.publicKey) + 1]!++;
  for (let g = 1; g <= GROUPS.length; g++) starts[g]! += starts[g - 1]!;
  const out = new Array<ImportRecord>(records.length);
  for (const r of records) out[starts[groupNumber(r.publicKey)]!++] = r;
  return out;
}

/** Records in requests: at most MAX_BATCH_ITEMS each, and bodies within BATCH_BODY_LIMIT. */
function chunk(records: ImportRecord[]): ImportRecord[][] {
  const out: ImportRecord[][] = [];
  let current: ImportRecord[] = [];
  let size = BODY_OVERHEAD;
  for (const r of records) {
    const bytes = Buffer.byteLength(r.json) + 1;
    if (current.length === MAX_BATCH_ITEMS || (current.length > 0 && size + bytes > BATCH_BODY_LIMIT)) {
      out.push(current);
      current = [];
      size = BODY_OVERHEAD;
    }
    current.push(r);
    size += bytes;
  }
  if (current.length > 0) out.push(current);
  return out;
}

/**
 * Progress on stderr, as pv and rsync show it: on a terminal one line
 * redrawn in place and cleared at the end; otherwise a line every
 * PROGRESS_LINE_EVERY records, so a log shows the import moving without
 * filling up. Silent for imports of one request.
 */
class Progress {
  private readonly tty = process.stderr.isTTY === true;
  private lastLine = 0;
  constructor(
    private readonly total: number,
    private readonly verb: string,
    private readonly shown = total >= PROGRESS_MIN_RECORDS,
  ) {}

  update(done: number): void {
    if (!this.shown) return;
    const text = `${this.verb} ${done}/${this.total} records (${Math.floor((done * 100) / this.total)}%)`;
    if (this.tty) process.stderr.write(`\r\x1b[K${text}`);
    else if (done === this.total || done - this.lastLine >= PROGRESS_LINE_EVERY) {
      this.lastLine = done;
      process.stderr.write(`wgjit: import: ${text}\n`);
    }
  }

  end(): void {
    if (this.shown && this.tty) process.stderr.write('\r\x1b[K');
  }
}

type ItemResult = BatchResult['items'][number];

/** A request's records, how many had each result, and the results asked for, each at its record's index. */
interface Answer {
  records: ImportRecord[];
  counts: Record<Outcome, number>;
  results: Array<{ index: number; item: ItemResult }>;
}

/** Which results a request asks the API for: only the refused ones (the counts tell the rest), where the API knows to answer so. */
type Shown = 'all' | 'refused';

/**
 * Sends every chunk, dry or for real, REQUESTS_IN_FLIGHT at a time; the
 * answers in chunk order. A 400 for a request names the lines it held (an
 * item index becomes its line), since a server check the CLI's did not
 * catch is about those lines. On a failure no further request is sent,
 * and the first failure is thrown once those in flight are over.
 */
async function send(api: ApiClient, chunks: ImportRecord[][], dryRun: boolean, shown: Shown, progress: Progress, where: (line: number) => string): Promise<Answer[]> {
  const answers: Answer[] = [];
  let next = 0;
  let finished = 0;
  let failure: { err: unknown } | null = null;
  const one = async (records: ImportRecord[]): Promise<Answer> => {
    // A PeerBatchBody, spelled from its records' JSON ("all" left out: an API of an earlier release knows no `results`).
    const body = `{"dryRun":${dryRun}${shown === 'refused' ? ',"results":"refused"' : ''},"items":[${records.map((r) => r.json).join(',')}]}`;
    let answer: BatchResult;
    try {
      answer = await api.requestJson<BatchResult>('POST', '/v1/peers/batch', body);
    } catch (err) {
      if (err instanceof ApiClientError && (err.status === 400 || err.status === 413)) {
        const first = records[0]!.line;
        const last = records[records.length - 1]!.line;
        const message = shownMessage(err.message).replace(/\bitems\[(\d+)\]/g, (m, i: string) => (records[Number(i)] ? where(records[Number(i)]!.line) : m));
        throw new ApiClientError(err.status, err.code, `${where(first)}-${last}: the API refused these records: ${message}`);
      }
      throw err;
    }
    return answerOf(records, answer, shown);
  };
  const worker = async (): Promise<void> => {
    while (failure === null && next < chunks.length) {
      const at = next++;
      try {
        answers[at] = await one(chunks[at]!);
      } catch (err) {
        failure ??= { err };
        return;
      }
      finished += chunks[at]!.length;
      progress.update(finished);
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.min(REQUESTS_IN_FLIGHT, chunks.length) }, worker));
  } finally {
    progress.end();
  }
  if (failure !== null) throw (failure as { err: unknown }).err;
  return answers;
}

/** The API's answer for `records`, checked against them: every result at a record, the counts adding up. */
function answerOf(records: ImportRecord[], answer: BatchResult, shown: Shown): Answer {
  const wrong = (what: string) => new ApiClientError(0, 'http_error', `the API answered ${what} for ${records.length} records`);
  if (shown === 'all') {
    // One result per record, in order (an API of an earlier release sends no counts).
    if (answer.items.length !== records.length) throw wrong(`${answer.items.length} results`);
    const counts: Record<Outcome, number> = { created: 0, updated: 0, unchanged: 0, refused: 0 };
    for (const item of answer.items) counts[item.result]++;
    return { records, counts, results: answer.items.map((item, index) => ({ index, item })) };
  }
  const { counts, items } = answer;
  const sum = counts.created + counts.updated + counts.unchanged + counts.refused;
  if (sum !== records.length || items.length !== counts.refused || items.some((item) => item.result !== 'refused' || !(Number.isInteger(item.index) && item.index! >= 0 && item.index! < records.length))) {
    throw wrong(`counts adding up to ${sum} and ${items.length} refusals`);
  }
  return { records, counts, results: items.map((item) => ({ index: item.index!, item })) };
}

/** Each result with its record, in line order. */
function byLine(answers: Answer[]): Array<{ record: ImportRecord; item: ItemResult }> {
  const all = answers.flatMap(({ records, results }) => results.map(({ index, item }) => ({ record: records[index]!, item })));
  return all.sort((a, b) => a.record.line - b.record.line);
}

function countOf(answers: Answer[]): Record<Outcome, number> {
  const counts: Record<Outcome, number> = { created: 0, updated: 0, unchanged: 0, refused: 0 };
  for (const a of answers) for (const k of Object.keys(counts) as Outcome[]) counts[k] += a.counts[k];
  return counts;
}

/** One line per refusal (the first MAX_REFUSALS_SHOWN, in line order) on stderr: where, which key, why. */
function reportRefusals(answers: Answer[], count: number, where: (line: number) => string): void {
  if (count === 0) return;
  const refused = byLine(answers).filter(({ item }) => item.result === 'refused');
  for (const { record, item } of refused.slice(0, MAX_REFUSALS_SHOWN)) {
    // The reason may quote a value of the line (a CIDR): shown as the parser's messages, nothing key-like.
    process.stderr.write(`wgjit: ${where(record.line)}: refused: ${shownMessage(item.reason ?? 'no reason given')}\n`);
  }
  if (count > MAX_REFUSALS_SHOWN) process.stderr.write(`wgjit: … and ${count - MAX_REFUSALS_SHOWN} more refused\n`);
}

export async function cmdPeerImport(opts: ImportOptions, api: () => ApiClient): Promise<number> {
  const name = opts.source === '-' ? 'stdin' : opts.source;
  const where = (line: number) => (line > 0 ? `${name}:${line}` : name);
  const text = await readSource(opts.source, name);
  const badFile = (failed: Extract<ReturnType<typeof parsePeerFile>, { ok: false }>) => {
    const [first] = failed.errors;
    const more = failed.count > 1 ? ` (and ${failed.count - 1} more bad line${failed.count > 2 ? 's' : ''})` : '';
    return new UsageError(`${where(first!.line)}: ${first!.message}${more}; nothing was imported`);
  };
  let parsed = parsePeerFile(text, opts.format);
  if (!parsed.ok) throw badFile(parsed);
  const client = api();
  const chunks = chunk(inGroupOrder(parsed.records));
  const total = parsed.records.length;

  // An API of this release checks a record as the lines were just checked
  // here: the records go at once. Another release may have other rules:
  // it checks every request as a dry run before anything is written.
  await client.request('GET', '/healthz');
  const ours = client.serverVersion === WGJIT_VERSION;
  // The one rule this side cannot check alone: no record may take a gateway's interface key or addresses.
  // Checked here against the fleet's list, so that the records still go at once and all or none.
  if (ours && !opts.dryRun) {
    const { items: fleet } = await client.request<Static<typeof FleetGatewayList>>('GET', '/v1/gateways');
    if (fleet.length > 0) {
      parsed = parsePeerFile(text, opts.format, new Date(), fleet.map(selfOfBeat));
      if (!parsed.ok) throw badFile(parsed);
    }
  }
  // Each record's result only for --json; else the counts and the refusals (an API of this release answers so).
  const shown: Shown = opts.json || !ours ? 'all' : 'refused';
  let answers = opts.dryRun || !ours ? await send(client, chunks, true, shown, new Progress(total, 'checked'), where) : [];
  const written = !opts.dryRun && countOf(answers).refused === 0;
  if (written) answers = await send(client, chunks, false, shown, new Progress(total, 'imported'), where);
  const counts = countOf(answers);
  reportRefusals(answers, counts.refused, where);

  const summary = `${counts.created} created, ${counts.updated} updated, ${counts.unchanged} unchanged${counts.refused ? `, ${counts.refused} refused` : ''}`;
  print(
    opts.json,
    // Spelled out only when asked for: a million records' results are not free.
    opts.json && {
      source: name,
      format: parsed.format,
      dryRun: opts.dryRun,
      written,
      counts,
      items: byLine(answers).map(({ record, item }) => ({ line: record.line, publicKey: record.publicKey, result: item.result, ...(item.reason !== undefined ? { reason: item.reason } : {}) })),
    },
    () =>
      written
        ? `imported ${total} peers from ${name} (${parsed.format}): ${summary}`
        : opts.dryRun
          ? `dry run, nothing written: ${total} peers from ${name} (${parsed.format}) would be ${summary}`
          : `nothing written: ${counts.refused} of ${total} peers from ${name} (${parsed.format}) refused; fix them and import again`,
  );
  return counts.refused > 0 ? EXIT.failed : EXIT.ok;
}

/** The --format value, or a usage error naming the choices. */
export function importFormat(value: string | undefined): ImportFormat | 'auto' {
  if (value === undefined || value === 'auto') return 'auto';
  if ((IMPORT_FORMATS as readonly string[]).includes(value)) return value as ImportFormat;
  throw new UsageError(`--format "${printable(value, 40)}" must be auto, ${IMPORT_FORMATS.join(', ')}`);
}
