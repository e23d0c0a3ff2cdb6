import { defineConfig } from 'vitest/config';

// The tests that must not share the machine with others (see vitest.config.ts): one file at a time.
export default defineConfig({
  test: {
    include: ['test/**/*.alone.test.ts'],
    pool: 'forks',
    fileParallelism: false,
    testTimeout: 1_500_000,
  },
});
