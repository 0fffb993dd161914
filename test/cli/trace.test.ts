// `nuksm trace record` on the model testbed and `nuksm trace replay`, in process: the model's own
// recording replays exactly, says it is the model's, follows the --kernel's rules; every bad input is
// exit 2 with nothing written (the emulated testbed's unknown --kernel among them, before any boot). Recording on
// the emulated machine itself: test/system/emulated-trace-record.test.ts.
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { EXIT } from '../../src/cli/exit-codes.ts';
import { main } from '../../src/cli/main.ts';
import { captureOutput } from '../support/captured-output.ts';
import { readTraceFile, traceText } from '../../src/policy/trace-file.ts';

const ROOT = join(import.meta.dirname, '..', '..');
const MODEL = join(ROOT, 'experiments', 'testbeds', 'model.yaml');
const EMULATED = join(ROOT, 'experiments', 'testbeds', 'emulated.yaml');
const SCENARIO = join(ROOT, 'experiments', 'ksm-scenarios', 'one-node-writes.yaml');
const tmp = mkdtempSync(join(tmpdir(), 'nuksm-trace-cli-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const io = captureOutput();

/** A model testbed file whose kernels are real releases (the model follows their rules). */
function modelWithKernels(): string {
  const file = join(tmp, 'model-kernels.yaml');
  writeFileSync(
    file,
    ['name: model-kernels', 'kind: model', 'nodes:', '  - { id: 0, cpus: [0], memoryGiB: 8 }', '  - { id: 1, cpus: [1], memoryGiB: 8 }', 'kernels:', '  old: { bootEntry: x, release: 6.1.0-13-amd64 }', '  new: { bootEntry: y, release: 6.12.38+deb12-amd64 }', ''].join('\n'),
  );
  return file;
}

function scenarioFile(name: string, data: object): string {
  const file = join(tmp, name);
  writeFileSync(file, JSON.stringify(data));
  return file;
}

describe('nuksm trace record / replay', () => {
  it('records on the model testbed, says it is the model, and replays exactly (exit 0)', async () => {
    const file = join(tmp, 'model.jsonl');
    expect(await main(['trace', 'record', SCENARIO, '--testbed', MODEL, '--out', file])).toBe(EXIT.ok);
    expect(io.out).toMatch(/recorded one-node-writes BY THE MODEL \(not a kernel measurement\)/);
    const t = readTraceFile(file);
    expect(t.header.producer).toBe('model');
    expect(t.header.source).toMatch(/not a kernel measurement/);
    expect(t.header.compareOrder).toBe('upto-6.10'); // model.yaml's kernel is no Linux release: the paper's v5.4
    expect(t.records.filter((r) => r.t === 'snap').length).toBe(t.header.scenario.endPass + 2); // pass 0..5 and batch 3
    expect(t.records.filter((r) => r.t === 'merge').length).toBeGreaterThan(0);
    io.out = '';
    expect(await main(['trace', 'replay', file])).toBe(EXIT.ok);
    expect(io.out).toMatch(/recorded BY THE MODEL \(not a kernel measurement\)/);
    expect(io.out).toMatch(/verdict: exact agreement/);
  });

  it("follows the --kernel's rules: comparison order and whether smart scan exists", async () => {
    const tb = modelWithKernels();
    const s = scenarioFile('smart.json', { name: 'smart', knobs: { pages_to_scan: 4, smart_scan: 1 }, procs: [{ node: 0, contents: [1, 2, 3, 4, 9] }, { node: 1, contents: [1, 2, 3, 4, 8] }], initial: [0, 1], endPass: 6 });
    const traces: Record<string, ReturnType<typeof readTraceFile>> = {};
    for (const k of ['old', 'new']) {
      const file = join(tmp, `smart-${k}.jsonl`);
      expect(await main(['trace', 'record', s, '--testbed', tb, '--kernel', k, '--out', file])).toBe(EXIT.ok);
      expect(await main(['trace', 'replay', file])).toBe(EXIT.ok);
      traces[k] = readTraceFile(file);
    }
    expect([traces.old!.header.release, traces.old!.header.compareOrder, traces.old!.header.smartScanKnob]).toEqual(['6.1.0-13-amd64', 'upto-6.10', false]);
    expect([traces.new!.header.release, traces.new!.header.compareOrder, traces.new!.header.smartScanKnob]).toEqual(['6.12.38+deb12-amd64', 'from-6.11', true]);
    const last = (k: string) => traces[k]!.records.filter((r) => r.t === 'snap').at(-1)!;
    const skipped = (k: string) => { const r = last(k); return r.t === 'snap' ? r.c.pages_skipped : undefined; };
    expect(skipped('old')).toBeUndefined(); // 6.1 has no smart scan: the model scanned every page
    expect(skipped('new')).toBeGreaterThan(0); // the unchanged unique pages were skipped on 6.12
  });

  it('replay: exit 1 on a disagreement, 2 on a file it cannot read', async () => {
    const file = join(tmp, 'model.jsonl');
    const t = readTraceFile(file);
    const snap = t.records.find((r) => r.t === 'snap' && r.n === 2)!;
    if (snap.t === 'snap') snap.c.pages_sharing! += 1;
    writeFileSync(join(tmp, 'changed.jsonl'), traceText(t));
    expect(await main(['trace', 'replay', join(tmp, 'changed.jsonl')])).toBe(1);
    expect(io.out).toMatch(/pages_sharing: recorded \d+ model \d+/);
    expect(io.out).toMatch(/verdict: DISAGREES/);
    writeFileSync(join(tmp, 'cut.jsonl'), readFileSync(file, 'utf8').split('\n').slice(0, 3).join('\n'));
    expect(await main(['trace', 'replay', join(tmp, 'cut.jsonl')])).toBe(EXIT.config);
    expect(io.err).toMatch(/cut\.jsonl: line \d+: the trace does not end/);
  });

  const refused: Array<[string, () => string[], RegExp]> = [
    ['a bad scenario file', () => ['trace', 'record', scenarioFile('bad.json', { name: 'bad', knobs: { pages_to_scan: 0 }, procs: [{ node: 0, contents: [1] }], initial: [0], endPass: 1 }), '--testbed', MODEL], /bad\.json: knobs\.pages_to_scan:/],
    ['a node the testbed lacks', () => ['trace', 'record', scenarioFile('node2.json', { name: 'n2', knobs: { pages_to_scan: 4 }, procs: [{ node: 0, contents: [1] }, { node: 2, contents: [1] }], initial: [0, 1], endPass: 1 }), '--testbed', MODEL], /node2\.json: procs\[1\]\.node: node 2 is not a node of/],
    ['an unknown --kernel', () => ['trace', 'record', SCENARIO, '--testbed', MODEL, '--kernel', 'nope'], /--kernel: 'nope' is not a kernel of/],
    ['a missing testbed file', () => ['trace', 'record', SCENARIO, '--testbed', join(tmp, 'none.yaml')], /none\.yaml: \(top level\): cannot read file/],
  ];
  for (const [what, argv, message] of refused) {
    it(`record refuses ${what} (exit 2) and writes nothing`, async () => {
      const file = join(tmp, `refused-${what.replace(/\W+/g, '-')}.jsonl`);
      expect(await main([...argv(), '--out', file])).toBe(EXIT.config);
      expect(io.err).toMatch(message);
      expect(existsSync(file)).toBe(false);
    });
  }

  it('record keeps an existing --out unless --force, and refuses a missing directory', async () => {
    const file = join(tmp, 'exists.jsonl');
    writeFileSync(file, 'mine\n');
    expect(await main(['trace', 'record', SCENARIO, '--testbed', MODEL, '--out', file])).toBe(EXIT.config);
    expect(io.err).toMatch(/--out: .*exists \(give --force/);
    expect(readFileSync(file, 'utf8')).toBe('mine\n');
    expect(await main(['trace', 'record', SCENARIO, '--testbed', MODEL, '--out', file, '--force'])).toBe(EXIT.ok);
    expect(readTraceFile(file).header.producer).toBe('model');
    expect(await main(['trace', 'record', SCENARIO, '--testbed', MODEL, '--out', join(tmp, 'no-dir', 'x.jsonl')])).toBe(EXIT.config);
    expect(io.err).toMatch(/--out: directory .*no-dir does not exist/);
  });

  it('record on the emulated testbed refuses a kernel the testbed file does not have (exit 2) before building or booting anything', async () => {
    const file = join(tmp, 'emulated.jsonl');
    const t0 = Date.now();
    expect(await main(['trace', 'record', SCENARIO, '--testbed', EMULATED, '--out', file, '--kernel', 'trixie'])).toBe(EXIT.config);
    expect(io.err).toMatch(/--kernel: 'trixie' is not a kernel of .*emulated.yaml \(known: bookworm, backports\)/);
    expect(existsSync(file)).toBe(false);
    expect(Date.now() - t0).toBeLessThan(10_000);
  });
});
