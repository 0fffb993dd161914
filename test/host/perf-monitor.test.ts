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
      // task-clock (msec) of a spinning process over ~1.5 s (the machine may be busy: only > 0 is sure).
      expect(byMetric.local_dram_accesses).toBeGreaterThan(0);
      expect(byMetric.local_dram_accesses).toBeLessThan(2 * 1_600);
      expect(counted.every((s) => s.instance === 'busy' && s.t === null)).toBe(true);
      expect(unsupported.map((s) => [s.metric, s.value])).toEqual([['perf_event_unsupported', 1]]);
    } finally {
      busy.kill('SIGKILL');
    }
  });

  it('keeps the last, partial interval when stopped (perf gets SIGINT, not SIGTERM)', async () => {
    const busy = spawn('sh', ['-c', 'while :; do :; done'], { stdio: 'ignore' });
    try {
      const inst = { name: 'busy', workload: 'loop', pid: busy.pid!, node: 0 };
      const raw: string[] = [];
      const mon = new PerfDramMonitor(new LocalExecutor(), [inst], eventSet('software-smoke'), { intervalMs: 10_000, onRawOutput: (_i, c) => raw.push(c) });
      await mon.start();
      await new Promise((r) => setTimeout(r, 1_200));
      const samples = await mon.stop();
      // No 10-s interval completed: every row is the final partial one printed on SIGINT.
      expect(raw.join('')).toMatch(/^\s*\d\.\d+,[\d.]+,msec,task-clock,/m);
      expect(samples.find((s) => s.metric === 'perf_event_unsupported')!.value).toBe(0);
    } finally {
      busy.kill('SIGKILL');
    }
  });
});
