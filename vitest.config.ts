import { configDefaults, defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // test/vm/ needs a kernel with WireGuard: it runs inside the test VM
    // (vitest.vm.config.ts, make test-vm).
    exclude: [...configDefaults.exclude, 'test/vm/**'],
    // Integration tests build network namespaces and start daemons; running
    // files one at a time keeps them from competing for the two cores.
    fileParallelism: false,
    testTimeout: 60_000,
    hookTimeout: 60_000,
    reporters: ['default'],
  },
});
