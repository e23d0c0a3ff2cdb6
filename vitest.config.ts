import { configDefaults, defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // `*.alone.test.ts` need much of the machine's memory (one step of the tutorial ResNet on the software Vulkan
    // device peaks at ~6 GB) and cores: `npm test` runs them after the rest, one at a time, with vitest.alone.config.ts.
    exclude: [...configDefaults.exclude, 'test/**/*.alone.test.ts'],
    // tfjs backends and sharp are process-global; forks isolate them and keep native code off worker threads.
    pool: 'forks',
    testTimeout: 120_000,
    hookTimeout: 120_000,
  },
});
