/**
 * The emulated testbed end to end, through the CLI as a user runs it: one command
 * (`nuksm run experiments/emulated/emulated.yaml --testbed <file>`) builds or reuses the image,
 * boots the two-node machine and runs the campaign inside it unattended. The campaign needs both
 * Debian kernels, so the guest reboots into each and its boot-resume hooks (systemd unit + @reboot
 * cron entry, the campaign has a scalability flow) continue it. Mid-step, this test kills QEMU
 * (power loss); the launcher starts the machine again and the campaign resumes. Then, from the
 * copied-back store: every step done exactly once, the killed step re-run under a new attempt, the
 * central observation (>= 95 % of merged pages on one node) on both kernels in 3b.csv, the Fig. 8
 * series in 8a/8b/8c, and the hooks removed.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parse } from 'csv-parse/sync';
import { stringify } from 'yaml';
import { afterAll, expect, it } from 'vitest';
import { loadTestbedFile } from '../../src/campaign/testbed-file.ts';
import { ResultsStore } from '../../src/results/store.ts';
import { PAPER_WORKLOAD_NAMES } from '../../src/workloads/types.ts';
import { describeWith } from '../support/components.ts';

const ROOT = resolve(import.meta.dirname, '../..');
const say = (l: string) => process.stderr.write(`[emulated-campaign] ${l}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describeWith(['qemu', 'debootstrap', 'root', 'gcc'], 'emulated testbed: a whole campaign inside the machine', () => {
  const work = mkdtempSync(join(tmpdir(), 'nuksm-emulated-campaign-'));
  const name = `emulated-test-${process.pid}`;
  const id = `emulated-e2e-${process.pid}`;
  const cacheDir = join(ROOT, '.cache', 'emulated');
  const stateDir = join(cacheDir, 'machines', name);
  const resultsDir = join(work, 'results');

  afterAll(() => {
    // The machine is powered off by the launcher; its overlay is this test's only.
    rmSync(stateDir, { recursive: true, force: true });
  });

  it('builds, runs both kernels with reboots, survives a power loss mid-step, loses and duplicates nothing', async () => {
    // The shipped testbed file, on a port and machine state of this test's own.
    const shipped = loadTestbedFile(join(ROOT, 'experiments', 'testbeds', 'emulated.yaml'));
    const testbedFile = join(work, 'emulated.yaml');
    const { file: _f, modes, ...rest } = shipped;
    writeFileSync(
      testbedFile,
      stringify({
        ...rest,
        name,
        modes: Object.fromEntries(Object.entries(modes).map(([m, s]) => [m, { kernel: s!.kernels, ksmKnobs: s!.ksmKnobs }])),
        emulated: { ...shipped.emulated!, imageCacheDir: cacheDir, sshPort: 23000 + (process.pid % 5000), memoryMiBPerNode: 1024 },
        nodes: shipped.nodes.map((n) => ({ ...n, memoryGiB: 1 })),
      }),
    );
    expect(shipped.modes.ksm!.kernels.length, 'stock KSM runs on both kernels').toBe(2);

    const t0 = Date.now();
    const child = spawn(process.execPath, [join(ROOT, 'bin', 'nuksm.js'), 'run', join(ROOT, 'experiments', 'emulated', 'emulated.yaml'), '--testbed', testbedFile, '--campaign-id', id, '--results-dir', resultsDir, '--json'], {
      cwd: ROOT,
      env: { ...process.env, CI: process.env.CI ?? '' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    child.stderr.on('data', (b: Buffer) => {
      stderr += b.toString();
      for (const line of b.toString().split('\n').filter(Boolean)) say(line);
    });
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));

    // Power loss in the middle of a step: the third (stock KSM on 6.1, after a kernel switch) lasts
    // well over 20 s (merge wait over at least two full scans), and the launcher reports it within
    // one poll (5 s) of its start.
    for (;;) {
      if (/running 0003-\S+/.test(stderr)) break;
      if (child.exitCode !== null) break;
      if (Date.now() - t0 > 60 * 60_000) throw new Error('the third step never started');
      await sleep(1_000);
    }
    await sleep(8_000);
    const killedStep = [...stderr.matchAll(/; running (\S+)/g)].at(-1)?.[1] ?? null;
    expect(killedStep, `launcher output:\n${stderr}`).toMatch(/^0003-/);
    const pid = Number(readFileSync(join(stateDir, 'qemu.pid'), 'utf8').trim());
    say(`pulling the plug: kill -9 QEMU ${pid} during ${killedStep}`);
    process.kill(pid, 'SIGKILL');

    const code = await exited;
    say(`nuksm run exited ${code} after ${((Date.now() - t0) / 1000).toFixed(0)} s`);
    expect(code, stderr.slice(-3000)).toBe(0);
    expect(stderr).toMatch(/QEMU exited \(power loss\): starting the machine again/);
    // Recovered the normal way (the boot hook's resume), not by the host's last-resort reboot of a
    // machine without a runner (which once covered for a stale runner lock).
    expect(stderr).not.toMatch(/no runner inside the machine/);
    const out = JSON.parse(stdout) as { done: number; failed: number; total: number; figures: { name: string; path: string; rows: number }[] };
    expect(out.failed).toBe(0);
    expect(out.done).toBe(out.total);

    const dir = join(resultsDir, id);
    const store = new ResultsStore(dir);
    try {
      const db = (store as unknown as { db: { prepare(sql: string): { all(...a: unknown[]): unknown[] } } }).db;
      const steps = db.prepare('SELECT step_id, kernel, state, attempts, valid_attempt FROM steps ORDER BY seq').all() as { step_id: string; kernel: string; state: string; attempts: number; valid_attempt: string }[];
      say(`steps: ${JSON.stringify(steps)}`);
      expect(steps.every((s) => s.state === 'done')).toBe(true);
      expect(new Set(steps.map((s) => s.kernel))).toEqual(new Set(['bookworm', 'backports']));
      // The killed step, and only it, has an interrupted attempt (kept, never valid); a later attempt is valid.
      const attempts = db.prepare('SELECT step_id, attempt_id, outcome FROM attempts ORDER BY started_at').all() as { step_id: string; attempt_id: string; outcome: string | null }[];
      say(`attempts: ${JSON.stringify(attempts.map((a) => [a.step_id.slice(0, 4), a.outcome]))}`);
      expect(attempts.filter((a) => a.outcome === 'interrupted').map((a) => a.step_id)).toEqual([killedStep]);
      const killed = steps.find((s) => s.step_id === killedStep)!;
      expect(killed.attempts).toBe(2);
      expect(attempts.filter((a) => a.step_id === killedStep).at(-1)).toMatchObject({ attempt_id: killed.valid_attempt, outcome: 'done' });
      // Nothing duplicated: one runtime per instance and step; one point per series, instance and time.
      const rows = store.rows();
      // Only the native stand-ins ran in the machine: no row (and no figure label) names a paper benchmark.
      expect(rows.filter((r) => (PAPER_WORKLOAD_NAMES as readonly string[]).includes(r.workload))).toEqual([]);
      expect(new Set(rows.filter((r) => r.metric === 'runtime_s').map((r) => r.workload))).toEqual(new Set(['randomaccess-native', 'xsbench-native']));
      for (const s of steps) {
        for (const inst of ['p0', 'p1']) expect(rows.filter((r) => r.step === s.step_id && r.instance === inst && r.metric === 'runtime_s').length, `${s.step_id} ${inst}`).toBe(1);
      }
      const points = rows.filter((r) => r.t !== null);
      expect(new Set(points.map((r) => `${r.step}|${r.instance}|${r.metric}|${r.node}|${r.t}`)).size).toBe(points.length);
      // …and one value per once-per-run metric, instance and node.
      const finals = rows.filter((r) => r.t === null).map((r) => `${r.step}|${r.instance}|${r.metric}|${r.node}`);
      expect(finals.filter((k, i) => finals.indexOf(k) !== i)).toEqual([]);
      // Placement is sampled over time, not only read out at the end: KSM pages per node of each
      // instance in the stock-KSM central steps, the last point agreeing with the final read-out.
      for (const s of steps.filter((x) => x.step_id.includes('central-randomaccess-native-ksm-i1'))) {
        for (const inst of ['p0', 'p1']) {
          const series = rows.filter((r) => r.step === s.step_id && r.instance === inst && r.metric === 'ksm_pages_on_node' && r.t !== null);
          const times = new Set(series.map((r) => r.t));
          say(`${s.step_id} ${inst}: ksm_pages_on_node sampled at ${times.size} times`);
          expect(times.size, `${s.step_id} ${inst}`).toBeGreaterThanOrEqual(2);
          expect(rows.some((r) => r.step === s.step_id && r.instance === inst && r.metric === 'instance_mem_on_node_mib' && r.t !== null)).toBe(true);
        }
      }
      // Each step's raw directory has the serial console it ran under and the guest's kernel log.
      for (const s of steps) {
        const raw = join(dir, 'raw', s.step_id, `attempt-${s.attempts}`);
        expect(readFileSync(join(raw, 'console.log'), 'utf8'), s.step_id).toMatch(/Linux version/);
        expect(readFileSync(join(raw, 'dmesg.log'), 'utf8'), s.step_id).toMatch(/Linux version/);
      }
      // Both kernels really ran: releases and boot ids from the step manifests.
      const envs = steps.map((s) => (store.manifest(s.step_id) as { environment: { kernelRelease: string; bootId: string } }).environment);
      say(`kernels per step: ${envs.map((e) => `${e.kernelRelease}/${e.bootId.slice(0, 8)}`).join(' ')}`);
      expect(new Set(envs.map((e) => e.kernelRelease)).size).toBe(2);
      expect(new Set(envs.map((e) => e.bootId)).size).toBeGreaterThanOrEqual(3); // two kernels + the boot after the power loss
    } finally {
      store.close();
    }

    // The central observation on both kernels, as exported.
    const csv = (n: string) => parse(readFileSync(join(dir, 'figures', `${n}.csv`), 'utf8'), { columns: true }) as Record<string, string>[];
    const b3 = csv('3b').filter((r) => r.kernel_mode === 'ksm');
    say(`3b.csv (ksm rows): ${JSON.stringify(b3)}`);
    for (const kernel of ['bookworm', 'backports']) {
      const local = b3.filter((r) => r.kernel === kernel).map((r) => Number(r.ksm_local_pct));
      expect(local.length, kernel).toBe(2);
      // One instance has (almost) all merged pages local, the other (almost) none: >= 95 % on one node.
      expect(Math.max(...local), kernel).toBeGreaterThanOrEqual(95);
      expect(Math.min(...local), kernel).toBeLessThanOrEqual(5);
    }
    // The scalability flow's series on both kernels.
    for (const [fig, metrics] of [['8a', ['mem_free_gib', 'hog_registered_gib']], ['8b', ['memory_saved_gib']], ['8c', ['ksmd_cpu_pct']]] as const) {
      const rows = csv(fig);
      for (const kernel of ['bookworm', 'backports']) {
        for (const metric of metrics) expect(rows.filter((r) => r.kernel === kernel && r.metric === metric).length, `${fig} ${kernel} ${metric}`).toBeGreaterThanOrEqual(5);
      }
    }
    expect(Math.max(...csv('8a').filter((r) => r.metric === 'hog_registered_gib').map((r) => Number(r.value)))).toBeCloseTo(32 / 1024, 6);

    // Resumed by the hooks after every boot, once per boot; removed at the end.
    const boots = readFileSync(join(dir, 'machine', 'boot-resume', 'boots.log'), 'utf8');
    say(`boots.log:\n${boots}`);
    const resumed = boots.split('\n').filter((l) => l.includes('resuming'));
    expect(resumed.length).toBeGreaterThanOrEqual(3); // two kernel switches + the power loss
    expect(new Set(resumed.map((l) => /boot=(\S+)/.exec(l)![1])).size).toBe(resumed.length);
    expect(readFileSync(join(dir, 'machine', 'boot-resume', 'hooks-left.txt'), 'utf8').trim()).toBe('');
    // The scalability flow ran on boots whose campaign run was started by a boot hook (@reboot cron
    // or the systemd unit), i.e. it started by itself after a reboot, on each kernel.
    const hookBoots = new Set(resumed.map((l) => /boot=(\S+)/.exec(l)![1]));
    const reopened = new ResultsStore(dir);
    try {
      const flows = reopened.rows().filter((r) => r.experiment === 'scalability-small' && r.metric === 'runtime_s');
      const flowSteps = [...new Set(flows.map((r) => r.step))];
      expect(flowSteps.length).toBe(2);
      for (const step of flowSteps) expect(hookBoots.has((reopened.manifest(step) as { environment: { bootId: string } }).environment.bootId), step).toBe(true);
    } finally {
      reopened.close();
    }
    expect(existsSync(join(dir, 'machine.json'))).toBe(true);
    say(`hooks that resumed: ${resumed.map((l) => /via=(\S+)/.exec(l)?.[1]).join(', ')}; total ${((Date.now() - t0) / 1000).toFixed(0)} s`);
  }, 90 * 60_000);
});
