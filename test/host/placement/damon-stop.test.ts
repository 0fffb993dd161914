// DamonSignal.stop() against a stand-in for DAMON's sysfs (test/support/fake-damon-sysfs.ts): it turns every
// kdamond off, waits for the states to read off, shrinks nr_kdamonds, and when the shrink keeps failing it
// gives up after its bounded retries with a message that says what is left.
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { Executor } from '../../../src/host/exec/types.ts';
import { DamonSignal } from '../../../src/host/placement/damon.ts';
import { fakeDamonSysfs, type FakeDamonSysfs } from '../../support/fake-damon-sysfs.ts';

let fake: FakeDamonSysfs | null = null;
afterEach(() => fake?.remove());

/** A signal that has started `n` kdamonds (start() is tested in engine-damon.test.ts). */
function started(exec: Executor, n: number): DamonSignal {
  const d = new DamonSignal(exec);
  (d as unknown as { started: number }).started = n;
  return d;
}

describe('DamonSignal.stop', () => {
  it('turns every kdamond off and sets nr_kdamonds back to 0', async () => {
    fake = fakeDamonSysfs(3, { initialKdamonds: 3, state: 'on' });
    await started(fake.exec, 3).stop();
    for (const i of [0, 1, 2]) expect(readFileSync(join(fake.k, String(i), 'state'), 'utf8').trim()).toBe('off');
    expect(readFileSync(join(fake.k, 'nr_kdamonds'), 'utf8').trim()).toBe('0');
  });

  it('a shrink that keeps failing ends after its retries, as unsupported, naming what is left', async () => {
    fake = fakeDamonSysfs(2, { initialKdamonds: 2, state: 'on' });
    rmSync(join(fake.k, 'nr_kdamonds'));
    mkdirSync(join(fake.k, 'nr_kdamonds')); // every write to it fails
    const t0 = Date.now();
    const err = await started(fake.exec, 2).stop().then(() => null, (e: unknown) => e as Error & { kind?: string });
    expect(err?.message).toMatch(/DAMON sysfs on fake-sysfs: .*nr_kdamonds stays .* after 5 tries; states: off off/);
    expect(Date.now() - t0).toBeLessThan(30_000);
  }, 60_000);
});
