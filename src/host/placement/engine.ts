/**
 * The user-space nuKSM placement engine: on a stock kernel, puts each page KSM has merged on the node the
 * paper's policy would have kept it on, without unmerging it.
 *
 * One round: (1) read-out on the target (src/host/monitors/ksm-pages.cjs --sharers: each KSM page mapped
 * by the registered instances, its node from its pfn, and the (instance, virtual page) mappings of it);
 * (2) the access signal if any (DAMON vaddr per instance, ./damon.ts; start() waits until every instance has
 * shown an access or a deadline passes, and a page with a sharer whose kdamond gave no regions in the window is
 * left undecided that round rather than counted inactive, which would hand it to the other side); (3) the node of each page decided
 * by src/policy/placement.ts (decideSharerNode: fair with the "only one copy active" and 1/K rules, or
 * priority with snice = nice + 21 against a seeded uniform number); (4) the pages not on their node moved
 * with the move_pages(MPOL_MF_MOVE_ALL) helper (./c/nuksm-move-pages.c), at most pagesPerSecond, and
 * rounds spaced so the engine stays within cpuBudget of one CPU.
 *
 * A page's decision is made once and remembered (keyed by its first mapping, which does not change when
 * the page migrates to a new pfn); it is made again only when the page's sharers or their access classes
 * change, as nuKSM decides again only at a new merge. Decisions are made in the harness process; the page
 * walk and the moves run on the target (a local executor on the host itself: `nuksm place`, or the
 * emulated machine's harness; SSH otherwise).
 *
 * Call order: start() (reads nice values, starts the access signal) → round() repeatedly, or run(signal)
 * which loops round() until aborted → stop() (always: stops the signal) → samples().
 */
import { HarnessError } from '../../core/errors.ts';
import type { Sample } from '../../core/sample.ts';
import { decideSharerNode, newRoundRobin, sniceOf, type PageSharer, type RoundRobinState, type UserPlacementPolicy } from '../../policy/placement.ts';
import { SplitMix32 } from '../../policy/random.ts';
import type { Executor } from '../exec/types.ts';
import { KSM_PAGES_SCRIPT } from '../monitors/ksm-placement.ts';
import { pageSizeOf } from '../monitors/ksm.ts';
import { makeSample, MIB } from '../monitors/sample.ts';
import type { MonitoredInstance } from '../monitors/types.ts';
import { startAccessBitRefresh, type AccessBitRefresh } from './access-bit-refresh.ts';
import { accessedAt, coverageOf, DamonSignal, describeCoverage, detectDamon, type DamonRegion } from './damon.ts';

export type AccessSignal = 'damon' | 'none';
/** DAMON reads (one per round) a sharer's access is remembered for: one aggregation interval is a noisy sample. */
const DAMON_WINDOW = 3;
/** Sample code of each signal (metric placement_access_signal). */
export const ACCESS_SIGNAL_CODE: Record<AccessSignal, number> = { none: 0, damon: 1 };

export interface PlacementEngineOptions {
  policy: UserPlacementPolicy;
  /** Path of nuksm-move-pages on the target (ensureMovePagesHelper); not needed for a dry run. */
  helper: string | null;
  seed?: number;
  /** Most pages moved per second (token bucket, at most one second of tokens saved up). */
  pagesPerSecond?: number;
  /** Fraction of one CPU the engine may use: after a round that took c CPU seconds, the next waits c / budget. */
  cpuBudget?: number;
  /** Least time between rounds. */
  periodMs?: number;
  /** 'auto': DAMON where the kernel has it, else none (fair then splits by round robin). */
  accessSignal?: 'auto' | 'none';
  /** Longest wait in start() for every instance's DAMON signal to show an access (DamonSignal.warmUp). */
  damonWarmUpMs?: number;
  /**
   * Emulators only (QEMU TCG never sets a cleared accessed bit again): flush the instances' TLBs this often while
   * DAMON runs (./access-bit-refresh.ts), in a loop run from refreshWorkDir on the target. null: not needed.
   */
  accessBitRefresh?: { periodMs: number; workDir: string } | null;
  dryRun?: boolean;
  nodeBinary?: string;
  timeoutMs?: number;
  log?: (line: string) => void;
}

export interface PlannedMove {
  instance: string;
  pid: number;
  address: number;
  fromNode: number;
  toNode: number;
}

export interface PlacementRound {
  /** Seconds since start(). */
  t: number;
  examined: number;
  examinedByNode: Record<number, number>;
  /** Pages not on their decided node (before the rate limit). */
  misplaced: number;
  /** Pages left undecided this round: a sharer's access signal had no regions in any read of the window. */
  deferred: number;
  planned: PlannedMove[];
  moved: number;
  failed: number;
  cpuS: number;
}

interface Decision {
  signature: string;
  node: number;
}

interface KsmPageLine {
  pfn: number;
  node: number;
  /** [instance index, virtual page number], in instance order. */
  maps: Array<[number, number]>;
}

export function parseSharersOutput(text: string): { pages: KsmPageLine[]; nodes: number[]; cpuS: number } {
  const pages: KsmPageLine[] = [];
  let nodes: number[] = [];
  let cpuS = 0;
  for (const line of text.split('\n')) {
    if (line.startsWith('K ')) {
      const [, pfn, node, maps] = line.split(' ');
      pages.push({
        pfn: Number(pfn),
        node: Number(node),
        maps: (maps ?? '').split(',').map((m) => {
          const [i, vpn] = m.split(':');
          return [Number(i), parseInt(vpn!, 16)] as [number, number];
        }),
      });
    } else if (line.startsWith('S ')) {
      const m = /nodes=([\d,]*) cpu_s=([\d.]+)/.exec(line);
      if (m) {
        nodes = m[1] ? m[1].split(',').map(Number) : [];
        cpuS = Number(m[2]);
      }
    }
  }
  return { pages, nodes, cpuS };
}

export function parseMoveOutput(text: string): { statuses: Map<string, number>; moved: number; failed: number; cpuS: number } {
  const statuses = new Map<string, number>();
  let summary: RegExpExecArray | null = null;
  for (const line of text.split('\n')) {
    const s = /^NUKSM_MOVE requests=(\d+) moved=(\d+) failed=(\d+) cpu_s=([\d.]+)/.exec(line);
    if (s) summary = s;
    const m = /^(\d+) ([0-9a-f]+) (-?\d+)$/.exec(line);
    if (m) statuses.set(`${m[1]} ${m[2]}`, Number(m[3]));
  }
  if (!summary) throw new Error(`nuksm-move-pages printed no NUKSM_MOVE summary: ${text.slice(-300)}`);
  return { statuses, moved: Number(summary[2]), failed: Number(summary[3]), cpuS: Number(summary[4]) };
}

/** nice of a process from /proc/PID/stat (field 19, after the parenthesised comm). */
export function niceFromStat(stat: string): number {
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const nice = Number(rest[16]);
  if (!Number.isInteger(nice)) throw new Error(`no nice value in /proc stat line: ${stat.slice(0, 120)}`);
  return nice;
}

export class PlacementEngine {
  readonly rounds: PlacementRound[] = [];
  signal: AccessSignal = 'none';
  /** Why the signal is what it is (e.g. "DAMON not in this kernel"). */
  signalReason = '';
  nices: number[] = [];
  nodes: number[] = [];
  movedTotal = 0;
  movedByNode: Record<number, number> = {};
  cpuTotalS = 0;
  private readonly rng: SplitMix32;
  private readonly rr: RoundRobinState = newRoundRobin();
  private readonly decisions = new Map<string, Decision>();
  private damon: DamonSignal | null = null;
  private refresh: AccessBitRefresh | null = null;
  /** The last DAMON reads (newest last): a sharer is active on a page if any of them saw it accessed. */
  private readonly damonHistory: DamonRegion[][][] = [];
  private pageSize = 4096;
  private startMs = 0;
  private tokens = 0;
  private lastRefillMs = 0;
  private readonly opts: Required<Omit<PlacementEngineOptions, 'helper' | 'log' | 'nodeBinary'>> & Pick<PlacementEngineOptions, 'helper' | 'log' | 'nodeBinary'>;

  constructor(
    readonly exec: Executor,
    readonly instances: readonly MonitoredInstance[],
    options: PlacementEngineOptions,
  ) {
    if (instances.length === 0) throw new RangeError('PlacementEngine: no instances');
    this.opts = { seed: 1, pagesPerSecond: 50_000, cpuBudget: 0.5, periodMs: 2_000, accessSignal: 'auto', damonWarmUpMs: 20_000, accessBitRefresh: null, dryRun: false, timeoutMs: 300_000, ...options };
    if (!(this.opts.pagesPerSecond > 0)) throw new RangeError('PlacementEngine: pagesPerSecond must be > 0');
    if (!(this.opts.cpuBudget > 0 && this.opts.cpuBudget <= 1)) throw new RangeError('PlacementEngine: cpuBudget must be in (0, 1]');
    if (!this.opts.dryRun && !this.opts.helper) throw new RangeError('PlacementEngine: a helper path is needed unless dryRun');
    this.rng = new SplitMix32(this.opts.seed);
  }

  private log(line: string): void {
    this.opts.log?.(line);
  }

  /** Starts the signal; a start that fails stops what it had started before rethrowing. */
  async start(): Promise<void> {
    try {
      await this.startSignal();
    } catch (err) {
      await this.stop().catch(() => undefined);
      throw err;
    }
    this.log(`placement engine: ${this.opts.policy}, nices ${this.nices.join('/')}, signal ${this.signal} (${this.signalReason})`);
  }

  private async startSignal(): Promise<void> {
    this.startMs = Date.now();
    this.lastRefillMs = this.startMs;
    this.tokens = this.opts.pagesPerSecond;
    this.pageSize = await pageSizeOf(this.exec);
    const stats = await this.exec.run(['sh', '-c', this.instances.map((i) => `cat /proc/${i.pid}/stat`).join(' && ')], { allowFailure: true, timeoutMs: 30_000 });
    if (stats.exitCode !== 0) throw new HarnessError('benchmark-error', `placement engine: instance processes gone on ${this.exec.target}: ${stats.stderr.trim()}`);
    this.nices = stats.stdout.trim().split('\n').map(niceFromStat);
    if (this.opts.policy === 'fair' && this.opts.accessSignal === 'auto') {
      if (await detectDamon(this.exec)) {
        this.damon = new DamonSignal(this.exec);
        await this.damon.start(this.instances.map((i) => i.pid));
        this.signal = 'damon';
        this.signalReason = 'DAMON vaddr monitoring, one kdamond per instance';
        const refresh = this.opts.accessBitRefresh;
        if (refresh) {
          // Bounded by the instances' lifetime and by a day, whichever ends first (stop() ends it sooner).
          this.refresh = await startAccessBitRefresh(this.exec, this.instances.map((i) => i.pid), { periodMs: refresh.periodMs, workDir: refresh.workDir, maxS: 86_400 });
          this.signalReason += `, the instances' TLBs flushed every ${refresh.periodMs} ms so the emulator sets accessed bits again (${this.refresh.dir})`;
        }
        const warm = await this.damon.warmUp(this.opts.damonWarmUpMs);
        this.log(
          `placement engine: DAMON after ${(warm.waitedMs / 1000).toFixed(1)} s: ` +
            warm.coverage.map((c, i) => `${this.instances[i]!.name} ${describeCoverage(c)}${c.regions === 0 ? ' (its pages wait for regions)' : c.accessedBytes === 0 ? ' (no access seen: counted inactive)' : ''}`).join('; '),
        );
      } else {
        this.signalReason = `no DAMON sysfs (${'/sys/kernel/mm/damon/admin'}) in this kernel: fair splits by round robin`;
      }
    } else {
      this.signalReason = this.opts.policy === 'priority' ? 'priority uses no access signal' : 'access signal turned off: fair splits by round robin';
    }
  }

  /** One read-out / decide / move round. */
  async round(): Promise<PlacementRound> {
    const cpu0 = process.cpuUsage();
    const pids = this.instances.map((i) => i.pid);
    const walk = await this.exec.run([this.opts.nodeBinary ?? 'node', '-e', KSM_PAGES_SCRIPT, '--', '--sharers', String(this.pageSize), ...pids.map(String)], {
      allowFailure: true,
      timeoutMs: this.opts.timeoutMs,
    });
    if (walk.exitCode !== 0) throw new HarnessError('unsupported', `placement read-out failed on ${this.exec.target} (needs root, node, /proc/kpageflags): ${walk.stderr.trim().split('\n').slice(-2).join(' ')}`);
    const snap = parseSharersOutput(walk.stdout);
    if (snap.nodes.length > 0) this.nodes = snap.nodes;
    const nodeCount = Math.max(2, ...this.nodes.map((n) => n + 1), ...this.instances.map((i) => i.node + 1));
    if (this.damon) {
      this.damonHistory.push(await this.damon.read());
      if (this.damonHistory.length > DAMON_WINDOW) this.damonHistory.shift();
    }
    const history = this.damon ? this.damonHistory : null;
    // An instance whose kdamond gave no regions in any read of the window has no signal (not "inactive").
    const signalMissing = history ? this.instances.map((_, idx) => history.every((regions) => (regions[idx]?.length ?? 0) === 0)) : this.instances.map(() => false);
    let cpuS = snap.cpuS;

    const examinedByNode: Record<number, number> = {};
    const misplacedMoves: PlannedMove[] = [];
    let deferred = 0;
    for (const page of snap.pages) {
      examinedByNode[page.node] = (examinedByNode[page.node] ?? 0) + 1;
      if (page.maps.some(([idx]) => signalMissing[idx])) {
        deferred++;
        continue;
      }
      const sharers: PageSharer[] = [];
      const firstVpn = new Map<number, number>();
      for (const [idx, vpn] of page.maps) {
        if (firstVpn.has(idx)) continue;
        firstVpn.set(idx, vpn);
        const inst = this.instances[idx]!;
        const active = history ? page.maps.some(([i, v]) => i === idx && history.some((regions) => accessedAt(regions[idx]!, v * this.pageSize))) : false;
        sharers.push({ instance: idx, node: inst.node, active, snice: sniceOf(this.nices[idx]!) });
      }
      sharers.sort((a, b) => a.instance - b.instance);
      const [keyIdx, keyVpn] = page.maps[0]!;
      const key = `${keyIdx}:${keyVpn}`;
      const signature = sharers.map((s) => `${s.instance}${s.active ? 'a' : 'i'}`).join(',');
      let d = this.decisions.get(key);
      if (!d || d.signature !== signature) {
        d = { signature, node: sharers[decideSharerNode(this.opts.policy, sharers, this.rr, nodeCount, this.rng)]!.node };
        this.decisions.set(key, d);
      }
      if (d.node !== page.node) {
        const inst = this.instances[keyIdx]!;
        misplacedMoves.push({ instance: inst.name, pid: inst.pid, address: keyVpn * this.pageSize, fromNode: page.node, toNode: d.node });
      }
    }

    // Rate limit: tokens refill at pagesPerSecond, at most one second's worth saved up.
    const now = Date.now();
    this.tokens = Math.min(this.opts.pagesPerSecond, this.tokens + ((now - this.lastRefillMs) / 1000) * this.opts.pagesPerSecond);
    this.lastRefillMs = now;
    const planned = misplacedMoves.slice(0, Math.max(0, Math.floor(this.tokens)));
    this.tokens -= planned.length;

    let moved = 0;
    let failed = 0;
    if (!this.opts.dryRun && planned.length > 0) {
      const input = planned.map((m) => `${m.pid} ${m.address.toString(16)} ${m.toNode}`).join('\n') + '\n';
      const r = await this.exec.run([this.opts.helper!], { input, allowFailure: true, timeoutMs: this.opts.timeoutMs });
      if (r.exitCode !== 0) throw new HarnessError('unsupported', `move_pages helper failed on ${this.exec.target}: ${r.stderr.trim().split('\n').slice(-2).join(' ')}`);
      const res = parseMoveOutput(r.stdout);
      moved = res.moved;
      failed = res.failed;
      cpuS += res.cpuS;
      for (const m of planned) {
        if (res.statuses.get(`${m.pid} ${m.address.toString(16)}`) === m.toNode) this.movedByNode[m.toNode] = (this.movedByNode[m.toNode] ?? 0) + 1;
      }
    }
    const cpu = process.cpuUsage(cpu0);
    cpuS += (cpu.user + cpu.system) / 1e6;
    this.movedTotal += moved;
    this.cpuTotalS += cpuS;
    const round: PlacementRound = { t: (Date.now() - this.startMs) / 1000, examined: snap.pages.length, examinedByNode, misplaced: misplacedMoves.length, deferred, planned, moved, failed, cpuS };
    this.rounds.push(round);
    const damonNote = history ? `; DAMON ${history.at(-1)!.map((regions, i) => `${this.instances[i]!.name} ${describeCoverage(coverageOf(regions))}`).join(', ')}` : '';
    this.log(`placement round ${this.rounds.length}: examined ${round.examined}, misplaced ${round.misplaced}, deferred ${deferred}, moved ${moved}, failed ${failed}, cpu ${cpuS.toFixed(2)} s${damonNote}`);
    return round;
  }

  /** Rounds until aborted (rounds spaced by periodMs and by the CPU budget). */
  async run(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      const t0 = Date.now();
      const r = await this.round();
      const waitMs = Math.max(this.opts.periodMs - (Date.now() - t0), (r.cpuS / this.opts.cpuBudget) * 1000 - (Date.now() - t0));
      if (signal.aborted) break;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.max(0, waitMs));
        signal.addEventListener('abort', () => (clearTimeout(timer), resolve()), { once: true });
      });
    }
  }

  /** Rounds until one finds nothing to move (or maxRounds); returns seconds from start() to that round. */
  async converge(maxRounds = 20): Promise<number | null> {
    for (let i = 0; i < maxRounds; i++) {
      const r = await this.round();
      if (r.misplaced === 0 && r.deferred === 0 && r.examined > 0) return r.t;
    }
    return null;
  }

  async stop(): Promise<void> {
    if (this.refresh) {
      await this.refresh.stop();
      this.refresh = null;
    }
    if (this.damon) {
      const cpu = await this.damon.cpuSeconds();
      this.log(`placement engine: kdamonds used ${cpu.toFixed(2)} CPU s`);
      await this.damon.stop();
      this.damon = null;
    }
  }

  /** What the engine did, as once-per-step samples (instance 'host'). */
  samples(): Sample[] {
    const out: Sample[] = [];
    const last = this.rounds.at(-1);
    const nodes = [...new Set([...this.nodes, ...this.instances.map((i) => i.node)])].sort((a, b) => a - b);
    for (const n of nodes) {
      out.push(makeSample('host', '', 'placement_pages_examined', last?.examinedByNode[n] ?? 0, null, n));
      out.push(makeSample('host', '', 'placement_pages_moved', this.movedByNode[n] ?? 0, null, n));
    }
    out.push(makeSample('host', '', 'placement_mib_moved', (this.movedTotal * this.pageSize) / MIB, null));
    out.push(makeSample('host', '', 'placement_cpu_s', this.cpuTotalS, null));
    out.push(makeSample('host', '', 'placement_rounds', this.rounds.length, null));
    out.push(makeSample('host', '', 'placement_access_signal', ACCESS_SIGNAL_CODE[this.signal], null));
    out.push(makeSample('host', '', 'placement_access_bit_refresh_ms', this.signal === 'damon' ? (this.opts.accessBitRefresh?.periodMs ?? 0) : 0, null));
    return out;
  }
}
