import { defineConfig } from 'vitest/config';

// Integration tests start real hosts and bubblewrap sandboxes; on a 2-core machine a
// small worker pool keeps them from starving each other.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    pool: 'forks',
    maxWorkers: 2,
  },
});
