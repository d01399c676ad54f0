import { defineConfig } from 'vitest/config';

// Two tiers, as ws keeps `*.integration.js` apart. `unit`: no Python, browser,
// nginx or Redis, nothing spawned; its files may run side by side.
// `integration` (`*.integration.test.ts`): real workers, browsers, nginx, Redis,
// the bench and vitest itself. `vitest run --project unit` runs one tier; with no
// `--project`, the unit tier goes first and the integration tier after it.
const INTEGRATION = 'test/**/*.integration.test.ts';

export default defineConfig({
  test: {
    testTimeout: 60_000,
    hookTimeout: 60_000,
    reporters: ['default', './test/summary-reporter.ts'],
    projects: [
      {
        extends: true,
        test: {
          name: 'unit',
          include: ['test/**/*.test.ts'],
          exclude: [INTEGRATION, '**/node_modules/**'],
          sequence: { groupOrder: 0 },
        },
      },
      {
        extends: true,
        test: {
          name: 'integration',
          include: [INTEGRATION],
          // Real Python workers in every file; two cores cannot run several
          // suites of them at once without starving each other.
          fileParallelism: false,
          sequence: { groupOrder: 1 },
        },
      },
    ],
  },
});
