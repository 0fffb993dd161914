/**
 * perf-dram monitor: one `perf stat -x, -I <ms> -e … -p <pid>` per instance (a QEMU process or a
 * benchmark), streamed through the Executor and parsed into local / remote DRAM accesses. An event
 * the machine lacks becomes perf_event_unsupported = 1 for that instance, never a crash.
 */
import type { Sample } from '../../core/sample.ts';
import type { Executor } from '../exec/types.ts';
import { makeSample } from '../monitors/sample.ts';
import type { Monitor, MonitoredInstance } from '../monitors/types.ts';
import { perfEventArgs, type PerfEventSet } from './events.ts';
import { parsePerfStatIntervals, totalsByEvent, type PerfIntervalRow } from './parse.ts';

/**
 * perf stat prints the last, partial interval on SIGINT but not on SIGTERM, and executors stop a
 * command with SIGTERM (to its process group over SSH). The wrapper starts perf with TERM ignored
 * and turns its own TERM into an INT for perf, so stopping the monitor keeps the last interval.
 */
const PERF_WRAPPER = `trap '' TERM; "$@" & p=$!; trap 'kill -INT $p 2>/dev/null' TERM HUP; wait $p; s=$?; if kill -0 $p 2>/dev/null; then wait $p; s=$?; fi; exit $s`;

export interface DramTotals {
  local: number;
  remote: number;
  /** Events of the set that perf reported as not supported (or never counted). */
  unsupported: string[];
}

export function dramTotals(set: PerfEventSet, rows: readonly PerfIntervalRow[]): DramTotals {
  const totals = totalsByEvent(rows);
  const unsupported: string[] = [];
  const side = (events: PerfEventSet['local']) =>
    events.reduce((sum, e) => {
      const t = totals.get(e.name);
      if (!t || !t.supported) {
        unsupported.push(e.name);
        return sum;
      }
      return sum + t.total;
    }, 0);
  const local = side(set.local);
  const remote = side(set.remote);
  return { local, remote, unsupported };
}

/** Once-per-run samples of one instance. Shares are omitted when nothing was counted. */
export function dramSamples(inst: MonitoredInstance, totals: DramTotals): Sample[] {
  const s = (metric: Parameters<typeof makeSample>[2], v: number) => makeSample(inst.name, inst.workload, metric, v, null);
  const out = [s('perf_event_unsupported', totals.unsupported.length > 0 ? 1 : 0)];
  if (totals.unsupported.length > 0) return out;
  out.push(s('local_dram_accesses', totals.local), s('remote_dram_accesses', totals.remote));
  const sum = totals.local + totals.remote;
  if (sum > 0) out.push(s('local_access_pct', (totals.local / sum) * 100), s('remote_access_pct', (totals.remote / sum) * 100));
  return out;
}

export interface PerfDramOptions {
  intervalMs?: number;
  /** ':G' counts guest mode only (KVM guests measured from the host); '' counts everything. */
  modifier?: string;
  perfBinary?: string;
  /** Upper bound on how long perf may run (it is stopped by stop()). */
  maxDurationMs?: number;
  /** Raw perf output per instance (e.g. into the step's raw directory). */
  onRawOutput?: (instance: string, chunk: string) => void;
}

export class PerfDramMonitor implements Monitor {
  readonly name = 'perf-dram' as const;
  private readonly runs = new Map<string, { text: string; done: Promise<unknown>; abort: AbortController }>();

  constructor(
    readonly exec: Executor,
    readonly instances: readonly MonitoredInstance[],
    readonly set: PerfEventSet,
    readonly opts: PerfDramOptions = {},
  ) {}

  async start(): Promise<void> {
    if (this.set.local.length + this.set.remote.length === 0) return;
    for (const inst of this.instances) {
      const abort = new AbortController();
      const entry = { text: '', abort, done: Promise.resolve() as Promise<unknown> };
      const argv = ['sh', '-c', PERF_WRAPPER, 'sh', this.opts.perfBinary ?? 'perf', 'stat', '-x,', '-I', String(this.opts.intervalMs ?? 1000), ...perfEventArgs(this.set, this.opts.modifier), '-p', String(inst.pid)];
      entry.done = this.exec
        .run(argv, {
          timeoutMs: this.opts.maxDurationMs ?? 24 * 3600_000,
          allowFailure: true,
          signal: abort.signal,
          onStderr: (chunk) => {
            entry.text += chunk;
            this.opts.onRawOutput?.(inst.name, chunk);
          },
        })
        .catch((err: unknown) => err);
      this.runs.set(inst.name, entry);
    }
  }

  /** Intervals are summed at the end; nothing per period. */
  async sample(): Promise<Sample[]> {
    return [];
  }

  async stop(): Promise<Sample[]> {
    if (this.set.local.length + this.set.remote.length === 0) return [];
    const out: Sample[] = [];
    for (const inst of this.instances) {
      const run = this.runs.get(inst.name);
      if (!run) continue;
      run.abort.abort();
      await run.done;
      out.push(...dramSamples(inst, dramTotals(this.set, parsePerfStatIntervals(run.text))));
    }
    this.runs.clear();
    return out;
  }
}
