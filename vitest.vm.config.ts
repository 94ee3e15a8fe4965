import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defineConfig } from 'vitest/config';

/**
 * The real-kernel suite: test/vm/**, run INSIDE the test VM (make test-vm,
 * docs/testing.md). The repository and node_modules are read-only there, so
 * every cache goes to the guest's tmpfs /tmp, and the config must be loaded
 * with `--configLoader runner` (the default bundler writes a temp file into
 * node_modules/.vite-temp).
 */
export default defineConfig({
  cacheDir: join(tmpdir(), 'wgjit-vitest-vm'),
  test: {
    include: ['test/vm/**/*.test.ts'],
    // Under emulation every worker start costs seconds: one forked worker,
    // files one after another.
    pool: 'forks',
    fileParallelism: false,
    maxWorkers: 1,
    // Everything runs 10-50× slower than on the host.
    testTimeout: 300_000,
    hookTimeout: 300_000,
    reporters: ['default'],
  },
});
