import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/support/global-setup.ts'],
    // Tests run real processes, a real Redis and a real S3 server: give them room, but keep them isolated.
    pool: 'forks',
    // Three files at a time on CI's two cores: most of a file's time is spent waiting on its
    // processes, Redis and S3, so a third file fills the cores' idle time (measured in
    // docs/development.md, "The test suite's time"); vitest's default (cores - 1) runs one.
    maxWorkers: 3,
    testTimeout: 60_000,
    // The AWS SDK warns on Node 20 (the image runs 22); keep test output for real problems.
    env: { AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
    hookTimeout: 60_000,
  },
});
