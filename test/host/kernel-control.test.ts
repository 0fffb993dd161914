import { describe, expect, it } from 'vitest';
import { HarnessError } from '../../src/core/errors.ts';
import { KernelControl, checkBoot, scanKernelLog } from '../../src/host/kernel/control.ts';
import { FakeExecutor } from './fake-executor.ts';

const OLD = '1b3a2c6e-0000-4000-8000-000000000001';
const NEW = '9f8e7d6c-0000-4000-8000-000000000002';

describe('boot verification (pure decision)', () => {
  it('accepts the expected release with a new boot_id and a clean log', () => {
    expect(checkBoot({ release: '5.4.0nuKSM+', previousBootId: OLD }, { release: '5.4.0nuKSM+', bootId: NEW }, '[0.0] Linux version 5.4.0\n').ok).toBe(true);
  });

  it('rejects a wrong kernel, an unchanged boot_id and a panic/oops/BUG in the log, listing all', () => {
    const log = ['[ 1.0] ok', '[ 2.0] BUG: unable to handle page fault for address: 0000', '[ 3.0] Oops: 0002 [#1] SMP', '[ 4.0] WARNING: CPU: 0 PID: 1 at foo'].join('\n');
    const c = checkBoot({ release: '5.4.0nuKSM+', previousBootId: OLD }, { release: '5.4.0', bootId: OLD }, log);
    expect(c.ok).toBe(false);
    expect(c.problems).toHaveLength(3);
    expect(c.problems[0]).toMatch(/running kernel is 5.4.0, expected 5.4.0nuKSM\+/);
    expect(c.problems[1]).toMatch(/did not change/);
    expect(c.badLogLines).toHaveLength(2);
    expect(scanKernelLog('Kernel panic - not syncing: VFS\nfine')).toEqual(['Kernel panic - not syncing: VFS']);
  });
});

/** A host that reboots: after `systemctl reboot` it is down for `downPolls` probes, then up with NEW. */
function rebootingHost(opts: { newRelease: string; downPolls: number; log?: string }) {
  let state: 'up-old' | 'down' | 'up-new' = 'up-old';
  let downLeft = opts.downPolls;
  const exec = new FakeExecutor((argv) => {
    if (state === 'down') {
      if (downLeft-- <= 0) state = 'up-new';
      else throw new HarnessError('guest-unreachable', 'connection refused');
    }
    if (argv[0] === 'sh') return { stdout: state === 'up-old' ? `5.4.0\n${OLD}\n` : `${opts.newRelease}\n${NEW}\n` };
    if (argv[0] === 'journalctl') return { stdout: opts.log ?? '[0.1] Linux version\n' };
    if (argv[0] === 'grub-reboot') return {};
    if (argv[0] === 'systemctl') {
      state = 'down';
      throw new HarnessError('guest-unreachable', 'connection lost');
    }
    return { exitCode: 1 };
  });
  return exec;
}

describe('KernelControl.bootInto (fake host)', () => {
  const fast = { pollMs: 1, downTimeoutMs: 1_000, upTimeoutMs: 1_000 };

  it('grub-reboot <entry>, reboot, waits out the downtime and verifies the new kernel', async () => {
    const exec = rebootingHost({ newRelease: '5.4.0nuKSM+', downPolls: 3 });
    const info = await new KernelControl(exec, fast).bootInto('Advanced options>nuKSM', '5.4.0nuKSM+');
    expect(info).toEqual({ release: '5.4.0nuKSM+', bootId: NEW, rebooted: true });
    expect(exec.calls[1]).toEqual(['grub-reboot', 'Advanced options>nuKSM']);
    expect(exec.calls[2]).toEqual(['systemctl', 'reboot']);
  });

  it('fails with a boot error when the host came back with the wrong kernel (e.g. GRUB fell back)', async () => {
    const exec = rebootingHost({ newRelease: '5.4.0', downPolls: 1 });
    const err = await new KernelControl(exec, fast).bootInto('nuKSM', '5.4.0nuKSM+').catch((e: unknown) => e);
    expect((err as HarnessError).failureClass).toBe('boot');
    expect((err as Error).message).toMatch(/running kernel is 5.4.0, expected 5.4.0nuKSM\+/);
  });

  it('fails when the kernel log has an oops', async () => {
    const exec = rebootingHost({ newRelease: '5.4.0nuKSM+', downPolls: 0, log: 'Oops: 0000 [#1] SMP NOPTI\n' });
    await expect(new KernelControl(exec, fast).bootInto('nuKSM', '5.4.0nuKSM+')).rejects.toThrow(/panic\/oops\/BUG/);
  });

  it('times out when the host never comes back', async () => {
    const exec = rebootingHost({ newRelease: 'x', downPolls: 1e9 });
    await expect(new KernelControl(exec, { pollMs: 5, downTimeoutMs: 100, upTimeoutMs: 200 }).bootInto('nuKSM', 'x')).rejects.toMatchObject({ failureClass: 'boot', message: expect.stringMatching(/did not come back/) });
  });

  it('does not reboot when the expected kernel already runs, but still checks the log', async () => {
    const exec = new FakeExecutor((argv) => (argv[0] === 'sh' ? { stdout: `6.1.0\n${OLD}\n` } : argv[0] === 'journalctl' ? { stdout: 'ok\n' } : { exitCode: 1 }));
    expect(await new KernelControl(exec, fast).bootInto('e', '6.1.0')).toEqual({ release: '6.1.0', bootId: OLD, rebooted: false });
    expect(exec.calls.some((c) => c[0] === 'grub-reboot' || c[0] === 'systemctl')).toBe(false);
  });

  it('falls back to dmesg when journalctl is unavailable', async () => {
    const exec = new FakeExecutor((argv) => (argv[0] === 'journalctl' ? { exitCode: 127 } : argv[0] === 'dmesg' ? { stdout: 'Kernel panic - not syncing\n' } : { stdout: `6.1.0\n${OLD}\n` }));
    await expect(new KernelControl(exec, fast).verify('6.1.0', null)).rejects.toThrow(/panic/);
  });
});
