/**
 * What the throughput benchmarks share: rates measured in short slices that
 * take turns (so a shared machine's noise falls on every row alike), the
 * addon's bench hook, and quantiles.
 */
import { requireAddon } from '../src/native-addon.js';

/** Calls of `op` between clock reads. */
const CHUNK = 32;

export function quantile(xs: number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))]!;
}

export const median = (xs: number[]) => quantile(xs, 0.5);

const now = () => Number(process.hrtime.bigint());

/** A measurement: runs for about `ms` and returns operations per second. */
export type Measure = (ms: number) => number;

/** `op` called from JavaScript over and over for about ms. */
export function loop(op: () => void): Measure {
  return (ms) => {
    const start = now();
    const deadline = start + ms * 1e6;
    let done = 0;
    do {
      for (let i = 0; i < CHUNK; i++) op();
      done += CHUNK;
    } while (now() < deadline);
    return (done / (now() - start)) * 1e9;
  };
}

const { benchCrypto } = requireAddon() as { benchCrypto: (op: string, iterations: number) => number };

/** An operation of the addon's bench hook (addon/crypto_bench.h), timed in C++ with no JavaScript between operations. */
export function inAddon(op: string): Measure {
  let nsPerOp = benchCrypto(op, 200);
  return (ms) => {
    nsPerOp = benchCrypto(op, Math.max(100, Math.round((ms * 1e6) / nsPerOp)));
    return 1e9 / nsPerOp;
  };
}

/** Runs each measurement for sliceMs in turn, `rounds` times, a different one first each round; rates[i][round]. */
export function takeTurns(measures: Measure[], rounds: number, sliceMs: number): number[][] {
  const rates = measures.map(() => [] as number[]);
  for (let round = 0; round < rounds; round++) {
    process.stderr.write(`round ${round + 1}/${rounds}\r`);
    for (let i = 0; i < measures.length; i++) {
      const j = (round + i) % measures.length;
      rates[j]![round] = measures[j]!(sliceMs);
    }
  }
  process.stderr.write('\n');
  return rates;
}
