/**
 * Kernel control through an Executor on the host: choose the next boot's kernel (grub-reboot, a
 * one-shot choice so a kernel that fails to boot falls back to the default entry), reboot, wait
 * for the host to go away and come back, then verify it before anything else runs: `uname -r`
 * equals the expected release, the boot_id is new, and the kernel log has no panic/oops/BUG.
 */
import { HarnessError } from '../../core/errors.ts';
import type { Executor } from '../exec/types.ts';

export interface BootInfo {
  release: string;
  bootId: string;
}

export interface BootCheck {
  ok: boolean;
  problems: string[];
  /** Kernel-log lines that matched a failure pattern. */
  badLogLines: string[];
}

/** Lines in a kernel log that mean the boot is not trustworthy. Warnings are not included. */
export const KERNEL_LOG_FAILURES: readonly RegExp[] = [/Kernel panic/i, /\bOops\b/, /\bBUG:/, /kernel BUG at/, /general protection fault/i, /Unable to handle kernel/i];

/**
 * Matched by `BUG:` but only a watchdog warning: the kernel goes on. A guest whose host is starved of
 * CPU (TCG on a loaded machine) prints it during boot; rejecting such a boot made every retry fail.
 */
export const KERNEL_LOG_WARNINGS: readonly RegExp[] = [/watchdog: BUG: soft lockup/];

export function scanKernelLog(log: string): string[] {
  return log.split('\n').filter((line) => KERNEL_LOG_FAILURES.some((re) => re.test(line)) && !KERNEL_LOG_WARNINGS.some((re) => re.test(line)));
}

/** The decision after a reboot, from what was read back (pure; unit-tested). */
export function checkBoot(expected: { release: string; previousBootId: string | null }, seen: BootInfo, kernelLog: string): BootCheck {
  const problems: string[] = [];
  if (seen.release !== expected.release) problems.push(`running kernel is ${seen.release}, expected ${expected.release}`);
  if (expected.previousBootId !== null && seen.bootId === expected.previousBootId) problems.push(`boot_id ${seen.bootId} did not change: the host did not reboot`);
  if (!/^[0-9a-f-]{36}$/.test(seen.bootId)) problems.push(`boot_id '${seen.bootId}' is not a boot UUID`);
  const badLogLines = scanKernelLog(kernelLog);
  if (badLogLines.length > 0) problems.push(`kernel log has ${badLogLines.length} panic/oops/BUG line(s), first: ${badLogLines[0]}`);
  return { ok: problems.length === 0, problems, badLogLines };
}

/** How far past its deadline a wait for the host may end (an abandoned probe's grace). */
export const PROBE_SLACK_MS = 1_000;

export interface KernelControlOptions {
  /** How long the host may take to stop answering after the reboot command. */
  downTimeoutMs?: number;
  /** How long the host may take to come back. */
  upTimeoutMs?: number;
  pollMs?: number;
  /** Timeout of each probe command. */
  probeTimeoutMs?: number;
}

export class KernelControl {
  private readonly downTimeoutMs: number;
  private readonly upTimeoutMs: number;
  private readonly pollMs: number;
  private readonly probeTimeoutMs: number;

  constructor(
    readonly exec: Executor,
    opts: KernelControlOptions = {},
  ) {
    this.downTimeoutMs = opts.downTimeoutMs ?? 180_000;
    this.upTimeoutMs = opts.upTimeoutMs ?? 900_000;
    this.pollMs = opts.pollMs ?? 5_000;
    this.probeTimeoutMs = opts.probeTimeoutMs ?? 15_000;
  }

  async bootInfo(timeoutMs = this.probeTimeoutMs): Promise<BootInfo> {
    const res = await this.exec.run(['sh', '-c', 'uname -r; cat /proc/sys/kernel/random/boot_id'], { timeoutMs });
    const [release, bootId] = res.stdout.trim().split('\n').map((s) => s.trim());
    if (!release || !bootId) throw new HarnessError('boot', `cannot read kernel release and boot_id on ${this.exec.target}: '${res.stdout}'`);
    return { release, bootId };
  }

  /** This boot's kernel log: journalctl -k -b when available, else dmesg. */
  async kernelLog(): Promise<string> {
    const journal = await this.exec.run(['journalctl', '-k', '-b', '-q', '--no-pager', '-o', 'short-monotonic'], { timeoutMs: 60_000, allowFailure: true }).catch(() => null);
    if (journal && journal.exitCode === 0 && journal.stdout.trim()) return journal.stdout;
    const dmesg = await this.exec.run(['dmesg'], { timeoutMs: 60_000, allowFailure: true });
    if (dmesg.exitCode !== 0) throw new HarnessError('boot', `cannot read the kernel log on ${this.exec.target} (journalctl -k and dmesg both failed): ${dmesg.stderr.trim()}`);
    return dmesg.stdout;
  }

  /** One-shot selection of the next boot entry (GRUB_DEFAULT=saved is required). */
  async selectNextBoot(entry: string): Promise<void> {
    await this.exec.run(['grub-reboot', entry], { timeoutMs: 60_000 });
  }

  /**
   * Ask the host to reboot; the connection dropping during the call is expected, and so is the
   * command being killed by the shutdown it started (exit 128+n). Any other non-zero exit is a
   * refusal (no privilege, an inhibitor lock, systemd not running): HarnessError('boot'), since
   * answering 'rebooting' when nothing reboots stalls the campaign.
   */
  async requestReboot(): Promise<void> {
    const res = await this.exec.run(['systemctl', 'reboot'], { timeoutMs: 30_000, allowFailure: true }).catch((err: unknown) => {
      if (err instanceof HarnessError && (err.failureClass === 'guest-unreachable' || err.failureClass === 'timeout')) return null;
      throw err;
    });
    if (res && res.exitCode !== 0 && !(res.exitCode >= 128)) {
      const why = `${res.stderr}${res.stdout}`.trim().split('\n')[0] ?? '';
      throw new HarnessError('boot', `the reboot was refused on ${this.exec.target}: 'systemctl reboot' exited ${res.exitCode}${why ? `: ${why}` : ''}`, { exitCode: res.exitCode });
    }
  }

  /**
   * One probe that ends by the deadline (plus PROBE_SLACK_MS) whatever the executor does: its
   * timeout is cut to the time left, and a probe still hanging then (an SSH reconnect that does
   * not honour its timeout) is abandoned. 'late' when the deadline came first.
   */
  private async probeBy(deadline: number): Promise<BootInfo | Error | 'late'> {
    const left = deadline - Date.now();
    if (left <= 0) return 'late';
    const cutByDeadline = left <= this.probeTimeoutMs;
    const timeoutMs = Math.max(1, Math.min(this.probeTimeoutMs, left));
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<'late'>((resolve) => {
      timer = setTimeout(() => resolve('late'), timeoutMs + PROBE_SLACK_MS);
    });
    const probe = this.bootInfo(timeoutMs).catch((err: unknown) => (err instanceof Error ? err : new Error(String(err))));
    try {
      const r = await Promise.race([probe, late]);
      // A probe that outlived its own timeout (not the deadline) is a host that does not answer.
      return r === 'late' && !cutByDeadline ? new Error(`no answer within ${timeoutMs} ms`) : r;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Wait until the host stops answering with the old boot_id (gone, or already back with a new one). Ends by the deadline plus PROBE_SLACK_MS. */
  async waitGone(previousBootId: string): Promise<void> {
    const deadline = Date.now() + this.downTimeoutMs;
    while (Date.now() < deadline) {
      const info = await this.probeBy(deadline);
      if (info === 'late') break;
      if (info instanceof Error || info.bootId !== previousBootId) return;
      await sleep(Math.min(this.pollMs, Math.max(0, deadline - Date.now())));
    }
    throw new HarnessError('boot', `${this.exec.target} was still up with the same boot_id ${this.downTimeoutMs} ms after the reboot request`);
  }

  /** Wait until the host answers with a boot_id different from previousBootId. Ends by the deadline plus PROBE_SLACK_MS. */
  async waitBack(previousBootId: string): Promise<BootInfo> {
    const deadline = Date.now() + this.upTimeoutMs;
    let lastError = '';
    while (Date.now() < deadline) {
      const info = await this.probeBy(deadline);
      if (info === 'late') {
        lastError = 'no answer before the deadline';
        break;
      }
      if (info instanceof Error) lastError = info.message;
      else if (info.bootId !== previousBootId) return info;
      else lastError = 'same boot_id';
      await sleep(Math.min(this.pollMs, Math.max(0, deadline - Date.now())));
    }
    throw new HarnessError('boot', `${this.exec.target} did not come back within ${this.upTimeoutMs} ms after reboot (last: ${lastError})`);
  }

  /** Verify the running kernel; throws HarnessError('boot') listing every problem. */
  async verify(expectedRelease: string, previousBootId: string | null): Promise<BootInfo> {
    const info = await this.bootInfo();
    const check = checkBoot({ release: expectedRelease, previousBootId }, info, await this.kernelLog());
    if (!check.ok) throw new HarnessError('boot', `boot verification failed on ${this.exec.target}: ${check.problems.join('; ')}`, { ...info, problems: check.problems, badLogLines: check.badLogLines.slice(0, 20) });
    return info;
  }

  /**
   * grub-reboot <entry>, reboot, wait for the host to go and come back, verify. When the host
   * already runs the expected release, nothing is done (returns rebooted=false) after verifying the log.
   */
  async bootInto(entry: string, expectedRelease: string, opts: { force?: boolean } = {}): Promise<BootInfo & { rebooted: boolean }> {
    const before = await this.bootInfo();
    if (before.release === expectedRelease && !opts.force) return { ...(await this.verify(expectedRelease, null)), rebooted: false };
    await this.selectNextBoot(entry);
    await this.requestReboot();
    await this.waitGone(before.bootId);
    await this.waitBack(before.bootId);
    return { ...(await this.verify(expectedRelease, before.bootId)), rebooted: true };
  }

  /**
   * For a harness running ON the host it reboots: verify when the expected kernel runs (also right
   * after the reboot an earlier call started), else grub-reboot + reboot and answer 'rebooting' —
   * this process is about to die; the campaign resumes after boot.
   */
  async verifyOrReboot(entry: string, expectedRelease: string): Promise<{ status: 'ready' | 'rebooting'; release: string }> {
    const now = await this.bootInfo();
    if (now.release === expectedRelease) return { status: 'ready', release: (await this.verify(expectedRelease, null)).release };
    await this.selectNextBoot(entry);
    await this.requestReboot();
    return { status: 'rebooting', release: now.release };
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
