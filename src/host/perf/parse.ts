/**
 * Parser for `perf stat -x, -I <ms>` output (CSV, written to stderr):
 *   <time>,<count>,<unit>,<event>,<run time>,<pct running>,<metric value>,<metric unit>
 * The count is `<not supported>` when the machine has no such event (e.g. hardware events in a VM)
 * and `<not counted>` when it was never scheduled in the interval (e.g. the process slept).
 */
export interface PerfIntervalRow {
  /** Seconds since perf started (end of the interval). */
  time: number;
  event: string;
  /** null when not counted / not supported. */
  count: number | null;
  status: 'counted' | 'not-counted' | 'not-supported';
  unit: string;
  /** Percentage of the interval the event was actually counting (multiplexing). */
  pctRunning: number | null;
}

export function parsePerfStatIntervals(text: string): PerfIntervalRow[] {
  const rows: PerfIntervalRow[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const f = line.split(',');
    if (f.length < 4) continue;
    const time = Number(f[0]);
    if (!Number.isFinite(time)) continue;
    const countText = f[1]!.trim();
    const status = countText === '<not supported>' ? 'not-supported' : countText === '<not counted>' ? 'not-counted' : 'counted';
    const count = status === 'counted' ? Number(countText) : null;
    if (status === 'counted' && !Number.isFinite(count)) continue;
    const pct = f[5] !== undefined && f[5] !== '' ? Number(f[5]) : null;
    rows.push({ time, event: f[3]!.trim(), count, status, unit: f[2]!.trim(), pctRunning: Number.isFinite(pct) ? pct : null });
  }
  return rows;
}

export interface EventTotal {
  event: string;
  total: number;
  intervals: number;
  countedIntervals: number;
  supported: boolean;
}

/**
 * Totals per event (modifier suffix removed) over all intervals. An event is unsupported when perf said `<not supported>`,
 * or when it was `<not counted>` in every interval (it never produced a value).
 */
export function totalsByEvent(rows: readonly PerfIntervalRow[]): Map<string, EventTotal> {
  const totals = new Map<string, EventTotal>();
  for (const r of rows) {
    // perf prints a named event with its modifier (`task-clock:G`); the set names it without.
    const event = r.event.replace(/:[ukhGHpPSDIW]+$/, '');
    const t = totals.get(event) ?? { event, total: 0, intervals: 0, countedIntervals: 0, supported: true };
    t.intervals++;
    if (r.status === 'not-supported') t.supported = false;
    if (r.count !== null) {
      t.total += r.count;
      t.countedIntervals++;
    }
    totals.set(event, t);
  }
  for (const t of totals.values()) if (t.countedIntervals === 0) t.supported = false;
  return totals;
}
