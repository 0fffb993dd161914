import { defineConfig } from 'vitest/config';

// Two projects: pure-logic tests run in parallel; tests that start real system
// components (sshd, libvirtd, QEMU, MariaDB, KSM in sysfs) share host state and run one file at a time.
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: ['test/**/*.test.ts'],
          exclude: ['test/system/**'],
          // A pool of its own so it runs beside the system fork: vitest's forks pool runs its
          // single-fork files only after all its other files (with both on forks, the system
          // project waited 224 s for the unit files in CI).
          pool: 'threads',
          testTimeout: 120_000,
          hookTimeout: 120_000,
        },
      },
      {
        test: {
          name: 'system',
          include: ['test/system/**/*.test.ts'],
          // One emulated boot per kernel shared by many files (test/support/shared-machine.ts).
          globalSetup: ['test/support/shared-machine-setup.ts'],
          // One worker process for all system files: they share sysfs KSM, libvirtd and ports.
          pool: 'forks',
          poolOptions: { forks: { singleFork: true } },
          testTimeout: 900_000,
          hookTimeout: 1_800_000,
        },
      },
    ],
  },
});
