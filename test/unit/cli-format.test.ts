/**
 * The CLI spells times and byte counts as `wg show` does (wireguard-tools
 * src/show.c: pretty_time, ago, bytes), so the two read alike.
 */
import { describe, expect, it } from 'vitest';
import { ago, bytes, every, prettyTime, table } from '../../src/cli/format.js';

const NOW = Date.parse('2030-06-01T12:00:00.000Z');
const before = (seconds: number) => new Date(NOW - seconds * 1000).toISOString();

describe('wg-style times', () => {
  it.each<[number, string]>([
    [1, '1 second ago'],
    [59, '59 seconds ago'],
    [60, '1 minute ago'],
    [65, '1 minute, 5 seconds ago'],
    [3600 + 5, '1 hour, 5 seconds ago'],
    [2 * 86400 + 3 * 3600 + 4 * 60 + 1, '2 days, 3 hours, 4 minutes, 1 second ago'],
    [365 * 86400 + 86400, '1 year, 1 day ago'],
  ])('%i s → %s', (seconds, text) => {
    expect(ago(before(seconds), NOW)).toBe(text);
  });

  it('"Now" within the same second, wg\'s warning for a time ahead of the clock', () => {
    expect(ago(new Date(NOW).toISOString(), NOW + 999)).toBe('Now');
    expect(ago(before(-5), NOW)).toBe('(System clock wound backward; connection problems may ensue.)');
  });

  it('keepalive as wg prints it', () => {
    expect(every(25)).toBe('every 25 seconds');
    expect(every(60)).toBe('every 1 minute');
    expect(prettyTime(0)).toBe('');
  });
});

describe('wg-style byte counts', () => {
  it.each<[number, string]>([
    [0, '0 B'],
    [1023, '1023 B'],
    [1024, '1.00 KiB'],
    [1260, '1.23 KiB'],
    [4669, '4.56 KiB'],
    [5 * 1024 * 1024, '5.00 MiB'],
    [3 * 1024 ** 3, '3.00 GiB'],
    [2048 * 1024 ** 4, '2048.00 TiB'],
  ])('%i → %s', (n, text) => {
    expect(bytes(n)).toBe(text);
  });
});

describe('table', () => {
  it('aligns every column to its widest cell, no trailing blanks', () => {
    expect(table(['A', 'LONG HEADER', 'C'], [['xxxx', 'y', 'z'], ['', '', '']]).split('\n')).toEqual(['A     LONG HEADER  C', 'xxxx  y            z', '']);
  });
});
