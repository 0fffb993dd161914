// The fair engine's use of its DAMON signal, against a stand-in for DAMON's sysfs (test/support/fake-damon-sysfs.ts)
// and a canned KSM read-out: start() waits until every instance has shown an access (or its deadline), and a
// page whose sharer's kdamond has given no regions is left undecided instead of counted inactive, which would
// have handed every page to the other node (the one-sided outcome seen once in the emulated fig6-small run).
import { afterEach, describe, expect, it } from 'vitest';
import type { ExecResult } from '../../../src/host/exec/types.ts';
import { PlacementEngine } from '../../../src/host/placement/index.ts';
import { fakeDamonSysfs, type FakeDamonSysfs } from '../../support/fake-damon-sysfs.ts';

const PAGE = 4096;
const BASE = 0x7f0000000; // the pages' virtual page numbers start here in both instances
const PAGES = 200;

/** KSM pages each mapped by instance 0 (node 0) and 1 (node 1), all on node 0 (as stock KSM left them). */
function sharersReadout(): ExecResult {
  const lines = Array.from({ length: PAGES }, (_, j) => `K ${1000 + j} 0 0:${(BASE + j).toString(16)},1:${(BASE + j).toString(16)}`);
  return { exitCode: 0, stdout: `${lines.join('\n')}\nS nodes=0,1 cpu_s=0.001\n`, stderr: '', durationMs: 1 };
}

const accessedAll = [{ start: BASE * PAGE, end: (BASE + PAGES) * PAGE, nrAccesses: 5 }];
const idleAll = [{ start: BASE * PAGE, end: (BASE + PAGES) * PAGE, nrAccesses: 0 }];

let fake: FakeDamonSysfs | null = null;
afterEach(() => fake?.remove());

function engine(damonWarmUpMs: number, log: string[]): PlacementEngine {
  fake = fakeDamonSysfs(2, { intercept: (argv) => (argv[0] === 'node' && argv[1] === '-e' ? sharersReadout() : null) });
  const instances = [0, 1].map((node) => ({ name: `p${node}`, workload: 'w', pid: process.pid, node }));
  return new PlacementEngine(fake.exec, instances, { policy: 'fair', helper: null, dryRun: true, damonWarmUpMs, log: (l) => log.push(l) });
}

describe('fair placement with a DAMON signal that is not there yet', () => {
  it('start() waits for every instance to show an access, then both-active pages split by round robin', async () => {
    const log: string[] = [];
    const e = engine(10_000, log);
    const started = e.start();
    // Instance 0 sampled at once; instance 1's kdamond has regions but no access for about a second.
    setTimeout(() => fake!.setRegions(0, accessedAll), 0);
    setTimeout(() => fake!.setRegions(1, idleAll), 0);
    setTimeout(() => fake!.setRegions(1, accessedAll), 1_200);
    const t0 = Date.now();
    await started;
    expect(Date.now() - t0).toBeGreaterThanOrEqual(1_000);
    expect(e.signal).toBe('damon');
    expect(log.join('\n')).toMatch(/DAMON after [\d.]+ s: p0 1 regions, 100% of 0.8 MiB accessed; p1 1 regions, 100% of 0.8 MiB accessed/);
    const r = await e.round();
    // Both copies active: round robin keeps node 0 for half and node 1 for the other half.
    expect(r.deferred).toBe(0);
    expect(r.misplaced).toBe(PAGES / 2);
    await e.stop();
    const sample = (metric: string) => e.samples().find((x) => x.metric === metric)?.value;
    expect([sample('placement_access_signal'), sample('placement_access_bit_refresh_ms')]).toEqual([1, 0]); // DAMON, no TLB flushing
  }, 30_000);

  it('an instance idle past the deadline counts inactive: every page stays with the active side', async () => {
    const log: string[] = [];
    const e = engine(1_500, log);
    const started = e.start();
    setTimeout(() => (fake!.setRegions(0, accessedAll), fake!.setRegions(1, idleAll)), 0);
    await started;
    expect(log.join('\n')).toMatch(/p1 1 regions, 0% of 0.8 MiB accessed \(no access seen: counted inactive\)/);
    const r = await e.round();
    expect([r.deferred, r.misplaced]).toEqual([0, 0]); // only p0 active, and the pages are on p0's node
    await e.stop();
  }, 30_000);

  it('a kdamond with no regions in the whole window leaves its pages undecided, not handed to the other node', async () => {
    const log: string[] = [];
    const e = engine(1_000, log);
    const started = e.start();
    // Only instance 1 sampled: were instance 0 counted inactive, all PAGES would be misplaced (moved to node 1).
    setTimeout(() => fake!.setRegions(1, accessedAll), 0);
    await started;
    expect(log.join('\n')).toMatch(/p0 no regions yet \(its pages wait for regions\)/);
    const first = await e.round();
    expect([first.deferred, first.misplaced]).toEqual([PAGES, 0]);
    expect(log.at(-1)).toMatch(/deferred 200.*DAMON p0 no regions yet, p1 1 regions, 100% of 0.8 MiB accessed/);
    fake!.setRegions(0, accessedAll);
    const next = await e.round();
    expect([next.deferred, next.misplaced]).toEqual([0, PAGES / 2]);
    await e.stop();
  }, 30_000);
});
