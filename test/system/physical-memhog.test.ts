/**
 * The Fig. 8 memory hog on this host: bound to node 0, it registers unique KSM-mergeable memory
 * step by step (hog_registered_gib rises), its pages are really mergeable and resident, and stop()
 * kills it (the artifact's hog was never killed).
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { describeWith } from '../support/components.ts';
import type { Sample } from '../../src/core/sample.ts';
import { LocalExecutor } from '../../src/host/exec/index.ts';
import { startMemoryHog } from '../../src/testbeds/physical/memhog.ts';

describeWith(['root', 'numactl', 'ksm'], 'memory hog (Fig. 8)', () => {
  const work = mkdtempSync(join(tmpdir(), 'nuksm-memhog-'));
  afterAll(() => rmSync(work, { recursive: true, force: true }));

  it('registers unique mergeable memory in steps, then is killed', async () => {
    const samples: Sample[] = [];
    const MiB = 1024 ** 2;
    const GiB = 1024 ** 3;
    const stepStartMs = Date.now();
    const hog = await startMemoryHog(
      new LocalExecutor(),
      { node: 0, stepGiB: (16 * MiB) / GiB, everyS: 0.5, maxGiB: (48 * MiB) / GiB, startAtS: 0.5 },
      { workDir: work, marker: `memhog-test-${process.pid}`, stepStartMs, periodS: 0.25, seed: 7, emit: (s) => samples.push(...s), signal: new AbortController().signal },
    );
    // Wait until all three steps are registered.
    const deadline = Date.now() + 20_000;
    const out = () => (existsSync(join(hog.handle.dir, 'stdout')) ? readFileSync(join(hog.handle.dir, 'stdout'), 'utf8') : '');
    while (!out().includes(`registered ${48 * MiB}`)) {
      if (Date.now() > deadline) throw new Error(`hog did not finish: ${out()}`);
      await new Promise((r) => setTimeout(r, 200));
    }
    const pid = Number(readFileSync(join(hog.handle.dir, 'pid'), 'utf8'));
    const python = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).map(Number)[0];
    expect(readFileSync(`/proc/${python}/ksm_stat`, 'utf8')).toMatch(/ksm_mergeable: yes/);
    const rssKiB = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${python}/status`, 'utf8'))![1]);
    expect(rssKiB).toBeGreaterThan(48 * 1024);
    expect(readFileSync(`/proc/${python}/numa_maps`, 'utf8')).toMatch(/bind:0/);
    await hog.stop();
    const series = samples.filter((s) => s.metric === 'hog_registered_gib');
    expect(series.length).toBeGreaterThanOrEqual(3);
    expect(series.every((s) => s.instance === 'host' && s.unit === 'GiB' && s.t !== null && s.t >= 0)).toBe(true);
    expect(series[series.length - 1].value).toBeCloseTo((48 * MiB) / GiB, 9);
    expect(new Set(series.map((s) => s.value)).size).toBeGreaterThanOrEqual(2);
    // Killed: gone, or at most a zombie awaiting its reaper.
    await new Promise((r) => setTimeout(r, 300));
    const state = existsSync(`/proc/${python}/stat`) ? readFileSync(`/proc/${python}/stat`, 'utf8').split(') ')[1]?.[0] : 'gone';
    expect(['gone', 'Z']).toContain(state);
    expect(readFileSync(join(hog.handle.dir, 'exit'), 'utf8').trim()).toBe('137');
  });
});
