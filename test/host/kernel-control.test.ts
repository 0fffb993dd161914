import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino, { type Logger } from 'pino';
import { stringify } from 'yaml';
import { afterAll, describe, expect, it } from 'vitest';
import { createCampaign, executeCampaign, loadTestbedFile, openCampaign } from '../../src/campaign/campaign.ts';
import { MAX_BOOTS_PER_KERNEL } from '../../src/campaign/journal.ts';
import type { KernelMode } from '../../src/core/scenario.ts';
import type { TestbedFile } from '../../src/core/testbed-file.ts';
import type { EnvironmentRecord, KernelState } from '../../src/testbeds/types.ts';
import { DoubleTestbed } from '../campaign/support/double-testbed.ts';
import { HarnessError } from '../../src/core/errors.ts';
import { KernelControl, PROBE_SLACK_MS, checkBoot, scanKernelLog } from '../../src/host/kernel/control.ts';
import { FakeExecutor } from './fake-executor.ts';
import { writeTwoKernelTestbed } from '../campaign/support/two-kernels.ts';

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

  it('a soft-lockup watchdog warning (a starved TCG guest, seen in the emulated campaign) does not fail the boot; an oops still does', () => {
    // The line that failed three boots of 6.12 in a row at load 7-8 (emulated-campaign, stop 9).
    const lockup = '[   64.952427] nuksm-emulated kernel: watchdog: BUG: soft lockup - CPU#1 stuck for 42s! [kworker/1:1:51]';
    expect(checkBoot({ release: '6.12', previousBootId: OLD }, { release: '6.12', bootId: NEW }, `${lockup}\n`).ok).toBe(true);
    expect(scanKernelLog(`${lockup}\n[ 70.1] BUG: unable to handle page fault for address: 0000`)).toEqual(['[ 70.1] BUG: unable to handle page fault for address: 0000']);
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

/**
 * A host whose GRUB always falls back to the default kernel (6.1.0): every boot into 'new'
 * (6.12.0) comes up as 6.1.0 again. The runner lives on that host (verifyOrReboot), so each run
 * ends 'rebooting' and the next "boot" is the next executeCampaign, as the boot-resume guard does.
 */
describe('a kernel that never comes up (wrong-kernel boots) ends as boot failure rows, not a reboot loop', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'nuksm-boot-loop-'));
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  class SelfRebootingTestbed extends DoubleTestbed {
    constructor(
      readonly control: KernelControl,
      readonly file: TestbedFile,
      readonly host: { release: string },
    ) {
      super();
    }
    override async ensureKernel(mode: KernelMode, log: Logger, kernel?: string): Promise<KernelState> {
      await super.ensureKernel(mode, log, kernel);
      const k = this.file.kernels[kernel!]!;
      const state = await this.control.verifyOrReboot(k.bootEntry, k.release);
      return { status: state.status, kernelRelease: state.release };
    }
    override async describe(): Promise<EnvironmentRecord> {
      return { ...(await super.describe()), kernelRelease: this.host.release };
    }
  }

  let n = 0;
  function fallbackCampaign() {
    const testbedFile = writeTwoKernelTestbed(join(tmp, `tb${n}.yaml`), { 'ksm-off': { kernel: 'old' }, ksm: { kernel: 'new' } }, 'fallback');
    const spec = join(tmp, 'spec.yaml');
    writeFileSync(
      spec,
      stringify({
        kind: 'experiment',
        name: 't',
        figures: ['table2'],
        kernelModes: ['ksm', 'ksm-off'],
        instances: [{ name: 'p0', kind: 'process', node: 0, vcpus: 1, memoryGiB: 1 }],
        timeline: { maxDurationS: 60 },
        configurations: [
          { id: 'a', workload: 'cg', estimatedTimedS: 10 },
          { id: 'b', workload: 'btree', estimatedTimedS: 10 },
        ],
      }),
    );
    const c = createCampaign({ spec, testbedFile, resultsDir: tmp, campaignId: `loop${n++}` });
    // Plan order: the 'new' kernel first (ksm is asked for first), then 'old'.
    expect(c.plan.boots.map((b) => b.kernel)).toEqual(['new', 'old']);
    return { c, file: loadTestbedFile(testbedFile) };
  }

  it(`after ${MAX_BOOTS_PER_KERNEL} boots into it its steps fail with class boot and the other kernel's steps run`, async () => {
    const { c, file } = fallbackCampaign();
    const host = { release: '6.1.0', boot: 1 };
    const bootId = () => `00000000-0000-4000-8000-${String(host.boot).padStart(12, '0')}`;
    const exec = new FakeExecutor((argv) => {
      if (argv[0] === 'sh') return { stdout: `${host.release}\n${bootId()}\n` };
      if (argv[0] === 'journalctl') return { stdout: '[0.1] Linux version\n' };
      if (argv[0] === 'grub-reboot') return {};
      if (argv[0] === 'systemctl') {
        host.boot++; // reboots …, and GRUB falls back to the default entry
        return {};
      }
      return { exitCode: 1 };
    });
    const outcomes: string[] = [];
    const log = pino({ level: 'silent' });
    for (let boot = 1; boot <= 6; boot++) {
      const opened = boot === 1 ? c : openCampaign(tmp, c.plan.campaign);
      const r = await executeCampaign(opened, new SelfRebootingTestbed(new KernelControl(exec), file, host), { log, retryDelayMs: 1 });
      outcomes.push(r.outcome);
      if (r.outcome === 'complete') break;
    }
    expect(outcomes).toEqual([...Array(MAX_BOOTS_PER_KERNEL).fill('rebooting'), 'complete']);
    expect(exec.calls.filter((a) => a[0] === 'systemctl')).toHaveLength(MAX_BOOTS_PER_KERNEL);
    const steps = c.journal.steps();
    expect(steps.filter((s) => s.kernel === 'new').map((s) => [s.state, s.failureClass])).toEqual([
      ['failed', 'boot'],
      ['failed', 'boot'],
    ]);
    expect(steps.find((s) => s.kernel === 'new')!.failureMessage).toMatch(/3 boots into kernel 'new' \(release 6\.12\.0\) did not bring it up: the host runs 6\.1\.0/);
    expect(steps.filter((s) => s.kernel === 'old').every((s) => s.state === 'done')).toBe(true);
  });

  it('a refused reboot (systemctl reboot fails) fails the kernel\'s steps loudly with class boot instead of answering rebooting', async () => {
    const { c, file } = fallbackCampaign();
    const host = { release: '6.1.0' };
    const exec = new FakeExecutor((argv) => {
      if (argv[0] === 'sh') return { stdout: `${host.release}\n${OLD}\n` };
      if (argv[0] === 'journalctl') return { stdout: '[0.1] Linux version\n' };
      if (argv[0] === 'grub-reboot') return {};
      if (argv[0] === 'systemctl') return { exitCode: 1, stderr: 'Failed to set wall message, ignoring: Interactive authentication required.\nCall to Reboot failed: Access denied\n' };
      return { exitCode: 1 };
    });
    const r = await executeCampaign(c, new SelfRebootingTestbed(new KernelControl(exec), file, host), { log: pino({ level: 'silent' }), retryDelayMs: 1 });
    expect(r).toMatchObject({ outcome: 'complete', done: 2, failed: 2 });
    const failed = c.journal.steps().filter((s) => s.kernel === 'new');
    expect(failed.every((s) => s.state === 'failed' && s.failureClass === 'boot')).toBe(true);
    expect(failed[0]!.failureMessage).toMatch(/the reboot was refused on fake: 'systemctl reboot' exited 1/);
    expect(exec.calls.filter((a) => a[0] === 'systemctl')).toHaveLength(MAX_BOOTS_PER_KERNEL);
  });
});

describe('KernelControl waits end by their deadline', () => {
  it('waitBack and waitGone end within the deadline plus PROBE_SLACK_MS even when a probe never returns (an SSH reconnect that ignores its timeout)', async () => {
    const hung = new FakeExecutor(() => new Promise(() => {}));
    const k = new KernelControl(hung, { pollMs: 10, upTimeoutMs: 300, downTimeoutMs: 300, probeTimeoutMs: 60_000 });
    let t = Date.now();
    await expect(k.waitBack(OLD)).rejects.toMatchObject({ failureClass: 'boot', message: expect.stringMatching(/did not come back within 300 ms/) });
    expect(Date.now() - t).toBeLessThan(300 + PROBE_SLACK_MS + 500);
    // A host that answers with the old boot id only after a long stall: still bounded.
    const slow = new FakeExecutor(() => new Promise((r) => setTimeout(() => r({ stdout: `5.4.0\n${OLD}\n` }), 5_000)));
    t = Date.now();
    await expect(new KernelControl(slow, { pollMs: 10, downTimeoutMs: 300, probeTimeoutMs: 60_000 }).waitGone(OLD)).rejects.toMatchObject({ failureClass: 'boot' });
    expect(Date.now() - t).toBeLessThan(300 + PROBE_SLACK_MS + 500);
    // A probe hanging past its own (shorter) timeout: the host does not answer, so it is gone.
    t = Date.now();
    await new KernelControl(hung, { pollMs: 10, downTimeoutMs: 10_000, probeTimeoutMs: 100 }).waitGone(OLD);
    expect(Date.now() - t).toBeLessThan(100 + PROBE_SLACK_MS + 500);
  });
});

describe('KernelControl.requestReboot', () => {
  it('throws a boot error when systemctl reboot is refused; a command killed by the shutdown or a dropped connection is a reboot under way', async () => {
    const answer = (r: Record<string, unknown> | Error) => new KernelControl(new FakeExecutor(() => { if (r instanceof Error) throw r; return r; }));
    await expect(answer({ exitCode: 1, stderr: 'Access denied' }).requestReboot()).rejects.toMatchObject({ failureClass: 'boot', message: expect.stringMatching(/refused.*exited 1: Access denied/) });
    await expect(answer({ exitCode: 143 }).requestReboot()).resolves.toBeUndefined();
    await expect(answer({ exitCode: 0 }).requestReboot()).resolves.toBeUndefined();
    await expect(answer(new HarnessError('guest-unreachable', 'connection lost')).requestReboot()).resolves.toBeUndefined();
    await expect(new KernelControl(new FakeExecutor((a) => (a[0] === 'sh' ? { stdout: `5.4.0\n${OLD}\n` } : a[0] === 'systemctl' ? { exitCode: 1 } : {}))).verifyOrReboot('e', '6.1.0')).rejects.toMatchObject({ failureClass: 'boot' });
  });
});
