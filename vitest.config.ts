import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/support/global-setup.ts'],
    // Tests run real processes, a real Redis and a real S3 server: give them room, but keep them isolated.
    pool: 'forks',
    // Two files at a time on CI's two cores: vitest's default (cores - 1) runs them one by one,
    // and most of a file's time is spent waiting on its processes, Redis and S3.
    maxWorkers: 2,
    testTimeout: 60_000,
    // The AWS SDK warns on Node 20 (the image runs 22); keep test output for real problems.
    env: { AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
    hookTimeout: 60_000,
  },
});
