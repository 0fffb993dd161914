/**
 * Fault injection on a physical step over real sshd (issue 10): a campaign of node-bound
 * `*-native` process pairs on this host, reached through OpenSSH on loopback, is killed with
 * SIGKILL 20 times at pseudo-random moments (seeded, so a failure can be replayed) and resumed
 * each time. At the end: the campaign is complete, every step's samples are stored exactly once,
 * no process of any attempt is left, no work directory remains, and KSM's knobs are as before.
 */
import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { stringify } from 'yaml';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { LocalExecutor } from '../../src/host/exec/index.ts';
import { KsmControl } from '../../src/host/ksm/index.ts';
import { ResultsStore } from '../../src/results/store.ts';
import { readHostNodes } from '../../src/testbeds/physical/topology.ts';
import { readLedger } from '../../src/testbeds/step/ledger.ts';
import { TestSshd, freePort } from '../host/sshd-harness.ts';
import { describeWith } from '../support/components.ts';
import { testLog } from '../support/log.ts';

const ROOT = resolve(import.meta.dirname, '../..');
const KILLS = 20;
const SEED = 20261201;
const say = testLog('fault-injection');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Processes whose environment carries a NUKSM_INSTANCE marker starting with `prefix`. */
function markedProcesses(prefix: string): string[] {
  const out: string[] = [];
  for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      const env = readFileSync(`/proc/${pid}/environ`, 'latin1').split('\0');
      const m = env.find((e) => e.startsWith(`NUKSM_INSTANCE=${prefix}`));
      if (m) out.push(`${pid} ${m}`);
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

describeWith(['sshd', 'root', 'ksm', 'numactl', 'gcc'], 'fault injection: 20 SIGKILLs of the runner on a physical step over real sshd', () => {
  const work = mkdtempSync(join(tmpdir(), 'nuksm-faults-'));
  const resultsDir = join(work, 'results');
  const id = `faults-${process.pid}`;
  // Step tags start with the campaign's hash (src/testbeds/step/engine.ts stepTagOf).
  const tagPrefix = `${createHash('sha256').update(id).digest('hex').slice(0, 6)}-`;
  let sshd: TestSshd;
  const ksm = new KsmControl(new LocalExecutor());
  let knobsBefore: Record<string, string> = {};

  beforeAll(async () => {
    sshd = new TestSshd(await freePort());
    await sshd.start();
    writeFileSync(join(work, 'known_hosts'), `${sshd.knownHostsLine()}\n`);
    const release = execFileSync('uname', ['-r'], { encoding: 'utf8' }).trim();
    writeFileSync(
      join(work, 'testbed.yaml'),
      stringify({
        name: 'loopback-ssh',
        kind: 'physical',
        host: { kind: 'ssh', host: '127.0.0.1', port: sshd.port, user: sshd.user, identityFile: sshd.clientKeyPath, knownHostsFile: join(work, 'known_hosts') },
        nodes: (await readHostNodes(new LocalExecutor())).map((n) => ({ ...n, memoryGiB: Math.max(1, n.memoryGiB) })),
        kernels: { running: { bootEntry: 'current', release } },
        modes: { 'ksm-off': { kernel: 'running' }, ksm: { kernel: 'running' } },
        timeouts: { bootS: 120, sshConnectS: 10, commandS: 60, vmStartS: 60, vmShutdownS: 30 },
      }),
    );
    writeFileSync(
      join(work, 'faults.yaml'),
      stringify({
        kind: 'experiment',
        name: 'faults',
        description: 'two node-bound native stand-ins, KSM off and on, killed and resumed',
        follows: 'artifact',
        figures: ['3a', '3b'],
        kernelModes: ['ksm-off', 'ksm'],
        iterations: 2,
        ksm: { pagesToScan: 2000, sleepMillisecs: 20 },
        instances: [0, 1].map((i) => ({ name: `p${i}`, kind: 'process', node: 0, vcpus: 1, memoryGiB: 0.0625 })),
        timeline: { staggerS: 1, mergeWait: { converged: { maxS: 30, windowS: 3, epsilonPct: 2 } }, timedPhases: 'concurrent', samplePeriodS: 1, maxDurationS: 180 },
        monitors: ['ksm', 'meminfo', 'ksmd-cpu', 'numa-placement'],
        configurations: ['randomaccess-native', 'btree-native'].map((w) => ({ id: w, workload: w, params: { footprintGiB: 0.015625, iterations: 2 }, estimatedTimedS: 5, estimatedPrepareS: 2 })),
      }),
    );
    knobsBefore = await ksm.readKnobs();
  }, 120_000);

  afterAll(async () => {
    await sshd?.stop();
    rmSync(work, { recursive: true, force: true });
  });

  it('completes with every step stored once and nothing left behind', async () => {
    let state = SEED;
    const rand = () => ((state = (state * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    const dir = join(resultsDir, id);
    const start = () => {
      const args = existsSync(join(dir, 'campaign.sqlite'))
        ? ['resume', id, '--results-dir', resultsDir]
        : ['run', join(work, 'faults.yaml'), '--testbed', join(work, 'testbed.yaml'), '--campaign-id', id, '--results-dir', resultsDir];
      const child = spawn(process.execPath, [join(ROOT, 'bin', 'nuksm.js'), ...args], { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'] });
      let err = '';
      child.stderr.on('data', (b: Buffer) => (err += b.toString()));
      const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => child.once('exit', (code, signal) => r({ code, signal })));
      return { child, exited, err: () => err, verb: args[0] };
    };
    const t0 = Date.now();
    let kills = 0;
    let finishedEarly = 0;
    while (kills < KILLS) {
      const run = start();
      const delayMs = 1500 + Math.floor(rand() * 7000);
      const outcome = await Promise.race([run.exited, sleep(delayMs).then(() => null)]);
      if (outcome !== null) {
        // The campaign ended before this kill: it is complete, so start no more runners.
        expect(outcome.code, run.err().slice(-2000)).toBe(0);
        finishedEarly++;
        break;
      }
      run.child.kill('SIGKILL');
      const { signal } = await run.exited;
      expect(signal).toBe('SIGKILL');
      kills++;
      say(`kill ${kills}/${KILLS} of '${run.verb}' after ${(delayMs / 1000).toFixed(1)} s`);
    }
    const last = start();
    const { code } = await last.exited;
    expect(code, last.err().slice(-3000)).toBe(0);
    say(`${kills} kills, campaign complete ${((Date.now() - t0) / 1000).toFixed(0)} s after the first start${finishedEarly ? ' (it finished before the last kill)' : ''}`);
    expect(kills).toBeGreaterThanOrEqual(15);

    // Nothing of any attempt is left on the host.
    expect(markedProcesses(tagPrefix)).toEqual([]);
    expect(existsSync('/var/tmp/nuksm') ? readdirSync('/var/tmp/nuksm').filter((d) => d.startsWith(tagPrefix)) : []).toEqual([]);
    expect(await ksm.readKnobs()).toEqual(knobsBefore);

    const store = new ResultsStore(dir);
    try {
      const db = (store as unknown as { db: { prepare(sql: string): { all(...a: unknown[]): unknown[] } } }).db;
      const steps = db.prepare('SELECT step_id, state FROM steps ORDER BY seq').all() as { step_id: string; state: string }[];
      const attempts = db.prepare('SELECT step_id, number, outcome FROM attempts').all() as { step_id: string; number: number; outcome: string | null }[];
      expect(steps).toHaveLength(8);
      expect(steps.every((s) => s.state === 'done'), JSON.stringify(steps)).toBe(true);
      const interrupted = attempts.filter((a) => a.outcome === 'interrupted');
      say(`attempts: ${attempts.length}, interrupted: ${interrupted.length}`);
      expect(interrupted.length).toBeGreaterThan(0);
      // Every interrupted attempt's ledger was reclaimed (closed), whatever moment the kill hit.
      for (const a of interrupted) {
        const ledger = readLedger(join(dir, 'raw', a.step_id, `attempt-${a.number}`));
        if (ledger.length > 0) expect(ledger.at(-1), `${a.step_id} attempt ${a.number}`).toEqual({ kind: 'closed' });
      }
      const rows = store.rows();
      for (const s of steps) {
        for (const inst of ['p0', 'p1']) {
          expect(rows.filter((r) => r.step === s.step_id && r.instance === inst && r.metric === 'runtime_s'), `${s.step_id} ${inst}`).toHaveLength(1);
        }
      }
      const finals = rows.filter((r) => r.t === null).map((r) => `${r.step}|${r.instance}|${r.metric}|${r.node}`);
      expect(finals.filter((k, i) => finals.indexOf(k) !== i)).toEqual([]);
      const points = rows.filter((r) => r.t !== null).map((r) => `${r.step}|${r.instance}|${r.metric}|${r.node}|${r.t}`);
      expect(new Set(points).size).toBe(points.length);
      for (const s of steps.filter((x) => x.step_id.includes('-ksm-i'))) {
        expect(rows.find((r) => r.step === s.step_id && r.metric === 'ksm_pages_sharing' && r.t === null)?.value, s.step_id).toBeGreaterThan(0);
      }
    } finally {
      store.close();
    }
  }, 1_200_000);
});
