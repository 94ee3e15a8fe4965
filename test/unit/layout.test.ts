/**
 * src/ is the product alone (docs/architecture.md, "Folders"): it imports
 * nothing from the harness, the tests or the benchmarks, and every file in
 * it is reached from the product's entry, so nothing there exists only for
 * a test, the demo or a benchmark. The harness lives in harness/.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import { requireAddon } from '../../src/native-addon.js';

const REPO = fileURLToPath(new URL('../..', import.meta.url)).replace(/\/$/, '');
const SRC = join(REPO, 'src');
const ENTRY = join(SRC, 'cli.ts');

/** What `ls src` shows: the stages, the API, the CLI, the daemon, telemetry and shared value types. */
const SRC_ENTRIES = [
  'api',
  'authorize',
  'capture',
  'cli',
  'cli.ts',
  'daemon',
  'fleet',
  'handshake',
  'install',
  'intake',
  'lifecycle',
  'native-addon.ts',
  'net',
  'pipeline.ts',
  'replay',
  'route',
  'telemetry',
];

/** Where src/ must never reach. */
const HARNESS_ROOTS = ['harness', 'test', 'bench', 'scripts'];

function tsFiles(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.ts'))
    .map((f) => join(dir, f))
    .sort();
}

interface Import {
  from: string;
  specifier: string;
  /** The file it names, for a relative specifier; null for a package or node: builtin. */
  target: string | null;
}

/** Every static import, export-from and import() of a file, relative ones resolved (NodeNext: './x.js' is './x.ts'). */
function importsOf(file: string): Import[] {
  const text = readFileSync(file, 'utf8');
  return ts.preProcessFile(text, true, true).importedFiles.map(({ fileName: specifier }) => {
    if (!specifier.startsWith('.')) return { from: file, specifier, target: null };
    const named = resolve(dirname(file), specifier);
    return { from: file, specifier, target: named.endsWith('.js') ? `${named.slice(0, -3)}.ts` : named };
  });
}

const rel = (p: string) => relative(REPO, p);
const srcFiles = tsFiles(SRC);

describe('src/ is the product alone', () => {
  it('imports nothing under harness/, test/, bench/ or scripts/, nor anything outside src/', () => {
    const outside = srcFiles
      .flatMap(importsOf)
      .filter((i) => i.target !== null && (relative(SRC, i.target).startsWith('..') || HARNESS_ROOTS.some((r) => rel(i.target!).startsWith(`${r}/`))))
      .map((i) => `${rel(i.from)} imports ${i.specifier}`);
    expect(outside).toEqual([]);
  });

  it('names every import literally and each one exists, so the scan above sees them all', () => {
    const computed = srcFiles.filter((f) => /\bimport\s*\(\s*[^'"\s)]/.test(readFileSync(f, 'utf8'))).map(rel);
    expect(computed).toEqual([]);
    const missing = srcFiles
      .flatMap(importsOf)
      .filter((i) => i.target !== null && !existsSync(i.target))
      .map((i) => `${rel(i.from)} imports ${i.specifier}`);
    expect(missing).toEqual([]);
  });

  it('reaches every .ts file under src/ from the entry, src/cli.ts', () => {
    const reached = new Set<string>();
    const queue = [ENTRY];
    while (queue.length > 0) {
      const file = queue.pop()!;
      if (reached.has(file) || !existsSync(file)) continue;
      reached.add(file);
      for (const i of importsOf(file)) if (i.target !== null && i.target.startsWith(`${SRC}/`)) queue.push(i.target);
    }
    expect(srcFiles.filter((f) => !reached.has(f)).map(rel)).toEqual([]);
  });

  it('lists exactly the expected entries', () => {
    expect(readdirSync(SRC).sort()).toEqual([...SRC_ENTRIES].sort());
  });

  it('has a row for every folder in the folder table of docs/architecture.md, and no row for a folder that is gone', () => {
    const text = readFileSync(join(REPO, 'docs/architecture.md'), 'utf8');
    const table = text.slice(text.indexOf('## Folders'));
    const named = [...table.matchAll(/^\| (.+?) \|/gm)].flatMap((m) => [...m[1]!.matchAll(/`([^`]+)`/g)].map((n) => n[1]!.replace(/\/$/, '')));
    const dirs = (dir: string) => readdirSync(join(REPO, dir), { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => join(dir, e.name));
    // Build outputs (git ignores them): dist/, and build/ where the test VM keeps its initramfs.
    const topLevel = dirs('.').filter((d) => !d.startsWith('.') && !['node_modules', 'dist', 'build'].includes(d));
    const folders = [...topLevel, ...dirs('src'), ...dirs('harness').filter((d) => d !== join('harness', 'addon', 'build'))];
    expect(folders.filter((f) => !named.some((n) => n === f || n.startsWith(`${f}/`)))).toEqual([]);
    expect(named.filter((n) => !existsSync(join(REPO, n)))).toEqual([]);
  });

  it('ships an addon without the benchmarks\' hook (harness/addon/ builds that one)', () => {
    expect(Object.keys(requireAddon())).not.toContain('benchCrypto');
  });
});
