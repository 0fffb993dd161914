/**
 * `nuksm trace record` on THIS host through the physical testbed (local executor): the KSM scenario driver
 * (src/host/ksm/scenario-driver) is built here, run as root against the host's ksmd, and the trace it writes
 * replays into the model with exact agreement (every counter and page state at every stop). The KSM knobs
 * and THP are as they were afterwards. A host where another process has mergeable memory is refused
 * before anything changes.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { EXIT } from '../../src/cli/exit-codes.ts';
import { main } from '../../src/cli/main.ts';
import { captureOutput } from '../support/captured-output.ts';
import { LocalExecutor } from '../../src/host/exec/index.ts';
import { KsmControl } from '../../src/host/ksm/index.ts';
import { buildScenarioDriver, prepareMachine, runScenario } from '../../src/host/ksm/scenario-driver/index.ts';
import { readTraceFile } from '../../src/policy/trace-file.ts';
import { readHostNodes } from '../../src/testbeds/physical/topology.ts';
import { describeWith } from '../support/components.ts';

const SCENARIO = join(import.meta.dirname, '..', '..', 'experiments', 'ksm-scenarios', 'one-node-writes.yaml');
const THP = '/sys/kernel/mm/transparent_hugepage/enabled';
// Bound before the tests mock process.stderr.write (the CLI's output is captured there).
const stderrWrite = process.stderr.write.bind(process.stderr);
const say = (l: string) => stderrWrite(`[physical-trace-record] ${l}\n`);

describeWith(['root', 'ksm', 'gcc'], 'trace record on this host (physical testbed)', () => {
  const work = mkdtempSync(join(tmpdir(), 'nuksm-trace-record-'));
  const testbed = join(work, 'this-host.yaml');
  const ksm = new KsmControl(new LocalExecutor());
  const io = captureOutput();

  beforeAll(async () => {
    const release = execFileSync('uname', ['-r'], { encoding: 'utf8' }).trim();
    const nodes = await readHostNodes(new LocalExecutor());
    writeFileSync(testbed, stringify({ name: 'this-host', kind: 'physical', host: { kind: 'local' }, nodes, kernels: { running: { bootEntry: 'current', release } } }));
  });
  afterAll(() => rmSync(work, { recursive: true, force: true }));

  it('records the scenario on the running kernel and the model replays it exactly; the knobs are put back', async () => {
    const knobsBefore = await ksm.readKnobs();
    const thpBefore = readFileSync(THP, 'utf8');
    const file = join(work, 'host.jsonl');
    const t0 = Date.now();
    const code = await main(['trace', 'record', SCENARIO, '--testbed', testbed, '--kernel', 'running', '--out', file]);
    const recordS = (Date.now() - t0) / 1000;
    expect(code, io.err).toBe(EXIT.ok);
    const t = readTraceFile(file);
    expect(t.header.producer).toBe('kernel');
    expect(t.header.release).toBe(execFileSync('uname', ['-r'], { encoding: 'utf8' }).trim());
    const snaps = t.records.filter((r) => r.t === 'snap');
    expect(snaps).toHaveLength(t.header.scenario.endPass + 2); // pass 0..5 and batch 3
    const last = snaps.at(-1)!;
    // Something really merged on the kernel (not an empty recording that trivially agrees).
    expect(last.t === 'snap' && last.c.pages_sharing! > 0 && last.procs!.some((p) => p.ksm.includes(1))).toBe(true);
    const t1 = Date.now();
    const replay = await main(['trace', 'replay', file]);
    say(`recorded in ${recordS.toFixed(1)} s (${t.header.release}, ${snaps.length} stops), replayed in ${((Date.now() - t1) / 1000).toFixed(1)} s:\n${io.out}`);
    expect(replay, io.out).toBe(EXIT.ok);
    expect(io.out).toMatch(/recorded on a kernel/);
    expect(io.out).toMatch(/verdict: exact agreement/);
    expect(await ksm.readKnobs()).toEqual(knobsBefore);
    expect(readFileSync(THP, 'utf8')).toBe(thpBefore);
  }, 120_000);

  it('a driver that fails mid-run still leaves the knobs and THP as they were', async () => {
    const exec = new LocalExecutor();
    const knobsBefore = await ksm.readKnobs();
    const thpBefore = readFileSync(THP, 'utf8');
    const dir = join(work, 'driver');
    const layout = await prepareMachine(exec, await buildScenarioDriver(dir), dir, { tracepoints: false });
    // The driver writes pages_to_scan first, then fails binding instance 1 to a node the host lacks.
    const pagesToScan = Number(knobsBefore.pages_to_scan) === 3 ? 5 : 3;
    const bad = { name: 'bad-node', family: 0, knobs: { pages_to_scan: pagesToScan, merge_across_nodes: 1 as const, max_page_sharing: 256, smart_scan: 0 as const }, procs: [{ node: 0, contents: [1, 2] }, { node: 63, contents: [1, 2] }], initial: [0, 1], events: [], endPass: 1 };
    await expect(runScenario(exec, layout, dir, bad)).rejects.toThrow(/ksm-scenario bad-node on local exited 2/);
    expect(await ksm.readKnobs()).toEqual(knobsBefore);
    expect(readFileSync(THP, 'utf8')).toBe(thpBefore);
  }, 60_000);

  it('refuses while another process has mergeable memory, changing nothing', async () => {
    const src = join(work, 'mergeable.c');
    writeFileSync(src, '#include <stdio.h>\n#include <sys/mman.h>\n#include <unistd.h>\nint main(void){char*m=mmap(0,1<<20,PROT_READ|PROT_WRITE,MAP_PRIVATE|MAP_ANONYMOUS,-1,0);if(m==MAP_FAILED||madvise(m,1<<20,MADV_MERGEABLE))return 1;puts("ok");fflush(stdout);sleep(60);return 0;}\n');
    execFileSync('gcc', ['-O2', '-o', join(work, 'mergeable'), src]);
    let child: ChildProcess | null = null;
    try {
      child = spawn(join(work, 'mergeable'), [], { stdio: ['ignore', 'pipe', 'inherit'] });
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('mergeable helper did not start in 10 s')), 10_000);
        child!.stdout!.once('data', () => (clearTimeout(timer), resolve()));
        child!.once('exit', (c) => (clearTimeout(timer), reject(new Error(`mergeable helper exited ${c}`))));
      });
      const knobsBefore = await ksm.readKnobs();
      const file = join(work, 'refused.jsonl');
      expect(await main(['trace', 'record', SCENARIO, '--testbed', testbed, '--out', file])).toBe(EXIT.internal);
      expect(io.err).toMatch(new RegExp(`process\\(es\\) .*${child.pid} mergeable.*have KSM-mergeable memory`));
      expect(existsSync(file)).toBe(false);
      expect(await ksm.readKnobs()).toEqual(knobsBefore);
    } finally {
      child?.kill('SIGKILL');
    }
  }, 60_000);
});
