/** Exit codes of `nuksm` (documented in docs/campaigns.md). */
export const EXIT = {
  ok: 0,
  /** The campaign ran to the end but some steps failed (failure rows are in the store). Steps the
   * testbed cannot run at all (class 'unsupported', shown by `nuksm plan`) do not count. */
  stepsFailed: 1,
  /** Bad spec, testbed file or arguments: nothing ran. */
  config: 2,
  /** Stopped to reboot into the next kernel; `nuksm resume` continues after boot. */
  rebooting: 3,
  /** Stopped before the end (signal, --max-steps); `nuksm resume` continues. */
  stopped: 4,
  /** Internal error or a testbed driver that cannot be loaded. */
  internal: 5,
  /** `nuksm doctor` found a problem. */
  doctorFailed: 6,
} as const;
