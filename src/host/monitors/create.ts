/**
 * Monitors by the names scenarios use ('ksm', 'meminfo', 'ksmd-cpu', 'numa-placement',
 * 'perf-dram'). 'numa-placement' covers both read-outs of where an instance's memory is: numa_maps
 * per period, and its KSM pages per node (pagemap + kpageflags) once at the end. 'throughput'
 * comes from the workload's own output, not from a host monitor, and is ignored here.
 */
import { HarnessError } from '../../core/errors.ts';
import type { Executor } from '../exec/types.ts';
import type { PerfEventSet } from '../perf/events.ts';
import { PerfDramMonitor, type PerfDramOptions } from '../perf/monitor.ts';
import { KsmCountersMonitor } from './ksm.ts';
import { KsmdCpuMonitor } from './ksmd-cpu.ts';
import { KsmPlacementMonitor } from './ksm-placement.ts';
import { MeminfoMonitor } from './meminfo.ts';
import { NumaPlacementMonitor } from './numa-placement.ts';
import type { Monitor, MonitoredInstance } from './types.ts';
import type { Sample } from '../../core/sample.ts';

export interface CreateMonitorsOptions {
  exec: Executor;
  instances: readonly MonitoredInstance[];
  /** Required when 'perf-dram' is asked for. */
  perfEventSet?: PerfEventSet;
  perf?: PerfDramOptions;
  /** node binary on the target for the KSM placement read-out. */
  nodeBinary?: string;
  /**
   * KSM pages per node of each instance (pagemap + kpageflags), part of 'numa-placement':
   * 'end' = one walk at stop (a walk of a large process takes long), 'periodic' = every period
   * too (small footprints), 'off' = not at all (KSM not running: nothing is merged). Default 'end'.
   */
  ksmPlacement?: 'off' | 'end' | 'periodic';
}

/**
 * A monitor whose final read may fail because its process is gone (a bare-metal benchmark exits
 * with its timed phase): stop() then reports the last periodic reading as the once-per-run value.
 */
export function holdLast(inner: Monitor): Monitor {
  let last: Sample[] = [];
  return {
    name: inner.name,
    start: () => inner.start(),
    async sample(t: number) {
      const s = await inner.sample(t);
      if (s.length > 0) last = s;
      return s;
    },
    async stop() {
      const fallback = last.map((s) => ({ ...s, t: null }));
      try {
        const final = await inner.stop();
        return final.length > 0 ? final : fallback;
      } catch {
        return fallback;
      }
    },
  };
}

export function createMonitors(names: readonly string[], opts: CreateMonitorsOptions): Monitor[] {
  const out: Monitor[] = [];
  for (const name of new Set(names)) {
    switch (name) {
      case 'ksm':
        out.push(new KsmCountersMonitor(opts.exec));
        break;
      case 'meminfo':
        out.push(new MeminfoMonitor(opts.exec));
        break;
      case 'ksmd-cpu':
        out.push(new KsmdCpuMonitor(opts.exec));
        break;
      case 'numa-placement': {
        out.push(holdLast(new NumaPlacementMonitor(opts.exec, opts.instances)));
        const ksm = opts.ksmPlacement ?? 'end';
        if (ksm !== 'off') out.push(new KsmPlacementMonitor(opts.exec, opts.instances, { nodeBinary: opts.nodeBinary, periodic: ksm === 'periodic' }));
        break;
      }
      case 'perf-dram':
        if (!opts.perfEventSet) throw new HarnessError('config', "monitor 'perf-dram' needs a perf event set (testbed file: the CPU model's set, or 'none')");
        out.push(new PerfDramMonitor(opts.exec, opts.instances, opts.perfEventSet, opts.perf));
        break;
      case 'throughput':
        break;
      default:
        throw new HarnessError('config', `unknown monitor '${name}' (known: ksm, meminfo, ksmd-cpu, numa-placement, perf-dram, throughput)`);
    }
  }
  return out;
}
