/**
 * Node timers take at most 2^31−1 ms; a longer delay fires after 1 ms (with a warning). Specs and
 * testbed files are bounded to that (src/campaign/config-error.ts durationS), but a plan stored
 * in an older journal may not be: this timer waits any finite delay by chaining shorter ones.
 */
export const MAX_TIMER_MS = 2 ** 31 - 1;

export interface LongTimer {
  clear(): void;
}

/** setTimeout for any delay ≥ 0 (Infinity never fires; NaN or a negative delay fire at once). */
export function setLongTimeout(fn: () => void, ms: number): LongTimer {
  let handle: NodeJS.Timeout | undefined;
  let cleared = false;
  const due = Date.now() + (Number.isNaN(ms) ? 0 : Math.max(0, ms));
  const arm = () => {
    if (cleared) return;
    const left = due - Date.now();
    if (!Number.isFinite(ms)) return; // never
    if (left > MAX_TIMER_MS) handle = setTimeout(arm, MAX_TIMER_MS);
    else handle = setTimeout(fn, Math.max(0, left));
  };
  arm();
  return {
    clear() {
      cleared = true;
      clearTimeout(handle);
    },
  };
}
