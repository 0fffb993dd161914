/** PerfDramMonitor running the real perf against a real process through the LocalExecutor. */
import { spawn } from 'node:child_process';
import { expect, it } from 'vitest';
import { LocalExecutor } from '../../src/host/exec/local.ts';
import { eventSet } from '../../src/host/perf/events.ts';
import { PerfDramMonitor } from '../../src/host/perf/monitor.ts';
import { describeWith } from '../support/components.ts';

describeWith(['perf', 'root'], 'perf-dram monitor with the real perf', () => {
  it('streams perf stat -I output, stops it and records counted and unsupported events', async () => {
    const busy = spawn('sh', ['-c', 'while :; do :; done'], { stdio: 'ignore' });
    try {
      const inst = { name: 'busy', workload: 'loop', pid: busy.pid!, node: 0 };
      const raw: string[] = [];
      const smoke = new PerfDramMonitor(new LocalExecutor(), [inst], eventSet('software-smoke'), { intervalMs: 200, onRawOutput: (_i, c) => raw.push(c) });
      // Hardware DRAM events: this VM has no PMU, so they must be recorded as unsupported.
      const skx = new PerfDramMonitor(new LocalExecutor(), [inst], eventSet('zen3'), { intervalMs: 200 });
      await smoke.start();
      await skx.start();
      await new Promise((r) => setTimeout(r, 1_500));
      const counted = await smoke.stop();
      const unsupported = await skx.stop();

      expect(raw.join('')).toMatch(/,task-clock,/);
      const byMetric = Object.fromEntries(counted.map((s) => [s.metric, s.value]));
      expect(byMetric.perf_event_unsupported).toBe(0);
      // task-clock (msec) of a spinning process over ~1.5 s.
      expect(byMetric.local_dram_accesses).toBeGreaterThan(300);
      expect(counted.every((s) => s.instance === 'busy' && s.t === null)).toBe(true);
      expect(unsupported.map((s) => [s.metric, s.value])).toEqual([['perf_event_unsupported', 1]]);
    } finally {
      busy.kill('SIGKILL');
    }
  });
});
