// DamonSignal.stop() against a stand-in for DAMON's sysfs (plain files in a temp dir, the admin path rewritten):
// it turns every kdamond off, waits for the states to read off, shrinks nr_kdamonds, and when the shrink keeps
// failing it gives up after its bounded retries with a message that says what is left.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { LocalExecutor } from '../../../src/host/exec/index.ts';
import type { Executor } from '../../../src/host/exec/types.ts';
import { DAMON_ADMIN, DamonSignal } from '../../../src/host/placement/damon.ts';

let dir = '';
afterEach(() => rmSync(dir, { recursive: true, force: true }));

function fakeSysfs(kdamonds: number): { exec: Executor; k: string } {
  dir = mkdtempSync(join(tmpdir(), 'nuksm-damon-'));
  const k = join(dir, 'kdamonds');
  for (let i = 0; i < kdamonds; i++) {
    mkdirSync(join(k, String(i)), { recursive: true });
    writeFileSync(join(k, String(i), 'state'), 'on\n');
  }
  writeFileSync(join(k, 'nr_kdamonds'), `${kdamonds}\n`);
  const local = new LocalExecutor();
  const exec = { target: 'fake-sysfs', run: (argv: readonly string[], o?: object) => local.run(argv.map((a) => a.replaceAll(DAMON_ADMIN, dir)), o) } as unknown as Executor;
  return { exec, k };
}

/** A signal that has started `n` kdamonds (start() itself needs the real interface). */
function started(exec: Executor, n: number): DamonSignal {
  const d = new DamonSignal(exec);
  (d as unknown as { started: number }).started = n;
  return d;
}

describe('DamonSignal.stop', () => {
  it('turns every kdamond off and sets nr_kdamonds back to 0', async () => {
    const { exec, k } = fakeSysfs(3);
    await started(exec, 3).stop();
    for (const i of [0, 1, 2]) expect(readFileSync(join(k, String(i), 'state'), 'utf8').trim()).toBe('off');
    expect(readFileSync(join(k, 'nr_kdamonds'), 'utf8').trim()).toBe('0');
  });

  it('a shrink that keeps failing ends after its retries, as unsupported, naming what is left', async () => {
    const { exec, k } = fakeSysfs(2);
    rmSync(join(k, 'nr_kdamonds'));
    mkdirSync(join(k, 'nr_kdamonds')); // every write to it fails
    const t0 = Date.now();
    const err = await started(exec, 2).stop().then(() => null, (e: unknown) => e as Error & { kind?: string });
    expect(err?.message).toMatch(/DAMON sysfs on fake-sysfs: .*nr_kdamonds stays .* after 5 tries; states: off off/);
    expect(Date.now() - t0).toBeLessThan(30_000);
  }, 60_000);
});
