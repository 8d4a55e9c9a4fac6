import { defineConfig } from 'vitest/config';

/**
 * Files that start a local stack or run many Pulumi programs. They run last, two at a time: one alone left a core idle
 * for a third of the time (its stack mostly waits on its own workflows), and two took 250 s instead of 394 s.
 */
const HEAVY = ['test/e2e/**/*.test.ts', 'test/hardening.test.ts', 'packages/sandbox/cloud/sandbox-cloud.test.ts'];
/** The long reliability runs: only `npm run test:soak` (KILN_SOAK=1) runs them. */
const SOAK = process.env.KILN_SOAK === '1' ? [] : ['**/*.soak.test.ts'];
/** Files that replace a module with vi.mock: they need a module graph of their own. */
const MOCKING = ['packages/infra/automation-driver.test.ts'];

export default defineConfig({
  test: {
    setupFiles: ['./test/setup.ts'],
    globalSetup: ['./test/global-setup.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: 'forks',
    // No CloudWatch metrics lines in test output (functions/wiring/observability.test.ts turns them on to check them).
    env: { AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true', POWERTOOLS_METRICS_DISABLED: 'true' },
    projects: [
      {
        extends: true,
        test: {
          name: 'unit',
          include: ['packages/**/*.test.ts', 'functions/**/*.test.ts', 'test/**/*.test.ts', 'scripts/**/*.test.ts', 'workflows/**/*.test.ts'],
          exclude: [...HEAVY, ...SOAK, ...MOCKING],
          // Most of their time was loading modules: each file loaded the barrels again. They share a worker's modules
          // instead (no test file relies on module state of its own), and two workers run side by side.
          isolate: false,
          maxWorkers: 2,
          sequence: { groupOrder: 0 },
        },
      },
      {
        extends: true,
        test: { name: 'mocking', include: MOCKING, maxWorkers: 1, sequence: { groupOrder: 0 } },
      },
      {
        extends: true,
        test: { name: 'e2e', include: HEAVY, exclude: SOAK, maxWorkers: 2, sequence: { groupOrder: 1 } },
      },
    ],
  },
});
