/** The `nuksm` CLI in process: help everywhere, JSON output, exit codes, run → status → export → resume, start. */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { EXIT } from '../../src/cli/exit-codes.ts';
import { main } from '../../src/cli/main.ts';

const ROOT = join(import.meta.dirname, '..', '..');
const SPEC = join(ROOT, 'test', 'campaign', 'fixtures', 'small.yaml');
const MODEL = join(ROOT, 'experiments', 'testbeds', 'model.yaml');
const tmp = mkdtempSync(join(tmpdir(), 'nuksm-cli-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

let out = '';
let err = '';
beforeEach(() => {
  out = '';
  err = '';
  vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => ((out += String(chunk)), true));
  vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => ((err += String(chunk)), true));
  // yargs prints help through console.log
  vi.spyOn(console, 'log').mockImplementation((...a: unknown[]) => void (out += `${a.join(' ')}\n`));
  vi.spyOn(console, 'error').mockImplementation((...a: unknown[]) => void (err += `${a.join(' ')}\n`));
});
afterEach(() => {
  vi.restoreAllMocks();
  process.exitCode = undefined;
});

describe('nuksm CLI', () => {
  for (const cmd of ['plan', 'run', 'resume', 'status', 'export', 'doctor', 'start']) {
    it(`${cmd} --help`, async () => {
      expect(await main([cmd, '--help'])).toBe(EXIT.ok);
      expect(out).toContain(`nuksm ${cmd}`);
      expect(out).toContain('--help');
    });
  }

  it('no command or an unknown option is a usage error (exit 2)', async () => {
    expect(await main([])).toBe(EXIT.config);
    expect(await main(['plan', 'paper', '--testbed', MODEL, '--bogus'])).toBe(EXIT.config);
    expect(err).toMatch(/bogus/);
  });

  it('run --json, status --json, export --samples, resume of a finished campaign', async () => {
    const resultsDir = join(tmp, 'r1');
    expect(await main(['run', SPEC, '--testbed', MODEL, '--iterations', '1', '--campaign-id', 'cli', '--results-dir', resultsDir, '--json'])).toBe(EXIT.ok);
    const run = JSON.parse(out);
    expect(run).toMatchObject({ campaign: 'cli', outcome: 'complete', done: 6, failed: 0 });
    expect(run.figures.map((f: { name: string }) => f.name)).toEqual(['3a', '3b', '6a', '6b', 'table2']);
    expect(existsSync(join(resultsDir, 'cli', 'campaign.log.jsonl'))).toBe(true);
    expect(readFileSync(join(resultsDir, 'cli', 'campaign.log.jsonl'), 'utf8')).toMatch(/"msg":"step done"/);

    out = '';
    expect(await main(['status', '--results-dir', resultsDir, '--json'])).toBe(EXIT.ok);
    const status = JSON.parse(out);
    expect(status.counts).toEqual({ pending: 0, running: 0, done: 6, failed: 0, 'not-needed': 0 });
    expect(status.steps[0]).toMatchObject({ state: 'done', attempts: 1 });

    out = '';
    expect(await main(['export', 'cli', '--results-dir', resultsDir, '--samples', '--out', join(tmp, 'exp')])).toBe(EXIT.ok);
    const samples = readFileSync(join(tmp, 'exp', 'samples.csv'), 'utf8').split('\n');
    expect(samples[0]).toBe('campaign,step,experiment,iteration,kernelMode,kernel,implementation,testbed,config,instance,workload,metric,value,unit,t,node');
    expect(samples.length).toBeGreaterThan(100);
    expect(readFileSync(join(tmp, 'exp', 'table2.csv'), 'utf8').split('\n')[0]).toBe('benchmark,fairness_ksm,fairness_ksm_ci95,fairness_nuksm,fairness_nuksm_ci95,perf_nuksm_over_ksm,saved_gib_ksm,saved_gib_ksm_ci95,saved_gib_nuksm,saved_gib_nuksm_ci95,testbed,implementation_ksm,implementation_nuksm,fairness_ksm_node_local,saved_gib_ksm_node_local,fairness_ksm_numa_balancing,saved_gib_ksm_numa_balancing');

    out = '';
    expect(await main(['resume', 'cli', '--results-dir', resultsDir])).toBe(EXIT.ok);
    expect(out).toMatch(/6 done, 0 failed, 0 pending of 6/);

    // The same id again would mix two runs: refused.
    expect(await main(['run', SPEC, '--testbed', MODEL, '--campaign-id', 'cli', '--results-dir', resultsDir])).toBe(EXIT.config);
    expect(err).toMatch(/already exists/);
  }, 120_000);

  it('run --max-steps stops with exit 4 and resume finishes', async () => {
    const resultsDir = join(tmp, 'r2');
    expect(await main(['run', SPEC, '--testbed', MODEL, '--iterations', '1', '--campaign-id', 'part', '--results-dir', resultsDir, '--max-steps', '2'])).toBe(EXIT.stopped);
    expect(out).toMatch(/nuksm resume part/);
    expect(await main(['resume', '--results-dir', resultsDir, '--json'])).toBe(EXIT.ok);
    expect(out).toMatch(/"done": 6/);
  }, 120_000);

  it('doctor validates the testbed file and loads its driver', async () => {
    expect(await main(['doctor', '--testbed', MODEL, '--results-dir', tmp, '--json'])).toBe(EXIT.ok);
    const findings = JSON.parse(out) as { check: string; status: string }[];
    expect(findings.find((f) => f.check === 'testbed driver')).toMatchObject({ status: 'ok' });
    expect(await main(['doctor', '--testbed', join(tmp, 'missing.yaml')])).toBe(EXIT.config);
  });

  it('doctor on the emulated testbed checks what building and running the machine needs', async () => {
    const code = await main(['doctor', '--testbed', join(ROOT, 'experiments', 'testbeds', 'emulated.yaml'), '--results-dir', tmp, '--json']);
    const findings = JSON.parse(out) as { check: string; status: string; detail: string }[];
    expect(findings.map((f) => f.check)).toEqual(expect.arrayContaining(['root', 'qemu-system-x86_64', 'qemu-img', 'debootstrap', 'gcc', 'image cache', 'ssh port']));
    // A missing tool is a failure with the package that provides it, and the exit code says so.
    for (const f of findings.filter((x) => x.status === 'fail')) expect(f.detail).toMatch(/fix: (apt-get install \S+|run nuksm as root)/);
    expect(code).toBe(findings.some((f) => f.status === 'fail') ? EXIT.doctorFailed : EXIT.ok);
  });

  it('start prints Table II and Table III and where the CSVs are', async () => {
    const resultsDir = join(tmp, 'r3');
    expect(await main(['start', '--spec', SPEC, '--results-dir', resultsDir])).toBe(EXIT.ok);
    expect(out).toMatch(/Table II/);
    expect(out).toMatch(/benchmark\s+fairness_ksm\s+fairness_nuksm\s+perf_nuksm_over_ksm\s+saved_gib_ksm\s+saved_gib_nuksm/);
    expect(out).toMatch(/Table III/);
    expect(out).toMatch(/C-10:1/);
    expect(out).toMatch(/table2\s+\S+table2\.csv/);
  }, 180_000);
  it('refuses campaign ids that are paths, empty, or carry whitespace or shell metacharacters (exit 2, nothing written)', async () => {
    const root = join(tmp, 'ids');
    for (const id of ['../x', '', 'a/b', '..', 'a b', '$(id)', 'x;rm', 'x"y', '.hidden']) {
      err = '';
      expect(await main(['run', SPEC, '--testbed', MODEL, '--campaign-id', id, '--results-dir', root])).toBe(EXIT.config);
      expect(err).toContain('--campaign-id');
      expect(existsSync(root)).toBe(false);
      expect(existsSync(join(tmp, 'x'))).toBe(false);
    }
    for (const cmd of ['resume', 'status', 'export', 'boot-resume show']) {
      err = '';
      expect(await main([...cmd.split(' '), '../x', '--results-dir', root])).toBe(EXIT.config);
      expect(err).toMatch(/campaign-id: campaign id "\.\.\/x" is not allowed/);
    }
  });
});
