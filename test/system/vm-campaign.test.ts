/**
 * The paper's pipeline on this machine, through the CLI as a user runs it: `nuksm testbed init`
 * writes the testbed file for libvirt TCG guests here, `nuksm run experiments/this-host/vms.yaml`
 * boots two guests from the guest image per step (KSM off, then on), runs the real benchmarks'
 * small variants (XSBench, RandomAccess) inside them over SSH while the host's KSM merges their
 * memory, and exports 3a/3b. In the first KSM step the test kills `nuksm run` with SIGKILL while
 * both guests run; `nuksm resume` must remove the killed attempt's domains, overlays and QEMU
 * processes before anything else runs, re-run that step as its only valid attempt and finish.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parse } from 'csv-parse/sync';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { ResultsStore } from '../../src/results/store.ts';
import { readLedger } from '../../src/testbeds/step/ledger.ts';
import { buildGuestImage } from '../../src/testbeds/images/guest.ts';
import { ensureLibvirtd, type StartedDaemons } from '../libvirt/daemons.ts';
import { artifactDir } from '../support/artifact.ts';
import { describeWith } from '../support/components.ts';
import { testLog } from '../support/log.ts';
import { spawnNuksm } from '../support/nuksm-child.ts';

const ROOT = resolve(import.meta.dirname, '../..');
const say = testLog('vm-campaign');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const virsh = (...args: string[]) => execFileSync('virsh', ['-q', '-c', 'qemu:///system', ...args], { encoding: 'utf8', timeout: 60_000 });
const domains = () => virsh('list', '--all', '--name').split('\n').map((l) => l.trim()).filter(Boolean);

const nuksm = spawnNuksm;

describeWith(['libvirtd', 'qemu', 'root', 'ksm', 'debootstrap', 'artifact'], 'a VM campaign on this host: real benchmarks in libvirt guests, killed and resumed', () => {
  const work = mkdtempSync(join(tmpdir(), 'nuksm-vm-campaign-'));
  const resultsDir = join(work, 'results');
  const id = `vm-e2e-${process.pid}`;
  const testbedFile = join(work, 'this-host-vms.yaml');
  let daemons: StartedDaemons | null = null;

  beforeAll(async () => {
    daemons = await ensureLibvirtd();
    const t0 = Date.now();
    // Shared with guest-image.test.ts: built once, reused from the cache after.
    const image = await buildGuestImage({ artifactDir: artifactDir(), log: (l) => say(l) });
    say(`guest image ${image.dir} ready in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
    execFileSync(process.execPath, [join(ROOT, 'bin', 'nuksm.js'), 'testbed', 'init', '--out', testbedFile, '--guest-image-dir', image.dir], { cwd: ROOT, stdio: 'inherit', timeout: 120_000 });
  }, 1_800_000);

  afterAll(async () => {
    // Whatever the outcome, no guest of this campaign survives the test.
    for (const d of domains().filter((n) => n.startsWith('nuksm-'))) {
      const raw = join(resultsDir, id, 'raw');
      // grep exits 1 when the domain is not this campaign's: only ours are removed, and that is no error.
      const ours = existsSync(raw) && spawnSync('grep', ['-rlqF', d, raw]).status === 0;
      if (ours) {
        // destroy fails for a domain that is already off; undefine must run anyway.
        spawnSync('virsh', ['-c', 'qemu:///system', 'destroy', d], { stdio: 'ignore' });
        spawnSync('virsh', ['-c', 'qemu:///system', 'undefine', d], { stdio: 'ignore' });
      }
    }
    rmSync(work, { recursive: true, force: true });
    await daemons?.stop();
  });

  it('runs KSM off and on with two guests, survives kill -9 mid-step, and leaves nothing behind', async () => {
    const spec = join(ROOT, 'experiments', 'this-host', 'vms.yaml');
    const t0 = Date.now();
    const run = nuksm(['run', spec, '--testbed', testbedFile, '--campaign-id', id, '--results-dir', resultsDir], (l) => say(`run: ${l}`));
    const dir = join(resultsDir, id);
    const killedStep = '0002-this-host-vms-xsbench-ksm-i1';
    const attemptDir = join(dir, 'raw', killedStep, 'attempt-1');
    // Kill once both guests of the first KSM step are up and their benchmarks are being prepared or run.
    let killedDomains: string[] = [];
    for (;;) {
      if (run.child.exitCode !== null) throw new Error(`nuksm run ended before the KSM step: ${run.err().slice(-2000)}`);
      if (Date.now() - t0 > 40 * 60_000) throw new Error('the KSM step never started its guests');
      const ledger = readLedger(attemptDir);
      const named = ledger.flatMap((e) => (e.kind === 'domain' ? [e.name] : []));
      const running = domains();
      if (named.length === 2 && named.every((d) => running.includes(d))) {
        const log = readFileSync(join(dir, 'campaign.log.jsonl'), 'utf8').split('\n').filter((l) => l.includes(`"step":"${killedStep}"`));
        if (log.filter((l) => l.includes('guest SSH login works')).length === 2) {
          killedDomains = named;
          break;
        }
      }
      await sleep(1_000);
    }
    say(`kill -9 nuksm run (pid ${run.child.pid}) during ${killedStep}; guests ${killedDomains.join(', ')} are running`);
    run.child.kill('SIGKILL');
    expect((await run.exited).signal).toBe('SIGKILL');
    // The kill left them: nothing but the resume may clean up.
    expect(domains()).toEqual(expect.arrayContaining(killedDomains));
    const overlays = readLedger(attemptDir).flatMap((e) => (e.kind === 'file' && e.path.endsWith('.qcow2') ? [e.path] : []));
    expect(overlays).toHaveLength(2);
    for (const o of overlays) expect(existsSync(o)).toBe(true);

    const resume = nuksm(['resume', id, '--results-dir', resultsDir, '--json'], (l) => say(`resume: ${l}`));
    const { code } = await resume.exited;
    say(`campaign done ${((Date.now() - t0) / 1000).toFixed(0)} s after the first start`);
    expect(code, resume.err().slice(-3000)).toBe(0);

    // The killed attempt's guests, overlays and QEMU processes are gone; its ledger is closed.
    const left = domains();
    for (const d of killedDomains) expect(left).not.toContain(d);
    for (const o of overlays) expect(existsSync(o)).toBe(false);
    const qemus = execFileSync('sh', ['-c', 'pgrep -af qemu-system || true'], { encoding: 'utf8' });
    for (const d of killedDomains) expect(qemus).not.toContain(d);
    expect(readLedger(attemptDir).at(-1)).toEqual({ kind: 'closed' });
    // No guest of this campaign at all is left.
    const tags = new Set<string>();
    const store = new ResultsStore(dir);
    try {
      const db = (store as unknown as { db: { prepare(sql: string): { all(...a: unknown[]): unknown[] } } }).db;
      const steps = db.prepare('SELECT step_id, state, attempts, valid_attempt FROM steps ORDER BY seq').all() as { step_id: string; state: string; attempts: number; valid_attempt: string }[];
      const attempts = db.prepare('SELECT step_id, attempt_id, number, outcome FROM attempts ORDER BY started_at').all() as { step_id: string; attempt_id: string; number: number; outcome: string | null }[];
      say(`steps: ${JSON.stringify(steps.map((s) => [s.step_id, s.state, s.attempts]))}`);
      expect(steps.map((s) => s.state)).toEqual(['done', 'done', 'done', 'done']);
      expect(attempts.filter((a) => a.outcome === 'interrupted').map((a) => a.step_id)).toEqual([killedStep]);
      const rerun = attempts.filter((a) => a.step_id === killedStep).at(-1)!;
      expect(rerun).toMatchObject({ outcome: 'done', number: 2, attempt_id: steps.find((s) => s.step_id === killedStep)!.valid_attempt });
      for (const s of steps) {
        for (const e of readLedger(join(dir, 'raw', s.step_id, `attempt-${attempts.filter((a) => a.step_id === s.step_id).at(-1)!.number}`))) {
          if (e.kind === 'domain') tags.add(e.name);
        }
      }
      for (const d of tags) expect(left).not.toContain(d);

      const rows = store.rows();
      // Each real benchmark ran in both guests of every step, once (the killed attempt's samples are not there).
      for (const s of steps) {
        for (const inst of ['vm0', 'vm1']) {
          const runtime = rows.filter((r) => r.step === s.step_id && r.instance === inst && r.metric === 'runtime_s');
          expect(runtime, `${s.step_id} ${inst}`).toHaveLength(1);
          expect(runtime[0]!.value).toBeGreaterThan(0);
          expect(runtime[0]!.workload).toBe(s.step_id.includes('xsbench') ? 'xsbench' : 'randomaccess');
        }
      }
      for (const r of rows.filter((x) => x.workload === 'xsbench' && x.metric === 'verification_passed')) expect(r.value).toBe(1);
      expect(rows.filter((x) => x.workload === 'xsbench' && x.metric === 'verification_passed')).toHaveLength(4);
      for (const s of steps.filter((x) => x.step_id.includes('-ksm-i'))) {
        const sharing = rows.find((r) => r.step === s.step_id && r.metric === 'ksm_pages_sharing' && r.t === null);
        expect(sharing?.value, `${s.step_id} pages_sharing`).toBeGreaterThan(0);
        for (const inst of ['vm0', 'vm1']) {
          // Guest memory per node (QEMU's numa_maps) and the guest's KSM pages per node.
          expect(rows.find((r) => r.step === s.step_id && r.instance === inst && r.metric === 'instance_mem_on_node_mib' && r.t === null && r.node === 0)?.value).toBeGreaterThan(64);
          expect(rows.find((r) => r.step === s.step_id && r.instance === inst && r.metric === 'ksm_pages_on_node' && r.t === null && r.node === 0)?.value).toBeGreaterThan(0);
        }
      }
    } finally {
      store.close();
    }

    const out = JSON.parse(resume.out()) as { figures: { name: string; path: string; rows: number }[] };
    const csv = (name: string) => parse(readFileSync(out.figures.find((f) => f.name === name)!.path, 'utf8'), { columns: true }) as Record<string, string>[];
    const a = csv('3a');
    expect(new Set(a.map((r) => `${r.benchmark}/${r.kernel_mode}/${r.instance}`))).toEqual(
      new Set(['xsbench', 'randomaccess'].flatMap((b) => ['ksm-off', 'ksm'].flatMap((m) => ['vm0', 'vm1'].map((i) => `${b}/${m}/${i}`)))),
    );
    for (const r of a) expect(Number(r.normalized_runtime)).toBeGreaterThan(0);
    const b = csv('3b');
    expect(b.filter((r) => r.kernel_mode === 'ksm' && r.ksm_local_pct !== '').length).toBe(4);
  }, 3_600_000);
});
