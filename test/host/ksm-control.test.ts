import { describe, expect, it } from 'vitest';
import { HarnessError } from '../../src/core/errors.ts';
import { KsmControl, normalizeKnobValue, parseGrepDump, planKnobWrites } from '../../src/host/ksm/control.ts';
import { FakeExecutor } from './fake-executor.ts';

const DIR = '/sys/kernel/mm/ksm';

/** A fake sysfs KSM directory that behaves like the kernel: EBUSY, run=2 unmerges. */
function fakeKsm(initial: Record<string, string>) {
  const exec = new FakeExecutor();
  for (const [k, v] of Object.entries(initial)) exec.files.set(`${DIR}/${k}`, v);
  exec.handler = (argv) => {
    if (argv[0] === 'grep') return { stdout: [...exec.files].map(([p, v]) => `${p}:${v}`).join('\n') + '\n' };
    return { exitCode: 1 };
  };
  exec.writeHook = (path, content) => {
    const name = path.slice(DIR.length + 1);
    const shared = Number(exec.files.get(`${DIR}/pages_shared`));
    if ((name === 'merge_across_nodes' || name === 'max_page_sharing') && shared > 0) throw Object.assign(new Error(`EBUSY: write ${path}`), { code: 'EBUSY' });
    if (name === 'run' && content.trim() === '2') {
      exec.files.set(`${DIR}/pages_shared`, '0');
      exec.files.set(`${DIR}/pages_sharing`, '0');
    }
  };
  return exec;
}

const BASE = { run: '1', pages_to_scan: '100', sleep_millisecs: '20', merge_across_nodes: '1', max_page_sharing: '256', advisor_mode: '[none] scan-time', pages_shared: '10', pages_sharing: '50', pages_unshared: '3', pages_volatile: '1', full_scans: '7' };

describe('KSM control (decision logic, fake sysfs)', () => {
  it('parses grep -r output and selection files', () => {
    const dump = parseGrepDump(`${DIR}/run:1\n${DIR}/advisor_mode:[none] scan-time\nnoise\n`, DIR);
    expect(dump).toEqual({ run: '1', advisor_mode: 'none' });
    expect(normalizeKnobValue('none [scan-time]')).toBe('scan-time');
  });

  it('orders writes: unmerge-gated knobs first, run last, unchanged knobs skipped', () => {
    const plan = planKnobWrites({ run: '0', merge_across_nodes: '1', pages_to_scan: '100' }, { run: 1, pages_to_scan: 100, merge_across_nodes: 0, sleep_millisecs: 10 });
    expect(plan.needsUnmerge).toBe(true);
    expect(plan.order).toEqual([
      ['merge_across_nodes', '0'],
      ['sleep_millisecs', '10'],
      ['run', '1'],
    ]);
    expect(planKnobWrites({ merge_across_nodes: '0' }, { merge_across_nodes: 0 }).needsUnmerge).toBe(false);
    expect(() => planKnobWrites({}, { pages_sharing: 1 })).toThrow(/read-only statistic/);
  });

  it('unmerges (run=2) before changing merge_across_nodes, then writes run last', async () => {
    const exec = fakeKsm(BASE);
    const ksm = new KsmControl(exec);
    const after = await ksm.setKnobs({ merge_across_nodes: 0, run: 1 });
    expect(exec.writes.map(([p, v]) => `${p.split('/').pop()}=${v.trim()}`)).toEqual(['run=2', 'merge_across_nodes=0', 'run=1']);
    expect(after.merge_across_nodes).toBe('0');
    expect(after.run).toBe('1');
  });

  it('does not unmerge for knobs without the EBUSY rule', async () => {
    const exec = fakeKsm(BASE);
    await new KsmControl(exec).setKnobs({ pages_to_scan: 1000, sleep_millisecs: 100 });
    expect(exec.writes.map(([p]) => p.split('/').pop())).toEqual(['pages_to_scan', 'sleep_millisecs']);
  });

  it('reports a missing knob as unsupported, naming what the kernel has', async () => {
    const err = await new KsmControl(fakeKsm(BASE)).setKnobs({ smart_ksm: 1, smart_ksm_nodelist: 15 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HarnessError);
    expect((err as HarnessError).failureClass).toBe('unsupported');
    expect((err as Error).message).toMatch(/smart_ksm, smart_ksm_nodelist do not exist.*pages_to_scan/);
  });

  it('fails when a knob does not read back the written value', async () => {
    const exec = fakeKsm(BASE);
    const origWrite = exec.writeFile.bind(exec);
    exec.writeFile = async (p, c) => {
      await origWrite(p, c);
      if (p.endsWith('/pages_to_scan')) exec.files.set(p, '100');
    };
    await expect(new KsmControl(exec).setKnobs({ pages_to_scan: 5000 })).rejects.toThrow(/pages_to_scan wrote 5000, reads 100/);
  });

  it('reads the counters and resets to saved knobs after unmerging', async () => {
    const exec = fakeKsm(BASE);
    const ksm = new KsmControl(exec);
    const c = await ksm.readCounters();
    expect(c).toMatchObject({ pages_shared: 10, pages_sharing: 50, pages_unshared: 3, pages_volatile: 1, full_scans: 7 });
    const saved = await ksm.save();
    expect(saved.pages_shared).toBeUndefined();
    await ksm.setKnobs({ pages_to_scan: 1000 });
    exec.writes.length = 0;
    await ksm.reset(saved);
    expect(exec.writes.map(([p, v]) => `${p.split('/').pop()}=${v.trim()}`)).toEqual(['run=2', 'pages_to_scan=100', 'run=1']);
  });
});

describe('KSM control: run after an unmerge', () => {
  it('puts run back to its previous value when the caller does not set it', async () => {
    const exec = fakeKsm(BASE);
    await new KsmControl(exec).setKnobs({ max_page_sharing: 512 });
    expect(exec.writes.map(([p, v]) => `${p.split('/').pop()}=${v.trim()}`)).toEqual(['run=2', 'max_page_sharing=512', 'run=1']);
  });
});
