import { existsSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { WIRE_CONSTANTS } from '../../src/handshake/messages.js';

const HEADER = new URL('../../bpf/wg_wire.h', import.meta.url);

/** `#define NAME expr` lines of the header, where expr is numbers and names joined by '+'. */
function headerConstants(text: string): Map<string, number> {
  const raw = new Map<string, string>();
  for (const m of text.matchAll(/^#define\s+(WG_\w+)\s+(.+?)\s*$/gm)) raw.set(m[1]!, m[2]!);
  const values = new Map<string, number>();
  const resolve = (name: string, depth = 0): number => {
    const known = values.get(name);
    if (known !== undefined) return known;
    const expr = raw.get(name);
    if (expr === undefined || depth > 32) throw new Error(`cannot resolve ${name}`);
    const terms = expr.replace(/[()]/g, '').split('+').map((t) => t.trim());
    const value = terms.reduce((sum, t) => sum + (/^\d+$/.test(t) ? Number(t) : resolve(t, depth + 1)), 0);
    values.set(name, value);
    return value;
  };
  for (const name of raw.keys()) resolve(name);
  return values;
}

if (!existsSync(HEADER)) console.warn('wire constants check skipped: bpf/wg_wire.h is absent');

describe.skipIf(!existsSync(HEADER))('messages.ts and bpf/wg_wire.h', () => {
  it('define the same constants with the same values', () => {
    const header = headerConstants(readFileSync(HEADER, 'utf8'));
    expect(Object.fromEntries(header)).toEqual({ ...WIRE_CONSTANTS });
  });
});
