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

export interface CreateMonitorsOptions {
  exec: Executor;
  instances: readonly MonitoredInstance[];
  /** Required when 'perf-dram' is asked for. */
  perfEventSet?: PerfEventSet;
  perf?: PerfDramOptions;
  /** node binary on the target for the KSM placement read-out. */
  nodeBinary?: string;
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
      case 'numa-placement':
        out.push(new NumaPlacementMonitor(opts.exec, opts.instances), new KsmPlacementMonitor(opts.exec, opts.instances, { nodeBinary: opts.nodeBinary }));
        break;
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
