/**
 * Human output for the CLI: aligned tables, and times and byte counts
 * spelled as `wg show` spells them (wireguard-tools src/show.c), so the two
 * read alike side by side.
 */

export function table(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(headers), ...rows.map(line)].join('\n');
}

const UNITS: Array<[string, number]> = [
  ['year', 365 * 24 * 60 * 60],
  ['day', 24 * 60 * 60],
  ['hour', 60 * 60],
  ['minute', 60],
  ['second', 1],
];

/** "1 hour, 5 seconds": the non-zero units, largest first, as wg's pretty_time. Empty for 0. */
export function prettyTime(seconds: number): string {
  let left = Math.floor(seconds);
  const parts: string[] = [];
  for (const [unit, size] of UNITS) {
    const n = Math.floor(left / size);
    left %= size;
    if (n > 0) parts.push(`${n} ${unit}${n === 1 ? '' : 's'}`);
  }
  return parts.join(', ');
}

/** How long ago an ISO time was, in whole seconds as wg shows a latest handshake: "Now", "1 minute, 5 seconds ago". */
export function ago(iso: string, now = Date.now()): string {
  const then = Math.floor(Date.parse(iso) / 1000);
  const current = Math.floor(now / 1000);
  if (Number.isNaN(then)) return '(unknown)';
  if (current === then) return 'Now';
  if (current < then) return '(System clock wound backward; connection problems may ensue.)';
  return `${prettyTime(current - then)} ago`;
}

/** "every 25 seconds", as wg shows a persistent keepalive. */
export function every(seconds: number): string {
  return `every ${prettyTime(seconds)}`;
}

/** "1.23 KiB", as wg shows transfer: bytes below 1 KiB, else two decimals of KiB, MiB, GiB or TiB. */
export function bytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${v} B` : `${v.toFixed(2)} ${units[u]}`;
}
