import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/support/global-setup.ts'],
    // Tests run real processes, a real Redis and a real S3 server: give them room, but keep them isolated.
    pool: 'forks',
    testTimeout: 60_000,
    // The AWS SDK warns on Node 20 (the image runs 22); keep test output for real problems.
    env: { AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
    hookTimeout: 60_000,
  },
});
