/**
 * What the throughput benchmarks share: rates measured in short slices that
 * take turns, the bench addon's hook, and quantiles.
 *
 * Rates are operations per second of CPU time, not of the wall clock: the
 * machines are shared, and a slice during which another process had the
 * core would otherwise count that time against us. The addon's hook counts
 * its own thread's CPU time around the operations alone; a JavaScript loop
 * counts the process's (V8's helper threads, such as the garbage
 * collector's, are charged to it too). takeTurns reports how much of the
 * wall time the process got.
 */
import { benchAddon } from '../harness/addon/bench-addon.js';

/** Calls of `op` between clock reads. */
const CHUNK = 32;

export function quantile(xs: number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))]!;
}

export const median = (xs: number[]) => quantile(xs, 0.5);

const wallNs = () => Number(process.hrtime.bigint());
function cpuNs(): number {
  const { user, system } = process.cpuUsage();
  return (user + system) * 1e3;
}

/** A measurement: runs for about `ms`; how many operations, in how much CPU time. */
export type Measure = (ms: number) => { ops: number; cpuNs: number };

/** `op` called from JavaScript over and over for about ms. */
export function loop(op: () => void): Measure {
  return (ms) => {
    const cpu0 = cpuNs();
    const deadline = wallNs() + ms * 1e6;
    let ops = 0;
    do {
      for (let i = 0; i < CHUNK; i++) op();
      ops += CHUNK;
    } while (wallNs() < deadline);
    return { ops, cpuNs: cpuNs() - cpu0 };
  };
}

const { benchCrypto } = benchAddon();

/** An operation of the bench addon's hook (harness/addon/crypto_bench.h), timed in C++ with no JavaScript between operations. */
export function inAddon(op: string): Measure {
  let nsPerOp = benchCrypto(op, 200);
  return (ms) => {
    const ops = Math.max(100, Math.round((ms * 1e6) / nsPerOp));
    nsPerOp = benchCrypto(op, ops);
    return { ops, cpuNs: ops * nsPerOp };
  };
}

export interface Turns {
  /** rates[i][round]: operations of measure i per CPU-second in that round. */
  rates: number[][];
  /** CPU time ÷ wall time over all slices. */
  cpuShare: number;
}

/** Runs each measurement for sliceMs in turn, `rounds` times, a different one first each round. */
export function takeTurns(measures: Measure[], rounds: number, sliceMs: number): Turns {
  const rates = measures.map(() => [] as number[]);
  let cpuTotal = 0;
  let wallTotal = 0;
  for (let round = 0; round < rounds; round++) {
    process.stderr.write(`round ${round + 1}/${rounds}\r`);
    for (let i = 0; i < measures.length; i++) {
      const j = (round + i) % measures.length;
      const [cpu0, wall0] = [cpuNs(), wallNs()];
      const { ops, cpuNs: opsCpu } = measures[j]!(sliceMs);
      rates[j]![round] = (ops / opsCpu) * 1e9;
      cpuTotal += cpuNs() - cpu0;
      wallTotal += wallNs() - wall0;
    }
  }
  process.stderr.write('\n');
  return { rates, cpuShare: cpuTotal / wallTotal };
}
