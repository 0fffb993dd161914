/**
 * The instance-marker scan (src/testbeds/step/process-launcher.ts) on this host's real /proc: it
 * finds exactly the processes whose environment carries the marker (not a marker that only starts
 * the same), with their resident size, and killMarked ends them.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import { LocalExecutor } from '../../../src/host/exec/local.ts';
import { killMarked, mainProcessOf, processesWithMarker } from '../../../src/testbeds/step/process-launcher.ts';

const exec = new LocalExecutor();
const children: ChildProcess[] = [];
const start = (marker: string, argv: string[]) => {
  const c = spawn(argv[0]!, argv.slice(1), { env: { ...process.env, NUKSM_INSTANCE: marker }, stdio: 'ignore' });
  children.push(c);
  return c;
};
const exited = (c: ChildProcess) => new Promise<void>((r) => (c.exitCode !== null || c.signalCode !== null ? r() : c.once('exit', () => r())));
afterEach(() => {
  for (const c of children.splice(0)) c.kill('SIGKILL');
});

describe('processes of an instance, by the marker in their environment', () => {
  it('finds exactly the marked processes with their RSS, the largest as the main one, and kills them', async () => {
    const marker = `m-${process.pid}-a`;
    const small = start(marker, ['sleep', '60']);
    // ~64 MiB resident: the instance's main process.
    // Debian's python3 (.ci/run installs it), not a version manager's shim on PATH: a shim's helper
    // processes inherit the marker and can be the largest marked process for a moment.
    const big = start(marker, ['/usr/bin/python3', '-c', 'import time; x = bytearray(64 << 20); time.sleep(60)']);
    const other = start(`${marker}x`, ['sleep', '60']); // a marker that merely starts with ours
    const unmarked = spawn('sleep', ['60'], { stdio: 'ignore' });
    children.push(unmarked);
    const main = await mainProcessOf(exec, marker, 10_000);
    // mainProcessOf returns as soon as something resident carries the marker: wait for python's buffer.
    for (let i = 0; i < 40 && (await processesWithMarker(exec, marker)).every((p) => p.rssKiB < 32 << 10); i++) await new Promise((r) => setTimeout(r, 250));
    const found = await processesWithMarker(exec, marker);
    expect(found.map((p) => p.pid).sort()).toEqual([small.pid, big.pid].sort());
    expect(found.find((p) => p.pid === big.pid)!.rssKiB).toBeGreaterThan(60 << 10);
    expect(found.find((p) => p.pid === small.pid)!.rssKiB).toBeLessThan(16 << 10);
    expect([small.pid, big.pid]).toContain(main);
    expect(await mainProcessOf(exec, marker, 10_000)).toBe(big.pid);

    expect(await killMarked(exec, marker)).toBe(2);
    await Promise.all([exited(small), exited(big)]);
    expect(await processesWithMarker(exec, marker)).toEqual([]);
    expect(other.exitCode).toBeNull();
    expect(other.signalCode).toBeNull();
    expect(unmarked.signalCode).toBeNull();
  });

  it('a marker no process carries: nothing found, nothing killed', async () => {
    expect(await processesWithMarker(exec, `m-${process.pid}-none`)).toEqual([]);
    expect(await killMarked(exec, `m-${process.pid}-none`)).toBe(0);
  });
});
