/**
 * Kernel control read-outs on this machine (it cannot be rebooted here; the reboot decision logic
 * is tested with a fake executor in test/host/kernel-control.test.ts).
 */
import { readFileSync } from 'node:fs';
import { release } from 'node:os';
import { expect, it } from 'vitest';
import { LocalExecutor } from '../../src/host/exec/local.ts';
import { KernelControl } from '../../src/host/kernel/control.ts';
import { describeWith } from '../support/components.ts';

describeWith(['root'], 'kernel control on the running machine', () => {
  const kc = new KernelControl(new LocalExecutor());

  it('reads uname -r and the boot_id', async () => {
    const info = await kc.bootInfo();
    expect(info.release).toBe(release());
    expect(info.bootId).toBe(readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim());
  });

  it('reads this boot’s kernel log and verifies the running kernel (no reboot)', async () => {
    const log = await kc.kernelLog();
    expect(log).toMatch(/Linux version|\S/);
    const info = await kc.verify(release(), null);
    expect(info.release).toBe(release());
  });

  it('refuses the wrong expected release, and an unchanged boot_id', async () => {
    const { bootId } = await kc.bootInfo();
    await expect(kc.verify('0.0.0-not-this', null)).rejects.toMatchObject({ failureClass: 'boot', message: expect.stringMatching(/expected 0.0.0-not-this/) });
    await expect(kc.verify(release(), bootId)).rejects.toThrow(/did not change/);
  });
});
