/**
 * The benchmarks' addon (harness/addon/build/Release/wgjit_bench.node,
 * built by make beside the product's), loaded on first use.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

export const BENCH_ADDON_PATH = fileURLToPath(new URL('./build/Release/wgjit_bench.node', import.meta.url));

interface BenchAddon {
  /** Nanoseconds of CPU time per `op` over `iterations` (harness/addon/crypto_bench.h). */
  benchCrypto(op: string, iterations: number): number;
}

let loaded: BenchAddon | null = null;

export function benchAddon(): BenchAddon {
  if (loaded !== null) return loaded;
  if (!existsSync(BENCH_ADDON_PATH)) throw new Error(`bench addon not built (${BENCH_ADDON_PATH}): run make`);
  loaded = createRequire(import.meta.url)(BENCH_ADDON_PATH) as BenchAddon;
  return loaded;
}
