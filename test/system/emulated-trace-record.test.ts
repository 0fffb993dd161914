/**
 * `nuksm trace record` on the emulated testbed, as a user runs it: the CLI boots a machine of the testbed's
 * shape on an overlay of its own (the image built by the earlier files is reused), into the chosen kernel,
 * records the shipped two-process scenario with the KSM scenario driver, powers the machine off and removes
 * the overlay; `nuksm trace replay` then replays the kernel's trace into the model and agrees exactly.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { loadTestbedFile } from '../../src/campaign/testbed-file.ts';
import { readTraceFile } from '../../src/policy/trace-file.ts';
import { freePort } from '../host/sshd-harness.ts';
import { describeWith } from '../support/components.ts';
import { testLog } from '../support/log.ts';
import { spawnNuksm } from '../support/nuksm-child.ts';

const ROOT = resolve(import.meta.dirname, '../..');
const say = testLog('emulated-trace-record');

/** Runs nuksm to its end (killed after timeoutMs), its stderr passed on as progress lines. */
async function nuksm(args: string[], timeoutMs: number): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const run = spawnNuksm(args, say);
  const timer = setTimeout(() => run.child.kill('SIGTERM'), timeoutMs);
  const { code } = await run.exited;
  clearTimeout(timer);
  return { code, stdout: run.out(), stderr: run.err() };
}

describeWith(['qemu', 'debootstrap', 'root', 'gcc'], 'nuksm trace record on the emulated testbed', () => {
  const work = mkdtempSync(join(tmpdir(), 'nuksm-emulated-record-'));
  const cacheDir = join(ROOT, '.cache', 'emulated');
  const name = `trace-record-test-${process.pid}`;
  afterAll(() => rmSync(work, { recursive: true, force: true }));

  it('boots its own machine into 6.12, records a kernel trace, leaves nothing behind, and the trace replays exactly', async () => {
    // The shipped testbed file as written (not as loaded: its modes are normalized then), on a port, machine
    // name and memory of this test's own.
    const shipped = parse(readFileSync(join(ROOT, 'experiments', 'testbeds', 'emulated.yaml'), 'utf8')) as { emulated: object; nodes: object[] };
    const testbedFile = join(work, 'emulated.yaml');
    writeFileSync(testbedFile, stringify({ ...shipped, name, emulated: { ...shipped.emulated, imageCacheDir: cacheDir, sshPort: await freePort(), memoryMiBPerNode: 1024 }, nodes: shipped.nodes.map((n) => ({ ...n, memoryGiB: 1 })) }));
    loadTestbedFile(testbedFile); // valid before anything boots
    const out = join(work, 'one-node-writes.jsonl');
    const t0 = Date.now();
    const rec = await nuksm(['trace', 'record', join(ROOT, 'experiments', 'ksm-scenarios', 'one-node-writes.yaml'), '--testbed', testbedFile, '--out', out, '--kernel', 'backports'], 1_500_000);
    say(`record: exit ${rec.code} after ${((Date.now() - t0) / 1000).toFixed(0)} s: ${rec.stdout.trim()}`);
    expect(rec.code, rec.stderr.slice(-3000)).toBe(0);
    expect(rec.stdout).toMatch(/recorded one-node-writes on a kernel, 6\.12\./);
    const trace = readTraceFile(out);
    expect(trace.header.producer).toBe('kernel');
    expect(trace.header.release).toMatch(/^6\.12\./);
    expect(trace.header.source).toMatch(/emulated testbed .* QEMU TCG machine running 6\.12\./);
    expect(trace.records.filter((r) => r.t === 'snap').length).toBeGreaterThan(3);
    // Powered off, overlay gone: no machine directory of this recording, no QEMU on it.
    const left = existsSync(join(cacheDir, 'machines')) ? readdirSync(join(cacheDir, 'machines')).filter((d) => d.startsWith(`${name}-trace-`)) : [];
    expect(left).toEqual([]);
    expect(spawnSync('pgrep', ['-af', `qemu-system.*${name}-trace-`], { encoding: 'utf8' }).stdout.trim()).toBe('');
    const replay = await nuksm(['trace', 'replay', out], 120_000);
    say(`replay: exit ${replay.code}\n${replay.stdout.trim()}`);
    expect(replay.code, replay.stdout + replay.stderr).toBe(0);
  }, 1_800_000);
});
