/** The resource ledger and what a resume does with it (scripted host: the decisions, not the commands' effects). */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { Ledger, LEDGER_FILE, ledgerClosed, readLedger } from '../../../src/testbeds/step/ledger.ts';
import { reclaimAttempt, stepTagOf } from '../../../src/testbeds/step/engine.ts';
import type { Scenario } from '../../../src/core/scenario.ts';
import { FakeExecutor } from '../../host/fake-executor.ts';

const log = pino({ level: 'silent' });

describe('resource ledger', () => {
  it('appends entries durably and ignores a torn last line', () => {
    const dir = mkdtempSync(join(tmpdir(), 'nuksm-ledger-'));
    const l = new Ledger(dir);
    l.record({ kind: 'domain', name: 'nuksm-x-vm0', uri: 'qemu:///system' });
    l.record({ kind: 'file', path: '/o/nuksm-x-vm0.qcow2' });
    writeFileSync(join(dir, LEDGER_FILE), `${readFileSync(join(dir, LEDGER_FILE), 'utf8')}{"kind":"proc`);
    expect(readLedger(dir)).toEqual([
      { kind: 'domain', name: 'nuksm-x-vm0', uri: 'qemu:///system' },
      { kind: 'file', path: '/o/nuksm-x-vm0.qcow2' },
    ]);
    expect(ledgerClosed(readLedger(dir))).toBe(false);
    expect(readLedger(join(dir, 'missing'))).toEqual([]);
  });

  it('step tags differ per attempt start and per campaign, and are safe in names', () => {
    const s = { campaign: 'c1', configId: 'xsbench/C-10:1', iteration: 2 } as Scenario;
    const a = stepTagOf(s, 1_000);
    expect(a).toMatch(/^[0-9a-f]{6}-xsbench_C-10_1-i2-[0-9a-z]+$/);
    expect(stepTagOf(s, 2_000)).not.toBe(a);
    expect(stepTagOf({ ...s, campaign: 'c2' }, 1_000)).not.toBe(a);
  });
});

describe('reclaimAttempt', () => {
  it('undoes what an interrupted attempt listed, newest first, then closes the ledger; a closed ledger is left alone', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'nuksm-reclaim-'));
    const l = new Ledger(dir);
    l.record({ kind: 'ksm-knobs', knobs: { run: '0', pages_to_scan: '100' } });
    l.record({ kind: 'workdir', path: '/var/tmp/nuksm/tag' });
    l.record({ kind: 'domain', name: 'nuksm-tag-vm0', uri: 'qemu:///system' });
    l.record({ kind: 'file', path: '/o/nuksm-tag-vm0.qcow2' });
    l.record({ kind: 'processes', marker: 'tag/p0' });
    // A KSM sysfs that keeps what is written to it.
    const sysfs: Record<string, string> = { run: '1', pages_to_scan: '1000', ...Object.fromEntries(['pages_shared', 'pages_sharing', 'pages_unshared', 'pages_volatile', 'full_scans', 'stable_node_chains', 'stable_node_dups', 'general_profit', 'ksm_zero_pages', 'pages_skipped', 'pages_scanned'].map((c) => [c, '0'])) };
    const exec = new FakeExecutor((argv) => {
      const cmd = argv.join(' ');
      if (cmd.includes('domstate nuksm-tag-vm0')) return { stdout: 'running\n' };
      if (argv[0] === 'sh' && argv.includes('/o/nuksm-tag-vm0.qcow2')) return { stdout: 'removed\n' };
      if (argv[0] === 'sh' && argv.includes('tag/p0')) return { stdout: '4242 1000\n' };
      if (argv[0] === 'grep' && argv.includes('/sys/kernel/mm/ksm')) return { stdout: Object.entries(sysfs).map(([k, v]) => `/sys/kernel/mm/ksm/${k}:${v}`).join('\n') };
      return {};
    });
    exec.writeHook = (path, content) => {
      if (path.startsWith('/sys/kernel/mm/ksm/')) sysfs[path.slice('/sys/kernel/mm/ksm/'.length)] = content.trim();
    };
    const found = await reclaimAttempt(dir, exec, log);
    expect(found).toEqual(['1 process(es) of tag/p0', 'file /o/nuksm-tag-vm0.qcow2', 'domain nuksm-tag-vm0 (running)']);
    const cmds = exec.calls.map((c) => c.join(' '));
    const at = (re: RegExp) => cmds.findIndex((c) => re.test(c));
    expect(at(/^kill -KILL 4242$/)).toBeGreaterThanOrEqual(0);
    expect(at(/destroy nuksm-tag-vm0/)).toBeGreaterThan(at(/^kill -KILL 4242$/));
    expect(at(/undefine nuksm-tag-vm0/)).toBeGreaterThan(at(/destroy nuksm-tag-vm0/));
    expect(at(/^rm -rf -- \/var\/tmp\/nuksm\/tag$/)).toBeGreaterThan(at(/undefine/));
    // The knobs saved before the step are written back.
    expect(sysfs).toMatchObject({ run: '0', pages_to_scan: '100' });
    expect(readLedger(dir).at(-1)).toEqual({ kind: 'closed' });
    const again = new FakeExecutor();
    expect(await reclaimAttempt(dir, again, log)).toEqual([]);
    expect(again.calls).toEqual([]);
  });

  it('writes back kernel.numa_balancing as it was before the step (docs/baselines.md), and only when it changed', async () => {
    const sysctl = new Map([['/proc/sys/kernel/numa_balancing', '0']]);
    const exec = new FakeExecutor((argv) => {
      if (argv[0] === 'sh' && argv.includes('/proc/sys/kernel/numa_balancing')) return { stdout: `${sysctl.get('/proc/sys/kernel/numa_balancing')}\n` };
      return {};
    });
    exec.writeHook = (path, content) => void sysctl.set(path, content.trim());
    const dir = mkdtempSync(join(tmpdir(), 'nuksm-reclaim-sysctl-'));
    new Ledger(dir).record({ kind: 'sysctl', name: 'kernel.numa_balancing', value: '1' });
    expect(await reclaimAttempt(dir, exec, log)).toEqual(['kernel.numa_balancing changed']);
    expect(sysctl.get('/proc/sys/kernel/numa_balancing')).toBe('1');
    expect(exec.writes).toEqual([['/proc/sys/kernel/numa_balancing', '1\n']]);
    const unchanged = mkdtempSync(join(tmpdir(), 'nuksm-reclaim-sysctl-'));
    new Ledger(unchanged).record({ kind: 'sysctl', name: 'kernel.numa_balancing', value: '1' });
    expect(await reclaimAttempt(unchanged, exec, log)).toEqual([]);
    expect(exec.writes.length).toBe(1);
  });
});
