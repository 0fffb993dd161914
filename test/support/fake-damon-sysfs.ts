// A stand-in for DAMON's sysfs interface: plain files in a temp dir, with every command's DAMON_ADMIN path
// rewritten to it, so DamonSignal (src/host/placement/damon.ts) runs its real shell scripts against it.
// Writes land in files and nothing samples: a test sets each kdamond's tried regions itself (setRegions).
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalExecutor } from '../../src/host/exec/index.ts';
import type { ExecOptions, ExecResult, Executor } from '../../src/host/exec/types.ts';
import { DAMON_ADMIN, type DamonRegion } from '../../src/host/placement/damon.ts';

export interface FakeDamonSysfs {
  /** Runs commands locally with DAMON_ADMIN rewritten; `intercept` may answer a command itself. */
  exec: Executor;
  /** The fake kdamonds directory. */
  k: string;
  /** Makes kdamond i's tried regions exactly these (none: the kdamond has produced nothing yet). */
  setRegions(i: number, regions: readonly DamonRegion[]): void;
  remove(): void;
}

/**
 * `kdamonds` directories 0..n-1 with the context/scheme tree start() writes into. `initialKdamonds` is what
 * nr_kdamonds reads at first (0 for a free DAMON; start() refuses otherwise).
 */
export function fakeDamonSysfs(n: number, opts: { initialKdamonds?: number; state?: string; intercept?: (argv: readonly string[]) => ExecResult | null } = {}): FakeDamonSysfs {
  const dir = mkdtempSync(join(tmpdir(), 'nuksm-damon-'));
  const k = join(dir, 'kdamonds');
  for (let i = 0; i < n; i++) {
    const c = join(k, String(i), 'contexts', '0');
    for (const sub of ['monitoring_attrs/intervals', 'monitoring_attrs/nr_regions', 'targets/0', 'schemes/0/access_pattern/sz', 'schemes/0/access_pattern/nr_accesses', 'schemes/0/access_pattern/age', 'schemes/0/tried_regions'])
      mkdirSync(join(c, sub), { recursive: true });
    writeFileSync(join(k, String(i), 'state'), `${opts.state ?? 'off'}\n`);
    writeFileSync(join(k, String(i), 'pid'), '0\n');
  }
  writeFileSync(join(k, 'nr_kdamonds'), `${opts.initialKdamonds ?? 0}\n`);
  const local = new LocalExecutor();
  const exec = {
    target: 'fake-sysfs',
    run: (argv: readonly string[], o?: ExecOptions) => {
      const answer = opts.intercept?.(argv);
      return answer ? Promise.resolve(answer) : local.run(argv.map((a) => a.replaceAll(DAMON_ADMIN, dir)), o);
    },
  } as unknown as Executor;
  return {
    exec,
    k,
    setRegions(i, regions) {
      const tried = join(k, String(i), 'contexts', '0', 'schemes', '0', 'tried_regions');
      rmSync(tried, { recursive: true, force: true });
      regions.forEach((r, j) => {
        mkdirSync(join(tried, String(j)), { recursive: true });
        writeFileSync(join(tried, String(j), 'start'), `${r.start}\n`);
        writeFileSync(join(tried, String(j), 'end'), `${r.end}\n`);
        writeFileSync(join(tried, String(j), 'nr_accesses'), `${r.nrAccesses}\n`);
      });
      mkdirSync(tried, { recursive: true });
    },
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}
