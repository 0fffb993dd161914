// Pass-by-pass check of the model against a real kernel without KSM tracepoints (Linux 6.1) or with
// them (6.12): a scenario (instances, their page contents, registration points, writes, exits) is run
// by a small driver on the machine (src/host/ksm/scenario-driver/ksm-scenario.c), which stops ksmd at every
// full_scans increment (and at pinned rmap_item counts inside the first pass) and records every KSM
// counter and, per live instance, each page's pfn and its KPF_KSM bit. The same scenario is replayed
// in the model, stopped at the same points, and compared: every counter, and per page whether it is
// merged, which page's physical copy it maps (the survivor: the pfn traced back to the page that held
// it when it was registered or last written) and that copy's node. Equal page states at every pass end
// mean the same merges (pair, kind) happened in the same pass with the same survivor.
//
// The log format (one JSON object per line, the driver's stdout) is documented in ksm-scenario.c.

import { U32IntMap } from './hash.ts';
import { KsmModel } from './model.ts';
import { NOT_PRESENT, type CompareOrder, type KsmModelConfig } from './types.ts';

/** After the batch that ends pass n, or after ksmd's n-th batch (a pinned cursor position). */
export type ScenarioTrigger = { pass: number } | { batch: number };
export type ScenarioAction =
  | { kind: 'register'; proc: number }
  | { kind: 'write'; proc: number; page: number; content: number }
  | { kind: 'exit'; proc: number };

export interface KsmScenario {
  name: string;
  /** Scenario family of issue 13 (1 = ksmd after all registered, 2 = registration mid-pass, ...). */
  family: number;
  /** KSM knobs written before ksmd starts (sysfs names). */
  knobs: { pages_to_scan: number; merge_across_nodes: 0 | 1; max_page_sharing: number; smart_scan?: 0 | 1; stable_node_chains_prune_millisecs?: number };
  /** Instances: node and one content id (> 0) per page. */
  procs: Array<{ node: number; contents: number[] }>;
  /** Instances registered before ksmd starts, in this order. */
  initial: number[];
  events: Array<{ at: ScenarioTrigger; action: ScenarioAction }>;
  /** Last pass end recorded. */
  endPass: number;
}

/** The driver's script for a scenario (stdin of ksm-scenario). */
export function scenarioScript(s: KsmScenario, opts: { smartScanKnob: boolean }): string {
  const lines: string[] = [];
  for (const [k, v] of Object.entries(s.knobs)) {
    if (v === undefined) continue;
    if (k === 'smart_scan' && !opts.smartScanKnob) continue;
    lines.push(`knob ${k} ${v}`);
  }
  s.procs.forEach((p, i) => {
    for (const c of p.contents) if (!(Number.isInteger(c) && c > 0 && c < NOT_PRESENT)) throw new RangeError(`scenario ${s.name}: proc ${i} content ${c} not in 1..2^32-2`);
    lines.push(`proc ${i} ${p.node} ${p.contents.join(' ')}`);
  });
  for (const i of s.initial) lines.push(`register ${i}`);
  for (const e of s.events) {
    const at = 'pass' in e.at ? `at pass ${e.at.pass}` : `at batch ${e.at.batch}`;
    const a = e.action;
    lines.push(a.kind === 'write' ? `${at} write ${a.proc} ${a.page} ${a.content}` : `${at} ${a.kind} ${a.proc}`);
  }
  lines.push(`end ${s.endPass}`);
  return `${lines.join('\n')}\n`;
}

export type KernelRecord =
  | { t: 'reg'; i: number; pid: number; node: number; pfn: number[] }
  | { t: 'write'; i: number; page: number; content: number; pfn: number }
  | { t: 'exit'; i: number }
  // procs: the driver gives kpageflags (kpf); a trace file (src/policy/trace-file.ts) gives the KSM bit
  // itself (ksm), and may leave procs out of a stop (counters only).
  | { t: 'snap'; at: 'pass' | 'batch'; n: number; b: number; c: Record<string, number>; procs?: Array<{ i: number; pfn: number[]; kpf?: string[]; ksm?: number[]; cnt?: number[] }> }
  | { t: 'end' }
  | { t: 'error'; why: string };

export function parseScenarioLog(text: string): KernelRecord[] {
  const out: KernelRecord[] = [];
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    const r = JSON.parse(line) as KernelRecord;
    if (r.t === 'error') throw new Error(`ksm-scenario: ${r.why}`);
    out.push(r);
  }
  if (out.at(-1)?.t !== 'end') throw new Error('ksm-scenario log does not end with {"t":"end"} (driver killed or timed out)');
  return out;
}

const KPF_ANON = 12n;
const KPF_KSM = 21n;
/** KPF_MAPPEDTODISK: for an anonymous page this bit is PG_anon_exclusive (5.19+), never set on a KSM page. */
const KPF_ANON_EXCLUSIVE = 34n;

/**
 * Whether a /proc/kpageflags word (hex) is a KSM page. KPF_KSM alone is not enough on 6.9+: since
 * stable_page_flags() was rewritten for folios (fs/proc/page.c) it tests `mapping & PAGE_MAPPING_KSM`,
 * which is non-zero for every anonymous page (PAGE_MAPPING_KSM = ANON | MOVABLE), so 6.12 reports
 * every anonymous page as KSM. A KSM page is never anon-exclusive, and in these scenarios (no fork after
 * the instances fill their memory) every other anonymous page is, so KPF_KSM && !anon-exclusive is exact
 * on both kernels (on 6.1 KPF_KSM is already exact).
 */
export function isKsmPage(kpfHex: string): boolean {
  const f = BigInt(`0x${kpfHex}`);
  return ((f >> KPF_KSM) & 1n) === 1n && ((f >> KPF_ANON) & 1n) === 1n && ((f >> KPF_ANON_EXCLUSIVE) & 1n) === 0n;
}

/** Counters compared at every stop (sysfs names; the model's pages_skipped only with smart scan). */
export const COMPARED_COUNTERS = ['pages_shared', 'pages_sharing', 'pages_unshared', 'pages_volatile', 'full_scans'] as const;

export interface PageState {
  ksm: boolean;
  /** Instance and page whose physical copy this page maps (itself when not merged). */
  owner: string;
  node: number;
}

export interface StopComparison {
  at: 'pass' | 'batch';
  n: number;
  /** ksmd batches (wake-ups) before this stop: kernel, model. */
  batches: { kernel: number; model: number };
  counters: { kernel: Record<string, number>; model: Record<string, number>; equal: boolean };
  pages: number;
  samePages: number;
  /** First few differing pages. */
  diffs: Array<{ proc: number; page: number; kernel: PageState; model: PageState }>;
}

export interface ScenarioComparison {
  name: string;
  family: number;
  stops: StopComparison[];
  countersExact: number;
  pagesCompared: number;
  pagesExact: number;
  /** True when every counter and every page agreed at every stop. */
  exact: boolean;
  model: KsmModel;
  /** Model mm id -> instance index. */
  procOfMm: number[];
}

/** Whether a Linux release ("6.12.95+deb12-cloud-amd64") is at least maj.min; null when it is not a Linux release. */
export function releaseAtLeast(release: string, maj: number, min: number): boolean | null {
  const m = /^(\d+)\.(\d+)/.exec(release);
  if (!m) return null;
  const [a, b] = [Number(m[1]), Number(m[2])];
  return a > maj || (a === maj && b >= min);
}

/** The comparison order of a kernel release: the checksum gate moved before the stable-tree search in 6.11. */
export function compareOrderOf(release: string): CompareOrder {
  return releaseAtLeast(release, 6, 11) ? 'from-6.11' : 'upto-6.10';
}

/** Model configuration for a scenario on a kernel release (comparison order and smart scan follow the kernel). */
export function scenarioModelConfig(s: KsmScenario, release: string, base: KsmModelConfig): KsmModelConfig {
  return {
    ...base,
    pagesToScan: s.knobs.pages_to_scan,
    sleepMillisecs: 20, // the driver steps ksmd batch by batch; time only matters for chain pruning (0 or huge in scenarios)
    mergeAcrossNodes: s.knobs.merge_across_nodes === 1,
    maxPageSharing: s.knobs.max_page_sharing,
    compareOrder: compareOrderOf(release),
    smartScan: s.knobs.smart_scan === 1,
    policy: 'ksm',
    forestPagesPerTree: null,
    chainPruneMillisecs: s.knobs.stable_node_chains_prune_millisecs ?? base.chainPruneMillisecs,
  };
}

/**
 * pfn -> non-negative int map on the model's hash maps (a JS Map of millions of pfns costs several times more).
 * A pfn may exceed 2^32 (model recordings put node n's pages at n * 2^32 + k): one map per 2^32 pfns.
 */
class PfnMap {
  private readonly parts = new Map<number, U32IntMap>();

  set(pfn: number, value: number): void {
    const hi = Math.floor(pfn / 0x100000000);
    let m = this.parts.get(hi);
    if (m === undefined) {
      m = new U32IntMap();
      this.parts.set(hi, m);
    }
    m.set(pfn - hi * 0x100000000, value);
  }

  /** The value, or -1. */
  get(pfn: number): number {
    const hi = Math.floor(pfn / 0x100000000);
    const m = this.parts.get(hi);
    return m === undefined ? -1 : m.get(pfn - hi * 0x100000000);
  }
}

/**
 * Replays a recorded scenario run in the model and compares it at every stop the driver recorded.
 * nodeOfPfn maps a pfn to its node (memory-block layout of the machine).
 */
export function compareScenario(
  s: KsmScenario,
  log: readonly KernelRecord[],
  config: KsmModelConfig,
  nodeOfPfn: (pfn: number) => number,
  maxDiffs = 8,
  /** Called with the model before the replay, and the model mm id -> instance index map it fills as instances register. */
  onModel?: (model: KsmModel, procOfMm: readonly number[]) => void,
): ScenarioComparison {
  const model = new KsmModel(config);
  const mmOfProc = new Map<number, number>();
  const procOfMm: number[] = [];
  onModel?.(model, procOfMm);
  // Pages are numbered across instances (instance i's page k = pageBase[i] + k) so that the pfn -> owner map
  // and the per-page comparison hold small integers instead of "i:k" strings: a large recording has millions.
  const pageBase: number[] = [];
  let pages = 0;
  for (const p of s.procs) {
    pageBase.push(pages);
    pages += p.contents.length;
  }
  const ownerName = (code: number): string => {
    let i = pageBase.length - 1;
    while (pageBase[i]! > code) i--;
    return `${i}:${code - pageBase[i]!}`;
  };
  const owners = new PfnMap(); // pfn -> page (pageBase numbering) that held it when registered / written
  const stops: StopComparison[] = [];
  let guard = 0;
  let wakes = 0;
  const wake = () => {
    model.wake();
    wakes++;
  };
  const modelCounters = (): Record<string, number> => {
    const c = model.counters();
    const out: Record<string, number> = { pages_shared: c.pagesShared, pages_sharing: c.pagesSharing, pages_unshared: c.pagesUnshared, pages_volatile: c.pagesVolatile, full_scans: c.fullScans };
    if (config.smartScan) out.pages_skipped = model.pagesSkipped;
    return out;
  };
  for (const r of log) {
    if (r.t === 'reg') {
      const p = s.procs[r.i]!;
      const contents = Uint32Array.from(p.contents);
      const nodes = new Uint8Array(r.pfn.length);
      const base = pageBase[r.i]!;
      for (let k = 0; k < r.pfn.length; k++) {
        const pfn = r.pfn[k]!;
        if (pfn < 0) {
          contents[k] = NOT_PRESENT;
          nodes[k] = p.node;
        } else {
          owners.set(pfn, base + k);
          nodes[k] = nodeOfPfn(pfn);
        }
      }
      const id = model.registerMm({ name: `proc-${r.i}`, nice: 0, contents, nodes, active: new Uint8Array(contents.length) });
      mmOfProc.set(r.i, id);
      procOfMm[id] = r.i;
    } else if (r.t === 'write') {
      model.writePage(mmOfProc.get(r.i)!, r.page, r.content);
      owners.set(r.pfn, pageBase[r.i]! + r.page);
    } else if (r.t === 'exit') {
      model.unregisterMm(mmOfProc.get(r.i)!);
      mmOfProc.delete(r.i);
    } else if (r.t === 'snap') {
      if (r.at === 'pass') {
        while (model.counters().fullScans < r.n && ++guard < 1e7) wake();
      } else {
        while (wakes < r.n && ++guard < 1e7) wake();
      }
      const mc = modelCounters();
      const kc: Record<string, number> = {};
      for (const k of Object.keys(mc)) kc[k] = r.c[k] ?? NaN;
      const equal = Object.keys(mc).every((k) => mc[k] === kc[k]) && r.b === wakes;
      const stop: StopComparison = { at: r.at, n: r.n, batches: { kernel: r.b, model: wakes }, counters: { kernel: kc, model: mc, equal }, pages: 0, samePages: 0, diffs: [] };
      if (r.procs === undefined) {
        stops.push(stop);
        continue;
      }
      const live = new Set(r.procs.map((p) => p.i));
      for (const [proc] of mmOfProc) {
        if (!live.has(proc)) {
          stop.pages += s.procs[proc]!.contents.length;
          stop.diffs.push({ proc, page: -1, kernel: { ksm: false, owner: 'gone', node: -1 }, model: { ksm: false, owner: 'live', node: -1 } });
        }
      }
      for (const kp of r.procs) {
        const mm = mmOfProc.get(kp.i);
        const n = kp.pfn.length;
        stop.pages += n;
        for (let page = 0; page < n; page++) {
          // Both sides as (ksm, owner page, node); owner -1: no page; -2: a pfn no page held; -3: instance not registered.
          const pfn = kp.pfn[page]!;
          const kKsm = pfn >= 0 && (kp.ksm ? kp.ksm[page] === 1 : isKsmPage(kp.kpf![page]!));
          const held = pfn < 0 ? -1 : owners.get(pfn);
          const kOwner = pfn < 0 ? -1 : held < 0 ? -2 : held;
          const kNode = pfn < 0 ? -1 : nodeOfPfn(pfn);
          let mKsm = false;
          let mOwner = -3;
          let mNode = -1;
          if (mm !== undefined) {
            const o = model.pageOwner(mm, page);
            if (o === null) mOwner = -1;
            else {
              mKsm = model.isMerged(mm, page);
              mOwner = pageBase[procOfMm[o.mm]!]! + o.page;
              mNode = model.pageNode(mm, page);
            }
          }
          if (kKsm === mKsm && kOwner === mOwner && kNode === mNode) stop.samePages++;
          else if (stop.diffs.length < maxDiffs) {
            const name = (code: number) => (code === -1 ? 'none' : code === -2 ? `pfn ${pfn}` : code === -3 ? 'not registered' : ownerName(code));
            stop.diffs.push({ proc: kp.i, page, kernel: { ksm: kKsm, owner: name(kOwner), node: kNode }, model: { ksm: mKsm, owner: name(mOwner), node: mNode } });
          }
        }
      }
      stops.push(stop);
    }
  }
  const countersExact = stops.filter((x) => x.counters.equal).length;
  const pagesCompared = stops.reduce((a, x) => a + x.pages, 0);
  const pagesExact = stops.reduce((a, x) => a + x.samePages, 0);
  return { name: s.name, family: s.family, stops, countersExact, pagesCompared, pagesExact, exact: countersExact === stops.length && pagesExact === pagesCompared, model, procOfMm };
}
