import { describe, expect, it } from 'vitest';
import { parseRouteTable } from '../../src/route/routes.js';
import { MAX_TABLE, RT_TABLE_LOCAL, RT_TABLE_MAIN } from '../../src/route/rtnetlink-protocol.js';

describe('--route-table', () => {
  it('off, main or a table number', () => {
    expect(parseRouteTable('off')).toBeNull();
    expect(parseRouteTable('main')).toBe(RT_TABLE_MAIN);
    expect(parseRouteTable('1')).toBe(1);
    expect(parseRouteTable('100')).toBe(100);
    expect(parseRouteTable('253')).toBe(253);
    expect(parseRouteTable(String(RT_TABLE_MAIN))).toBe(RT_TABLE_MAIN);
    expect(parseRouteTable(String(MAX_TABLE))).toBe(MAX_TABLE);
  });

  it('refuses the local table and 0, saying why', () => {
    for (const t of ['local', String(RT_TABLE_LOCAL)]) expect(() => parseRouteTable(t)).toThrow(/^--route-table cannot be the local table \(255\)/);
    expect(() => parseRouteTable('0')).toThrow(/^--route-table cannot be 0/);
  });

  it('refuses anything else with the accepted forms', () => {
    for (const t of ['', 'on', 'Main', 'default', '-1', '+5', '05', '1.5', ' 100', '100 ', '1e3', '0x10', String(MAX_TABLE + 1), '99999999999']) {
      expect(() => parseRouteTable(t), JSON.stringify(t)).toThrow(`--route-table must be off, main or a table number from 1 to ${MAX_TABLE}, got ${JSON.stringify(t)}`);
    }
  });
});
