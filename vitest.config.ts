import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // tfjs backends and sharp are process-global; forks isolate them and keep native code off worker threads.
    pool: 'forks',
    testTimeout: 120_000,
    hookTimeout: 120_000,
  },
});
