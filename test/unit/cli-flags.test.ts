/**
 * The CLI's pure helpers for flags (src/cli/suggest.ts, src/cli/peer-flags.ts,
 * src/cli/command.ts unknownOptionMessage): the nearest flag to a mistyped
 * one, API field names said as the flags that set them, and --expires-at.
 */
import { describe, expect, it } from 'vitest';
import { unknownOptionMessage } from '../../src/cli/command.js';
import { stateOf } from '../../src/cli/commands/peer.js';
import { expiryOf, FIELD_FLAGS, inFlagTerms, ordinal } from '../../src/cli/peer-flags.js';
import { editDistance, nearest } from '../../src/cli/suggest.js';

const ADD_FLAGS = ['api', 'api-token-file', 'json', 'allowed-ips', 'preshared-key-file', 'keepalive', 'expires-at', 'disabled', 'name', 'help'];

describe('editDistance', () => {
  it.each([
    ['', '', 0],
    ['abc', '', 3],
    ['alowed-ips', 'allowed-ips', 1],
    ['allowed-isp', 'allowed-ips', 1], // a swap of neighbours is one slip
    ['kepealive', 'keepalive', 1],
    ['json', 'name', 4],
  ])('%s → %s: %i', (a, b, d) => {
    expect(editDistance(a, b)).toBe(d);
    expect(editDistance(b, a)).toBe(d);
  });
});

describe('nearest', () => {
  it.each([
    ['alowed-ips', 'allowed-ips'],
    ['allowedips', 'allowed-ips'],
    ['keep-alive', 'keepalive'],
    ['disable', 'disabled'],
    ['expires', 'expires-at'], // a flag it begins
    ['jsno', 'json'],
    ['nmae', 'name'],
  ])('%s → %s', (typed, flag) => {
    expect(nearest(typed, ADD_FLAGS)).toBe(flag);
  });

  it.each(['colour', 'zzzz', 'x', 'psk', 'force'])('nothing close to %s', (typed) => {
    expect(nearest(typed, ADD_FLAGS)).toBeNull();
  });
});

describe('unknownOptionMessage', () => {
  it('names the nearest flag and the help page, or only the page', () => {
    expect(unknownOptionMessage('--alowed-ips', ADD_FLAGS, 'peer add')).toBe('unknown option --alowed-ips (did you mean --allowed-ips?); see wgjit peer add --help');
    expect(unknownOptionMessage('--colour', ADD_FLAGS, 'peer add')).toBe('unknown option --colour; see wgjit peer add --help');
    expect(unknownOptionMessage('-x', ADD_FLAGS, 'status')).toBe('unknown option -x; see wgjit status --help');
  });

  it('a flag of another command: that hint first', () => {
    const elsewhere = (flag: string) => (flag === 'dry-run' ? "--dry-run is an option of 'peer import', not 'peer ls'" : null);
    expect(unknownOptionMessage('--dry-run', ['json'], 'peer ls', elsewhere)).toBe("--dry-run is an option of 'peer import', not 'peer ls'");
    expect(unknownOptionMessage('--jsn', ['json'], 'peer ls', elsewhere)).toBe('unknown option --jsn (did you mean --json?); see wgjit peer ls --help');
  });
});

describe('API fields in the terms of the flags', () => {
  it.each([
    ['persistentKeepalive: must be a whole number of seconds from 0 (off) to 65535', '--keepalive: must be a whole number of seconds from 0 (off) to 65535'],
    ['allowedIPs[1]: 10.0.0.1/24 has host bits set', '--allowed-ips (2nd CIDR): 10.0.0.1/24 has host bits set'],
    ['allowedIPs[0]: 127.0.0.1/32 is loopback', '--allowed-ips (1st CIDR): 127.0.0.1/32 is loopback'],
    ['allowedIPs: at most 256 CIDRs, got 300', '--allowed-ips: at most 256 CIDRs, got 300'],
    ['expiresAt: 2030-02-30 is not a date (2030-02 has 28 days)', '--expires-at: 2030-02-30 is not a date (2030-02 has 28 days)'],
    ['presharedKey: not a WireGuard key (too short)', '--preshared-key-file: not a WireGuard key (too short)'],
    ['name: character 2 (U+000A) is not printable', '--name: character 2 (U+000A) is not printable'],
    // Not a field of a flag: as it was.
    ['publicKey: is the public key of a gateway', 'publicKey: is the public key of a gateway'],
    ['peer X already exists', 'peer X already exists'],
  ])('%s', (api, cli) => {
    expect(inFlagTerms(api)).toBe(cli);
  });

  it('every field of a create but the key has a flag', () => {
    expect(Object.keys(FIELD_FLAGS).sort()).toEqual(['allowedIPs', 'disabled', 'expiresAt', 'name', 'persistentKeepalive', 'presharedKey']);
  });

  it.each([
    [1, '1st'],
    [2, '2nd'],
    [3, '3rd'],
    [4, '4th'],
    [11, '11th'],
    [12, '12th'],
    [13, '13th'],
    [21, '21st'],
    [102, '102nd'],
    [111, '111th'],
  ])('ordinal %i: %s', (n, text) => {
    expect(ordinal(n)).toBe(text);
  });
});

describe('--expires-at', () => {
  const NOW = new Date('2026-06-01T12:00:00Z');
  it.each([
    ['2030-01-01', '2030-01-01T00:00:00Z', false],
    ['2030-01-01T08:00:00+02:00', '2030-01-01T08:00:00+02:00', false],
    ['2020-01-01', '2020-01-01T00:00:00Z', true],
    ['2026-06-01', '2026-06-01T00:00:00Z', true], // midnight of today has passed
    ['2026-06-01T12:00:00Z', '2026-06-01T12:00:00Z', true], // expiry is inclusive
    ['tomorrow', 'tomorrow', false], // not a time: the API says what is wrong
  ])('%s → %s, past: %s', (text, value, past) => {
    expect(expiryOf(text, NOW)).toEqual({ value, past });
  });
});

describe('peer state', () => {
  const NOW = Date.parse('2026-06-01T12:00:00Z');
  it.each([
    [{ disabled: false }, 'enabled'],
    [{ disabled: false, expiresAt: '2026-06-01T12:00:00.001Z' }, 'enabled'],
    [{ disabled: false, expiresAt: '2026-06-01T12:00:00.000Z' }, 'expired'], // expiry is inclusive, as admission's
    [{ disabled: false, expiresAt: '2020-01-01T00:00:00.000Z' }, 'expired'],
    [{ disabled: true, expiresAt: '2020-01-01T00:00:00.000Z' }, 'disabled'],
  ])('%j: %s', (peer, state) => {
    expect(stateOf(peer, NOW)).toBe(state);
  });
});
