/**
 * Per-instance access signal for user-space fair: DAMON virtual-address monitoring through its sysfs
 * interface (/sys/kernel/mm/damon/admin, Linux 5.18+; Debian's 6.12 backports kernel has it, its 6.1
 * kernel has no DAMON and no idle page tracking: docs/placement.md). One kdamond per instance, each
 * watching that process's own page-table accessed bits, so a KSM page mapped by two processes is seen as
 * accessed by the one that touches it. A "stat" scheme over every region lets us read the regions
 * (start, end, nr_accesses of the last aggregation interval) with update_schemes_tried_regions.
 *
 * A kdamond's first reads can come before it has sampled anything (no regions yet, or every region at zero
 * accesses): an instance would then look idle and fair would give every page to the other side. warmUp()
 * reads until every instance has shown an accessed region, or a deadline passes (an instance still idle then
 * is genuinely idle, and says so in the log).
 *
 * Call order: detectDamon() → start(pids) → warmUp() → read() any number of times → stop() (always; it turns
 * the kdamonds off and sets nr_kdamonds back to 0). start() refuses when kdamonds already exist (someone
 * else's DAMON session): it never takes one over.
 */
import { HarnessError } from '../../core/errors.ts';
import type { Executor } from '../exec/types.ts';

export const DAMON_ADMIN = '/sys/kernel/mm/damon/admin';
const SAMPLE_US = 5_000;
const AGGR_US = 100_000;
const UPDATE_US = 1_000_000;

/** A monitored region of one instance: [start, end) virtual addresses, sampled accesses in the last aggregation. */
export interface DamonRegion {
  start: number;
  end: number;
  nrAccesses: number;
}

export async function detectDamon(exec: Executor): Promise<boolean> {
  const r = await exec.run(['test', '-w', `${DAMON_ADMIN}/kdamonds/nr_kdamonds`], { allowFailure: true, timeoutMs: 30_000 });
  return r.exitCode === 0;
}

export class DamonSignal {
  private started = 0;
  constructor(readonly exec: Executor) {}

  private async sh(script: string, timeoutMs = 60_000): Promise<string> {
    const r = await this.exec.run(['sh', '-c', script], { allowFailure: true, timeoutMs });
    if (r.exitCode !== 0) throw new HarnessError('unsupported', `DAMON sysfs on ${this.exec.target}: ${r.stderr.trim().split('\n').slice(-2).join(' ') || `exit ${r.exitCode}`}`);
    return r.stdout;
  }

  async start(pids: readonly number[]): Promise<void> {
    const existing = Number((await this.sh(`cat ${DAMON_ADMIN}/kdamonds/nr_kdamonds`)).trim());
    if (existing !== 0) throw new HarnessError('unsupported', `DAMON on ${this.exec.target} already has ${existing} kdamond(s) set up by someone else: not taking them over`);
    const k = `${DAMON_ADMIN}/kdamonds`;
    const setup = [`set -e`, `echo ${pids.length} > ${k}/nr_kdamonds`];
    pids.forEach((pid, i) => {
      const c = `${k}/${i}/contexts/0`;
      setup.push(
        `echo 1 > ${k}/${i}/contexts/nr_contexts`,
        `echo vaddr > ${c}/operations`,
        `echo ${SAMPLE_US} > ${c}/monitoring_attrs/intervals/sample_us`,
        `echo ${AGGR_US} > ${c}/monitoring_attrs/intervals/aggr_us`,
        `echo ${UPDATE_US} > ${c}/monitoring_attrs/intervals/update_us`,
        `echo 10 > ${c}/monitoring_attrs/nr_regions/min`,
        `echo 1000 > ${c}/monitoring_attrs/nr_regions/max`,
        `echo 1 > ${c}/targets/nr_targets`,
        `echo ${pid} > ${c}/targets/0/pid_target`,
        `echo 1 > ${c}/schemes/nr_schemes`,
        `echo stat > ${c}/schemes/0/action`,
        // The pattern's ranges default to 0..0 (no region matches): every size, access count and age.
        `echo ${2 ** 62} > ${c}/schemes/0/access_pattern/sz/max`,
        `echo 4294967295 > ${c}/schemes/0/access_pattern/nr_accesses/max`,
        `echo 4294967295 > ${c}/schemes/0/access_pattern/age/max`,
      );
    });
    this.started = pids.length;
    try {
      await this.sh(setup.join('\n'));
      await this.sh(pids.map((_, i) => `echo on > ${k}/${i}/state`).join(' && '));
    } catch (e) {
      await this.stop().catch(() => undefined);
      throw e;
    }
  }

  /** Regions per instance (index = position in start()'s pids). */
  async read(): Promise<DamonRegion[][]> {
    const k = `${DAMON_ADMIN}/kdamonds`;
    const script = Array.from({ length: this.started }, (_, i) =>
      [
        `echo update_schemes_tried_regions > ${k}/${i}/state`,
        `for d in ${k}/${i}/contexts/0/schemes/0/tried_regions/*/; do [ -f "$d/start" ] && echo "R ${i} $(cat $d/start) $(cat $d/end) $(cat $d/nr_accesses)"; done; true`,
      ].join('\n'),
    ).join('\n');
    // The regions are occasionally not there yet when the update returns: read again (at most twice more).
    let out: DamonRegion[][] = [];
    for (let attempt = 0; attempt < 3; attempt++) {
      out = Array.from({ length: this.started }, () => []);
      for (const line of (await this.sh(script, 120_000)).split('\n')) {
        const m = /^R (\d+) (\d+) (\d+) (\d+)$/.exec(line.trim());
        if (m) out[Number(m[1])]!.push({ start: Number(m[2]), end: Number(m[3]), nrAccesses: Number(m[4]) });
      }
      if (out.every((r) => r.length > 0)) break;
    }
    for (const r of out) r.sort((a, b) => a.start - b.start);
    return out;
  }

  /**
   * Reads until every instance has regions with at least one accessed, or until deadlineMs has passed; returns
   * the last read's coverage per instance and how long it took.
   */
  async warmUp(deadlineMs: number, pollMs = 500): Promise<{ waitedMs: number; coverage: DamonCoverage[] }> {
    const t0 = Date.now();
    for (;;) {
      const coverage = (await this.read()).map(coverageOf);
      const waitedMs = Date.now() - t0;
      if (coverage.every((c) => c.accessedBytes > 0) || waitedMs >= deadlineMs) return { waitedMs, coverage };
      await new Promise((r) => setTimeout(r, Math.min(pollMs, Math.max(0, deadlineMs - waitedMs))));
    }
  }

  /** kdamonds' CPU seconds so far (the signal's own cost), from their /proc stat. */
  async cpuSeconds(): Promise<number> {
    const k = `${DAMON_ADMIN}/kdamonds`;
    const text = await this.sh(`for i in $(seq 0 $(( ${this.started} - 1 ))); do p=$(cat ${k}/$i/pid); [ "$p" -gt 0 ] && cut -d' ' -f14,15 /proc/$p/stat; done; getconf CLK_TCK; true`).catch(() => '');
    const lines = text.trim().split('\n');
    const hz = Number(lines.pop()) || 100;
    return lines.reduce((s, l) => s + l.split(' ').reduce((a, x) => a + Number(x), 0), 0) / hz;
  }

  async stop(): Promise<void> {
    if (this.started === 0) return;
    const k = `${DAMON_ADMIN}/kdamonds`;
    // 'off' returns before the kdamond thread has exited (one whose target exited may be stopping on its own),
    // and nr_kdamonds cannot shrink while one still runs: wait for every state to read off, then retry the
    // shrink a few times. Bounded: 20 s of waiting, 5 tries.
    await this.sh(
      [
        `n=${this.started}`,
        `for i in $(seq 0 $((n - 1))); do echo off > ${k}/$i/state 2>/dev/null || true; done`,
        `w=0; while [ $w -lt 200 ]; do busy=0; for i in $(seq 0 $((n - 1))); do [ "$(cat ${k}/$i/state 2>/dev/null)" = off ] || busy=1; done; [ $busy = 0 ] && break; sleep 0.1; w=$((w + 1)); done`,
        `t=0; until echo 0 > ${k}/nr_kdamonds; do t=$((t + 1)); [ $t -ge 5 ] && { echo "nr_kdamonds stays $(cat ${k}/nr_kdamonds) after 5 tries; states: $(cat ${k}/*/state | tr '\\n' ' ')" >&2; exit 1; }; sleep 1; done`,
      ].join('\n'),
      90_000,
    );
    this.started = 0;
  }
}

/** What one instance's regions say: how many, how many bytes they cover, how many of those saw an access. */
export interface DamonCoverage {
  regions: number;
  coveredBytes: number;
  accessedBytes: number;
}

export function coverageOf(regions: readonly DamonRegion[]): DamonCoverage {
  let coveredBytes = 0;
  let accessedBytes = 0;
  for (const r of regions) {
    coveredBytes += r.end - r.start;
    if (r.nrAccesses > 0) accessedBytes += r.end - r.start;
  }
  return { regions: regions.length, coveredBytes, accessedBytes };
}

/** "12 regions, 37% of 8.0 MiB accessed" */
export function describeCoverage(c: DamonCoverage): string {
  if (c.regions === 0) return 'no regions yet';
  return `${c.regions} regions, ${Math.round((100 * c.accessedBytes) / c.coveredBytes)}% of ${(c.coveredBytes / 2 ** 20).toFixed(1)} MiB accessed`;
}

/** Whether a virtual address lies in a region with accesses (regions sorted by start, as DAMON keeps them). */
export function accessedAt(regions: readonly DamonRegion[], addr: number): boolean {
  let lo = 0;
  let hi = regions.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const r = regions[mid]!;
    if (addr < r.start) hi = mid - 1;
    else if (addr >= r.end) lo = mid + 1;
    else return r.nrAccesses > 0;
  }
  return false;
}
