import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // FUSE integration tests start daemons and C programs in child processes; a 2-vCPU box is slow.
    testTimeout: 120_000,
    hookTimeout: 60_000,
    pool: 'forks',
    // Mounts are heavy and share the kernel's FUSE connection limits: run files one at a time.
    fileParallelism: false,
  },
});
