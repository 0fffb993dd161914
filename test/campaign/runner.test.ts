/** The runner and journal with a scripted test double: retries per failure class, failure rows, reboots, timeouts. */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { stringify } from 'yaml';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { setLongTimeout } from '../../src/core/long-timer.ts';
import { campaignLogger, createCampaign, executeCampaign, LOG_FILE, openCampaign } from '../../src/campaign/campaign.ts';
import { getWorkload } from '../../src/workloads/index.ts';
import { writeTwoKernelTestbed } from './support/two-kernels.ts';
import { DoubleTestbed, type DoubleScript } from './support/double-testbed.ts';

const ROOT = join(import.meta.dirname, '..', '..');
const tmp = mkdtempSync(join(tmpdir(), 'nuksm-runner-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const silent = pino({ level: 'silent' });

let n = 0;
function campaign(opts: { maxDurationS?: number; modes?: string[]; testbedFile?: string } = {}) {
  const spec = join(tmp, `spec${n}.yaml`);
  writeFileSync(
    spec,
    stringify({
      kind: 'experiment',
      name: 't',
      figures: ['table2'],
      kernelModes: opts.modes ?? ['ksm-off', 'ksm'],
      instances: [
        { name: 'vm0', node: 0, vcpus: 1, memoryGiB: 1, template: 'guest-kvm' },
        { name: 'vm1', node: 1, vcpus: 1, memoryGiB: 1, template: 'guest-kvm' },
      ],
      // No stagger: the double starts both VMs at once (and a 60 s stagger would pass the short limits below).
      timeline: { maxDurationS: opts.maxDurationS ?? 60, staggerS: 0 },
      configurations: [
        { id: 'a', workload: 'cg', estimatedTimedS: 10 },
        { id: 'b', workload: 'btree', estimatedTimedS: 10 },
      ],
    }),
  );
  return createCampaign({ spec, testbedFile: opts.testbedFile ?? join(ROOT, 'experiments', 'testbeds', 'model.yaml'), resultsDir: tmp, campaignId: `c${n++}` });
}

async function run(c: ReturnType<typeof campaign>, script: DoubleScript, double = new DoubleTestbed(script)) {
  const result = await executeCampaign(c, double, { retryDelayMs: 1, log: silent });
  return { result, double, steps: c.journal.steps() };
}

describe('runner', () => {
  it('retries a class that allows it; only the successful attempt’s samples count', async () => {
    const c = campaign();
    const { result, steps } = await run(c, { failures: { 'a|ksm': ['guest-unreachable', 'guest-unreachable'] } });
    expect(result).toMatchObject({ outcome: 'complete', done: 4, failed: 0 });
    const step = steps.find((s) => s.configId === 'a' && s.kernelMode === 'ksm')!;
    expect(step.attempts).toBe(3);
    const runtimes = c.store.rows({ metric: 'runtime_s' }).filter((r) => r.step === step.stepId);
    expect(runtimes.map((r) => r.value)).toEqual([103, 103]); // attempt 3 only, one per VM
    expect((c.store.db.prepare('SELECT COUNT(*) AS n FROM samples WHERE step_id = ?').get(step.stepId) as { n: number }).n).toBe(3);
    expect(c.store.manifest(step.stepId)).toMatchObject({ attempt: 3, kernelRelease: 'double-ksm', ksmKnobs: { run: '1' }, stepKey: step.key });
  });

  it('does not retry a parse error: a failure row, and the campaign goes on', async () => {
    const c = campaign();
    const { result, steps, double } = await run(c, { failures: { 'a|ksm-off': ['parse-error'] } });
    expect(result).toMatchObject({ outcome: 'complete', done: 3, failed: 1 });
    const failed = steps.find((s) => s.state === 'failed')!;
    expect(failed).toMatchObject({ configId: 'a', kernelMode: 'ksm-off', failureClass: 'parse-error', attempts: 1 });
    expect(double.calls.run.filter((k) => k === 'a|ksm-off')).toHaveLength(1);
    expect(c.store.rows().some((r) => r.step === failed.stepId)).toBe(false);
  });

  it('gives up on benchmark errors after one retry', async () => {
    const c = campaign();
    const { steps } = await run(c, { failures: { 'b|ksm': ['benchmark-error', 'benchmark-error', 'benchmark-error'] } });
    expect(steps.find((s) => s.configId === 'b' && s.kernelMode === 'ksm')).toMatchObject({ state: 'failed', failureClass: 'benchmark-error', attempts: 2 });
  });

  it('rejects samples with unknown metrics (parse-error)', async () => {
    const c = campaign();
    const { steps } = await run(c, { badMetric: ['b'] });
    expect(steps.filter((s) => s.configId === 'b').every((s) => s.state === 'failed' && s.failureClass === 'parse-error' && /made_up/.test(s.failureMessage!))).toBe(true);
  });

  it('stops cleanly for a reboot and resumes after it without re-running anything', async () => {
    const c = campaign();
    const first = await run(c, { rebootInto: ['ksm'] });
    expect(first.result.outcome).toBe('rebooting');
    // Plan order is a|ksm-off, a|ksm, b|ksm-off, b|ksm (one kernel in model.yaml): the stop comes before a|ksm.
    expect(first.steps.filter((s) => s.state === 'done').map((s) => `${s.configId}|${s.kernelMode}`)).toEqual(['a|ksm-off']);
    expect(first.double.calls.run).toEqual(['a|ksm-off']);
    expect(first.steps.filter((s) => s.state === 'running')).toHaveLength(0);
    c.store.close();
    // "After boot": a new process opens the campaign; the host now runs the right kernel.
    const reopened = openCampaign(tmp, c.plan.campaign);
    const double = new DoubleTestbed();
    const second = await executeCampaign(reopened, double, { retryDelayMs: 1, log: silent });
    expect(second).toMatchObject({ outcome: 'complete', done: 4 });
    expect(double.calls.run).toEqual(['a|ksm', 'b|ksm-off', 'b|ksm']);
  });

  it('fails a step that exceeds maxDurationS with class timeout', async () => {
    const c = campaign({ maxDurationS: 0.2 });
    const { steps, result } = await run(c, { hang: ['a'] });
    expect(result.done).toBe(2);
    expect(steps.filter((s) => s.configId === 'a').every((s) => s.failureClass === 'timeout' && s.attempts === 2)).toBe(true);
  });

  it('a timed-out attempt is torn down before its retry starts (no two attempts of a step at once)', async () => {
    const c = campaign({ maxDurationS: 0.2 });
    const double = new DoubleTestbed({ hang: ['a'], teardownMs: 300 });
    const result = await executeCampaign(c, double, { retryDelayMs: 1, log: silent });
    expect(result.done).toBe(2);
    const at = (entries: string[], key: string) => Number(entries.find((e) => e.startsWith(key))!.split('@')[1]);
    for (const mode of ['ksm-off', 'ksm']) {
      // Attempt 2 starts only after attempt 1 finished its (slow) teardown.
      expect(at(double.calls.started, `a|${mode}#2`)).toBeGreaterThanOrEqual(at(double.calls.settled, `a|${mode}#1`));
      expect(double.calls.settled.filter((e) => e.startsWith(`a|${mode}#`))).toHaveLength(2);
    }
    expect(c.journal.steps().filter((s) => s.configId === 'a').every((s) => s.state === 'failed' && s.failureClass === 'timeout' && s.attempts === 2)).toBe(true);
  });

  it('a timed-out attempt that does not finish its teardown within the grace fails the step instead of starting a retry next to it', async () => {
    const c = campaign({ maxDurationS: 0.2, modes: ['ksm'] });
    const double = new DoubleTestbed({ hang: ['a'], teardownMs: 'never' });
    const result = await executeCampaign(c, double, { retryDelayMs: 1, log: silent, teardownGraceMs: 100 });
    expect(result).toMatchObject({ outcome: 'complete', done: 1, failed: 1 });
    expect(double.calls.run.filter((k) => k === 'a|ksm')).toHaveLength(1);
    const a = c.journal.steps().find((s) => s.configId === 'a')!;
    expect(a).toMatchObject({ state: 'failed', failureClass: 'timeout', attempts: 1 });
    expect(a.failureMessage).toMatch(/did not finish tearing the attempt down within 100 ms/);
  });

  it('a maxDurationS beyond the Node timer range (a plan stored before the bound) does not time the step out after 1 ms', async () => {
    const c = campaign();
    for (const st of c.journal.steps()) {
      const scenario = { ...st.scenario, timeline: { ...st.scenario.timeline, maxDurationS: 3_000_000 } };
      c.store.db.prepare('UPDATE steps SET scenario_json = ? WHERE step_id = ?').run(JSON.stringify(scenario), st.stepId);
    }
    const { result, steps } = await run(c, { slowMs: 30 });
    expect(result).toMatchObject({ outcome: 'complete', done: 4, failed: 0 });
    expect(steps.every((s) => s.attempts === 1)).toBe(true);
  });

  it('setLongTimeout waits delays past 2^31−1 ms and can be cleared', () => {
    vi.useFakeTimers();
    try {
      let fired = 0;
      setLongTimeout(() => fired++, 2 ** 31 + 5_000);
      const never = setLongTimeout(() => fired++, 2 ** 31 + 10_000);
      vi.advanceTimersByTime(2 ** 31 - 1);
      expect(fired).toBe(0);
      vi.advanceTimersByTime(5_001);
      expect(fired).toBe(1);
      never.clear();
      vi.advanceTimersByTime(60_000);
      expect(fired).toBe(1);
    } finally {
      vi.useRealTimers();
    }
  });

  it('marks modes the testbed file lacks as unsupported without calling the testbed', async () => {
    const c = campaign({ modes: ['ksm', 'uksm'] });
    const { result, double, steps } = await run(c, {});
    expect(result).toMatchObject({ outcome: 'complete', done: 2, failed: 2, unsupported: 2 });
    expect(double.calls.ensureKernel).not.toContain('uksm');
    expect(steps.filter((s) => s.kernelMode === 'uksm').every((s) => s.failureClass === 'unsupported' && s.attempts === 0)).toBe(true);
  });

  it('passes the step kernel to ensureKernel and calls it again when only the kernel changes', async () => {
    const testbedFile = writeTwoKernelTestbed(join(tmp, 'two-kernels.yaml'), { 'ksm-off': { kernel: 'old' }, ksm: { kernel: ['old', 'new'] } });
    const c = campaign({ testbedFile });
    const { result, double, steps } = await run(c, { rebootIntoKernel: ['new'] });
    // Stops to reboot before the first step on the second kernel of the same mode (step 4 → 5:
    // same mode, only the kernel differs). The mode alternates on 'old' (configs a, b).
    expect(result).toMatchObject({ outcome: 'rebooting', done: 4, pending: 2 });
    expect(c.journal.steps().map((s) => s.stepId.slice(5))).toEqual(['t-a-ksm-off-i1', 't-a-ksm-i1-old', 't-b-ksm-off-i1', 't-b-ksm-i1-old', 't-a-ksm-i1-new', 't-b-ksm-i1-new']);
    expect(double.calls.ensure).toEqual(['ksm-off@old', 'ksm@old', 'ksm-off@old', 'ksm@old', 'ksm@new']);
    expect(steps.filter((s) => s.state === 'pending').map((s) => [s.kernelMode, s.kernel])).toEqual([['ksm', 'new'], ['ksm', 'new']]);
    // After the reboot (resume): the runner asks for that kernel again, once, and finishes.
    const resumed = await run(c, {}, double);
    expect(resumed.result).toMatchObject({ outcome: 'complete', done: 6, failed: 0 });
    expect(double.calls.ensure).toEqual(['ksm-off@old', 'ksm@old', 'ksm-off@old', 'ksm@old', 'ksm@new', 'ksm@new']);
    expect(double.calls.run.filter((k) => k === 'a|ksm')).toHaveLength(2); // once per kernel
    expect(new Set(resumed.steps.map((s) => s.kernel))).toEqual(new Set(['old', 'new']));
  });

  it('a step left running by a crash is re-run from scratch and its partial samples dropped', async () => {
    const c = campaign();
    const [step] = c.journal.steps();
    const dead = c.journal.beginAttempt(step!.stepId);
    c.store.addSamples(step!.stepId, dead, [{ instance: 'vm0', workload: 'cg', metric: 'runtime_s', value: 1, unit: 's', t: null, node: null }]);
    const { result } = await run(c, {});
    expect(result.done).toBe(4);
    expect(c.store.rows().filter((r) => r.step === step!.stepId && r.metric === 'runtime_s').map((r) => r.value)).toEqual([101, 101]);
    expect((c.store.db.prepare('SELECT COUNT(*) AS n FROM samples WHERE attempt_id = ?').get(dead) as { n: number }).n).toBe(0);
    expect((c.store.db.prepare("SELECT outcome FROM attempts WHERE attempt_id = ?").get(dead) as { outcome: string }).outcome).toBe('interrupted');
  });

  it('a stop signal during a step puts it back to pending (not a failure) and nothing of it is kept', async () => {
    const c = campaign();
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 100);
    const result = await executeCampaign(c, new DoubleTestbed({ hang: ['a'] }), { retryDelayMs: 1, log: silent, signal: controller.signal, stopGraceMs: 50 });
    expect(result.outcome).toBe('stopped');
    const first = c.journal.steps()[0]!;
    expect(first).toMatchObject({ state: 'pending', failureClass: null, attempts: 1 });
    expect(c.store.rows()).toHaveLength(0);
    expect((c.store.db.prepare('SELECT COUNT(*) AS n FROM samples').get() as { n: number }).n).toBe(0);
  });

  it('a stop signal during the retry back-off stops the campaign: no new attempt, the step is requeued, not complete', async () => {
    const c = campaign();
    const last = c.journal.steps().at(-1)!;
    const key = `${last.configId}|${last.kernelMode}`;
    const double = new DoubleTestbed({ failures: { [key]: ['guest-unreachable'] } });
    const controller = new AbortController();
    // Abort once the last step's first attempt has failed, i.e. while p-retry waits out its 400 ms delay.
    const poll = setInterval(() => {
      if (c.journal.attempts().some((a) => a.stepId === last.stepId && a.outcome === 'failed')) {
        clearInterval(poll);
        setTimeout(() => controller.abort(), 50);
      }
    }, 5);
    const result = await executeCampaign(c, double, { retryDelayMs: 400, log: silent, signal: controller.signal });
    clearInterval(poll);
    expect(result.outcome).toBe('stopped');
    expect(double.calls.run.filter((k) => k === key)).toHaveLength(1);
    expect(c.journal.steps().at(-1)).toMatchObject({ stepId: last.stepId, state: 'pending', attempts: 1 });
    expect(result).toMatchObject({ done: 3, pending: 1 });
  });

  it('refuses a second runner on the same campaign while the first is alive', async () => {
    const c = campaign();
    const controller = new AbortController();
    const first = executeCampaign(c, new DoubleTestbed({ hang: ['a'] }), { retryDelayMs: 1, log: silent, signal: controller.signal, stopGraceMs: 50 });
    await new Promise((r) => setTimeout(r, 50));
    const other = openCampaign(tmp, c.plan.campaign);
    // Same process id here, so simulate another live runner by writing a live foreign pid.
    const { writeFileSync: write } = await import('node:fs');
    write(join(c.dir, 'runner.lock'), String(process.ppid));
    await expect(executeCampaign(other, new DoubleTestbed(), { log: silent })).rejects.toThrow(/already being run by pid/);
    controller.abort();
    await first;
  });

  it('numbers raw directories by the journal attempt, so a re-run after a crash never shares the interrupted attempt\'s', async () => {
    const c = campaign();
    const first = c.journal.steps()[0]!.stepId;
    c.journal.beginAttempt(first); // a runner died here (kill -9, power loss)
    expect((await executeCampaign(c, new DoubleTestbed(), { log: silent })).outcome).toBe('complete');
    const { existsSync: exists } = await import('node:fs');
    expect(exists(join(c.dir, 'raw', first, 'attempt-2'))).toBe(true);
    expect(exists(join(c.dir, 'raw', first, 'attempt-1'))).toBe(false);
    expect(c.store.manifest(first)).toMatchObject({ attempt: 2 });
  });

  it('takes over a lock written in an earlier boot even when its pid is alive now (pids are reused after a reboot)', async () => {
    const c = campaign();
    const { readFileSync: read, writeFileSync: write } = await import('node:fs');
    const boot = read('/proc/sys/kernel/random/boot_id', 'utf8').trim();
    // pid 1 is always alive; in this boot the lock holds.
    write(join(c.dir, 'runner.lock'), `1 ${boot}`);
    await expect(executeCampaign(c, new DoubleTestbed(), { log: silent })).rejects.toThrow(/already being run by pid 1/);
    // Written before a reboot: stale, whatever process has pid 1 now.
    write(join(c.dir, 'runner.lock'), '1 00000000-0000-0000-0000-000000000000');
    expect((await executeCampaign(c, new DoubleTestbed(), { log: silent })).outcome).toBe('complete');
  });

  it('a failure carrying a known secret (the mysql password) is stored and logged without it', async () => {
    const secret = `hunter2-${Date.now()}`;
    getWorkload('mysql').resolveParams('small', { password: secret }); // registers it, as planning a mysql step does
    const c = campaign();
    const log = campaignLogger(c.dir);
    await executeCampaign(c, new DoubleTestbed({ errors: { 'a|ksm': () => new Error(`sysbench --mysql-password=${secret} exited 1`) } }), { retryDelayMs: 1, log });
    log.flush();
    const steps = c.journal.steps();
    const failed = steps.find((s) => s.configId === 'a' && s.kernelMode === 'ksm')!;
    expect(failed.state).toBe('failed');
    expect(failed.failureMessage).toContain('--mysql-password=***');
    const stored = c.store.db.prepare('SELECT failure_message AS m FROM steps UNION ALL SELECT message FROM attempts').all() as { m: string | null }[];
    expect(stored.some((r) => r.m?.includes('***'))).toBe(true);
    expect(stored.filter((r) => r.m?.includes(secret))).toEqual([]);
    const logText = readFileSync(join(c.dir, LOG_FILE), 'utf8');
    expect(logText).toContain('--mysql-password=***');
    expect(logText).not.toContain(secret);
  });
});
