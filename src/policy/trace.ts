// Merge-by-merge check of the model against a real kernel: parse the text of /sys/kernel/tracing/trace
// with the ksm events enabled (Linux 6.3+; set options/hash-ptr to 0 for raw pointers, or keep the hashed
// ones, which are stable within a boot) and compare the merges with the model's MergeEvents.
//
// What a merge looks like in the trace (ksm-internals §3.3):
// - unstable-tree merge: E1 `ksm_merge_with_ksm_page: pfn P ... mm Ms error 0` (no "ksm " prefix: the
//   scanned page P of mm Ms became the KSM page in place), then E2 `ksm pfn P ... mm Mt error e`
//   (the tree page's mm now maps P). e != 0 means the kernel undid E1 with break_cow: no merge.
// - stable-tree hit: one `ksm pfn K ... mm Ms error 0` line not preceded by an E1 with the same pfn.
// The surviving copy's node is the node of P (or K); the discarded page is not traced.

import { KsmModel } from './model.ts';
import { NOT_PRESENT, type KsmModelConfig, type MergeEvent, type MmRegistration } from './types.ts';

export interface TraceLine {
  comm: string;
  pid: number;
  cpu: number;
  timestamp: number;
  event: string;
  body: string;
}

export interface KernelMerge {
  kind: 'stable' | 'unstable';
  timestamp: number;
  /** pfn of the surviving (KSM) page. */
  pfn: number;
  /** mm pointer of the page being scanned (E1's mm, or the stable hit's mm). */
  scannedMm: string;
  /** mm pointer of the unstable-tree page's owner (E2's mm); null for a stable hit. */
  otherMm: string | null;
}

export interface KsmEnter {
  mm: string;
  pid: number;
  comm: string;
  timestamp: number;
}

export interface ParsedKsmTrace {
  enters: KsmEnter[];
  exits: KsmEnter[];
  merges: KernelMerge[];
  /** ksm_merge_with_ksm_page calls with error != 0 (including E2 failures that undid an E1). */
  failedMerges: number;
  /** Pass boundaries: ksm_start_scan / ksm_stop_scan seq numbers with their timestamps. */
  scans: Array<{ kind: 'start' | 'stop'; seq: number; timestamp: number }>;
  /** Non-comment lines that did not parse as trace events, or ksm events with an unexpected body. */
  unparsed: string[];
}

// "<comm>-<pid> [(<tgid>)] [<cpu>] [<flags>] <timestamp>: <event>: <body>"
const LINE = /^\s*(.*?)-(\d+)\s+(?:\(\s*[-\d]+\)\s+)?\[(\d+)\]\s+(?:\S+\s+)?(\d+\.\d+):\s+(\w+):\s?(.*)$/;
const MERGE_BODY = /^(ksm )?pfn (\d+) rmap_item (\S+) mm (\S+) error (-?\d+)$/;
const MM_BODY = /^mm (\S+)$/;
const SCAN_BODY = /^seq (-?\d+) rmap size (\d+)$/;

export function parseTraceLine(line: string): TraceLine | null {
  const m = LINE.exec(line);
  if (!m) return null;
  return { comm: m[1], pid: Number(m[2]), cpu: Number(m[3]), timestamp: Number(m[4]), event: m[5], body: m[6].trim() };
}

export function parseKsmTrace(text: string): ParsedKsmTrace {
  const out: ParsedKsmTrace = { enters: [], exits: [], merges: [], failedMerges: 0, scans: [], unparsed: [] };
  let pendingE1: { pfn: number; mm: string; timestamp: number } | null = null;
  for (const raw of text.split('\n')) {
    if (raw.trim() === '' || raw.startsWith('#')) continue;
    const line = parseTraceLine(raw);
    if (!line) {
      out.unparsed.push(raw);
      continue;
    }
    switch (line.event) {
      case 'ksm_enter':
      case 'ksm_exit': {
        const m = MM_BODY.exec(line.body);
        if (!m) out.unparsed.push(raw);
        else (line.event === 'ksm_enter' ? out.enters : out.exits).push({ mm: m[1], pid: line.pid, comm: line.comm, timestamp: line.timestamp });
        break;
      }
      case 'ksm_start_scan':
      case 'ksm_stop_scan': {
        const m = SCAN_BODY.exec(line.body);
        if (!m) out.unparsed.push(raw);
        else out.scans.push({ kind: line.event === 'ksm_start_scan' ? 'start' : 'stop', seq: Number(m[1]), timestamp: line.timestamp });
        break;
      }
      case 'ksm_merge_with_ksm_page': {
        const m = MERGE_BODY.exec(line.body);
        if (!m) {
          out.unparsed.push(raw);
          break;
        }
        const withKsm = m[1] !== undefined;
        const pfn = Number(m[2]);
        const mm = m[4];
        const err = Number(m[5]);
        if (!withKsm) {
          // E1 of an unstable merge. An E1 still pending here had no E2, which the kernel never emits.
          if (pendingE1) out.unparsed.push(`(E1 without E2 at ${pendingE1.timestamp})`);
          pendingE1 = null;
          if (err !== 0) out.failedMerges++;
          else pendingE1 = { pfn, mm, timestamp: line.timestamp };
          break;
        }
        if (pendingE1 && pendingE1.pfn === pfn) {
          if (err !== 0) out.failedMerges++; // break_cow undid E1
          else out.merges.push({ kind: 'unstable', timestamp: pendingE1.timestamp, pfn, scannedMm: pendingE1.mm, otherMm: mm });
          pendingE1 = null;
          break;
        }
        if (pendingE1) {
          out.unparsed.push(`(E1 without E2 at ${pendingE1.timestamp})`);
          pendingE1 = null;
        }
        if (err !== 0) out.failedMerges++;
        else out.merges.push({ kind: 'stable', timestamp: line.timestamp, pfn, scannedMm: mm, otherMm: null });
        break;
      }
      default:
        break; // other ksm events (remove_ksm_page, remove_rmap_item, advisor) do not describe merges
    }
  }
  if (pendingE1) out.unparsed.push(`(E1 without E2 at ${pendingE1.timestamp})`);
  return out;
}

/**
 * mm pointer -> model mm id, from the ksm_enter lines: `mmIdOfPid` maps the registering task's pid
 * (for QEMU, the thread that allocated guest RAM; a forked child appears under its parent) to a model mm.
 */
export function mmIdsFromEnters(trace: ParsedKsmTrace, mmIdOfPid: ReadonlyMap<number, number>): Map<string, number> {
  const byPtr = new Map<string, number>();
  for (const e of trace.enters) {
    const id = mmIdOfPid.get(e.pid);
    if (id !== undefined) byPtr.set(e.mm, id);
  }
  return byPtr;
}

/** pfn -> node from the memory-block layout (/sys/devices/system/memory/block_size_bytes and nodeN/memoryB links). */
export function nodeOfPfnFromMemoryBlocks(blockSizeBytes: number, nodeOfBlock: ReadonlyMap<number, number>, pageSize = 4096): (pfn: number) => number {
  const pagesPerBlock = blockSizeBytes / pageSize;
  return (pfn) => {
    const node = nodeOfBlock.get(Math.floor(pfn / pagesPerBlock));
    if (node === undefined) throw new RangeError(`pfn ${pfn}: memory block ${Math.floor(pfn / pagesPerBlock)} belongs to no known node`);
    return node;
  };
}

export interface MergeMismatch {
  index: number;
  field: 'kind' | 'scannedMm' | 'otherMm' | 'keptNode';
  kernel: { kind: string; scannedMm: number | null; otherMm: number | null; keptNode: number };
  model: { kind: string; scannedMm: number; otherMm: number | null; keptNode: number };
}

export interface MergeComparison {
  kernelMerges: number;
  modelMerges: number;
  /** Merges compared position by position (the shorter sequence's length). */
  compared: number;
  /** Positions where kind, scanned mm, other mm (unstable merges) and kept node all agree. */
  agreeing: number;
  /** First few disagreements, in order. */
  mismatches: MergeMismatch[];
  /** Per model mm: how many merges of pages scanned in that mm kept the copy on each node, kernel vs model. */
  keptNodeByScannedMm: Map<number, { kernel: number[]; model: number[] }>;
}

/**
 * Compares the kernel's merges with the model's, in order. Only meaningful when the model was driven with
 * the same registrations, page contents and scan parameters as the traced processes.
 */
export function compareMerges(
  kernel: readonly KernelMerge[],
  model: readonly MergeEvent[],
  mmIdOfPtr: ReadonlyMap<string, number>,
  nodeOfPfn: (pfn: number) => number,
  nodes: number,
  maxMismatches = 20,
): MergeComparison {
  const result: MergeComparison = {
    kernelMerges: kernel.length,
    modelMerges: model.length,
    compared: Math.min(kernel.length, model.length),
    agreeing: 0,
    mismatches: [],
    keptNodeByScannedMm: new Map(),
  };
  const tally = (mm: number | null | undefined, node: number, side: 'kernel' | 'model'): void => {
    if (mm === null || mm === undefined) return;
    let entry = result.keptNodeByScannedMm.get(mm);
    if (!entry) {
      entry = { kernel: new Array<number>(nodes).fill(0), model: new Array<number>(nodes).fill(0) };
      result.keptNodeByScannedMm.set(mm, entry);
    }
    entry[side][node]++;
  };
  for (const k of kernel) tally(mmIdOfPtr.get(k.scannedMm), nodeOfPfn(k.pfn), 'kernel');
  for (const e of model) tally(e.scannedMm, e.keptNode, 'model');
  for (let i = 0; i < result.compared; i++) {
    const k = kernel[i];
    const e = model[i];
    const kView = {
      kind: k.kind,
      scannedMm: mmIdOfPtr.get(k.scannedMm) ?? null,
      otherMm: k.otherMm === null ? null : (mmIdOfPtr.get(k.otherMm) ?? null),
      keptNode: nodeOfPfn(k.pfn),
    };
    const mView = { kind: e.kind, scannedMm: e.scannedMm, otherMm: e.kind === 'unstable' ? (e.keptMm === e.scannedMm ? e.otherMm : e.keptMm) : null, keptNode: e.keptNode };
    let field: MergeMismatch['field'] | null = null;
    if (kView.kind !== mView.kind) field = 'kind';
    else if (kView.scannedMm !== mView.scannedMm) field = 'scannedMm';
    else if (kView.otherMm !== mView.otherMm) field = 'otherMm';
    else if (kView.keptNode !== mView.keptNode) field = 'keptNode';
    if (field === null) result.agreeing++;
    else if (result.mismatches.length < maxMismatches) result.mismatches.push({ index: i, field, kernel: kView, model: mView });
  }
  return result;
}

// ------------------------------------------------------------------ real-machine inputs (emulated testbed)

/**
 * Memory block -> node from the `ls -d /sys/devices/system/node/node*\/memory*` listing (one path per
 * line, or whitespace-separated).
 */
export function parseNodeMemoryLinks(listing: string): Map<number, number> {
  const out = new Map<number, number>();
  for (const m of listing.matchAll(/node(\d+)\/memory(\d+)\b/g)) out.set(Number(m[2]), Number(m[1]));
  return out;
}

/**
 * /proc/PID/pagemap entries as printed by `od -An -v -tx8` (16 hex digits each): the pfn of each page
 * (bits 0-54) when present (bit 63), else -1. Needs root (pfns read as 0 otherwise: rejected).
 */
export function parsePagemapWords(odHex: string): number[] {
  const out: number[] = [];
  for (const w of odHex.split(/\s+/)) {
    if (w === '') continue;
    const v = BigInt(`0x${w}`);
    if (!(v >> 63n)) {
      out.push(-1);
      continue;
    }
    const pfn = Number(v & ((1n << 55n) - 1n));
    if (pfn === 0) throw new RangeError('pagemap: present page with pfn 0 (pfns are hidden from non-root readers)');
    out.push(pfn);
  }
  return out;
}

/**
 * pfn -> (model mm id, page index) of the page that held that pfn before it merged, from pagemaps read
 * before each mm's pages merged, given in the order they were read. A pfn found again in a later read
 * belongs to the later reader: the earlier page was freed in between (a discarded copy of a merge).
 */
export function pageOwnersFromPagemaps(pfnsByMm: ReadonlyMap<number, readonly number[]>): Map<number, { mm: number; page: number }> {
  const out = new Map<number, { mm: number; page: number }>();
  for (const [mm, pfns] of pfnsByMm) {
    pfns.forEach((pfn, page) => {
      if (pfn < 0) return;
      if (out.get(pfn)?.mm === mm) throw new RangeError(`pagemap: pfn ${pfn} mapped twice by mm ${mm} before merging`);
      out.set(pfn, { mm, page });
    });
  }
  return out;
}

export interface KeptPageComparison {
  compared: number;
  /** Positions where the kernel's surviving page (mm, page index) is the model's keptMm/keptPage. */
  sameKeptPage: number;
  /** Kernel merges whose pfn was no known page before merging (should be 0). */
  unknownPfns: number;
  mismatches: Array<{ index: number; kernel: { mm: number; page: number } | null; model: { mm: number; page: number } }>;
}

/**
 * Which physical page survived, merge by merge: the kernel's pfn is traced to the (mm, page) that held it
 * before KSM ran, and compared with the model's kept page. Stronger than the kept node: it also checks the
 * scan order inside each mm (address order) and that the kernel keeps the scanned page of an unstable match.
 */
export function compareKeptPages(
  kernel: readonly KernelMerge[],
  model: readonly MergeEvent[],
  owners: ReadonlyMap<number, { mm: number; page: number }>,
  maxMismatches = 20,
): KeptPageComparison {
  const out: KeptPageComparison = { compared: Math.min(kernel.length, model.length), sameKeptPage: 0, unknownPfns: 0, mismatches: [] };
  for (const k of kernel) if (!owners.has(k.pfn)) out.unknownPfns++;
  for (let i = 0; i < out.compared; i++) {
    const k = owners.get(kernel[i].pfn) ?? null;
    const e = model[i];
    if (k && k.mm === e.keptMm && k.page === e.keptPage) out.sameKeptPage++;
    else if (out.mismatches.length < maxMismatches) out.mismatches.push({ index: i, kernel: k, model: { mm: e.keptMm, page: e.keptPage } });
  }
  return out;
}

/** Where ksmd was when an mm registered (its ksm_enter timestamp): passes ended before, and whether one was under way. */
export interface RegistrationPoint {
  afterPasses: number;
  midPass: boolean;
}

export function registrationPoint(trace: ParsedKsmTrace, timestamp: number): RegistrationPoint {
  let afterPasses = 0;
  let midPass = false;
  for (const s of trace.scans) {
    if (s.timestamp > timestamp) break;
    if (s.kind === 'stop') {
      afterPasses++;
      midPass = false;
    } else midPass = true;
  }
  return { afterPasses, midPass };
}

/**
 * Drives the model like the traced kernel: ksmd wake-ups of config.pagesToScan pages until `fullScans`
 * passes have ended (the trace's ksm_stop_scan count), each mm registered at its point in the scan
 * (registrationPoint of its ksm_enter). A registration in the middle of a pass is placed after the
 * pass's first wake-up: the trace does not say how far the pass had got, so where the mm lands in the
 * list (and whether the rest of that pass visits it: it does not, in both) is approximated. The
 * processes must not change their pages while KSM runs (the model is given one content per page).
 */
export function replayInModel(
  config: KsmModelConfig,
  mms: ReadonlyArray<{ reg: MmRegistration; at: RegistrationPoint }>,
  fullScans: number,
): { events: MergeEvent[]; model: KsmModel } {
  const model = new KsmModel(config);
  const events: MergeEvent[] = [];
  model.onMerge = (e) => events.push(e);
  let guard = 0;
  const wakeUntil = (passes: number) => {
    while (model.counters().fullScans < passes) {
      model.wake();
      if (++guard > 1e8) throw new Error('replayInModel: no progress');
    }
  };
  let startedPass = -1; // the pass a mid-pass registration already started (wakeUntil stops between passes)
  for (const { reg, at } of mms) {
    wakeUntil(at.afterPasses);
    const passes = model.counters().fullScans;
    if (at.midPass && passes === at.afterPasses && startedPass !== passes && model.scanOrder().length > 0) {
      model.wake();
      startedPass = passes;
    }
    model.registerMm(reg);
  }
  wakeUntil(fullScans);
  return { events, model };
}

/** One traced run on a real machine: everything needed to drive the model like the kernel and compare. */
export interface TracedRun {
  /** Text of /sys/kernel/tracing/trace with the ksm events (the whole run, KSM started after the trace was cleared). */
  traceText: string;
  /** Instance index -> pid (the task that registered its memory: its ksm_enter line). */
  pids: readonly number[];
  /** Instance index -> pfn per page (-1 = not present), each read before that instance's pages merged, in reading order. */
  pagemapsBefore: readonly (readonly number[])[];
  /** Instance index -> content id per page (equal ids = identical pages). */
  contents: readonly Uint32Array[];
  blockSizeBytes: number;
  /** `ls -d /sys/devices/system/node/node*\/memory*` */
  nodeMemoryLinks: string;
  /** The model's configuration (knobs as set in the kernel). */
  config: KsmModelConfig;
}

export interface TracedRunComparison {
  trace: ParsedKsmTrace;
  /** Instance indexes in ksm_enter order (= the model's mm ids, in order). */
  enterOrder: number[];
  registrationPoints: RegistrationPoint[];
  /** Node of each instance's pages before merging (instance index -> node per page). */
  nodesBefore: number[][];
  nodeOfPfn: (pfn: number) => number;
  /** Model merges with mm ids mapped to instance indexes. */
  events: MergeEvent[];
  model: KsmModel;
  merges: MergeComparison;
  keptPages: KeptPageComparison;
  /** Pass (ksm_stop_scan lines before it) of each kernel merge, and the model's fullScans at each merge. */
  kernelPasses: number[];
  modelPasses: number[];
  /** Positions with the same pass, and with the surviving copy on the same node. */
  samePass: number;
  sameKeptNode: number;
}

/**
 * Drives the model with the traced run's inputs (registration order and points from ksm_enter, per-page
 * nodes from the pre-merge pagemaps, the contents, the knobs, as many full scans as the trace has) and
 * compares its merges with the kernel's, merge by merge. Mm ids in the results are instance indexes.
 */
export function compareTracedRun(run: TracedRun): TracedRunComparison {
  const trace = parseKsmTrace(run.traceText);
  const pidIndex = new Map(run.pids.map((p, i) => [p, i]));
  const enters = trace.enters.filter((e) => pidIndex.has(e.pid));
  const enterOrder = enters.map((e) => pidIndex.get(e.pid)!);
  const nodeOfPfn = nodeOfPfnFromMemoryBlocks(run.blockSizeBytes, parseNodeMemoryLinks(run.nodeMemoryLinks));
  const nodesBefore = run.pagemapsBefore.map((pfns) => pfns.map((pfn) => (pfn < 0 ? 0 : nodeOfPfn(pfn))));
  const registrationPoints = enters.map((e) => registrationPoint(trace, e.timestamp));
  const mms = enters.map((e, k) => {
    const i = enterOrder[k]!;
    const contents = Uint32Array.from(run.contents[i]!);
    run.pagemapsBefore[i]!.forEach((pfn, p) => {
      if (pfn < 0) contents[p] = NOT_PRESENT;
    });
    const reg: MmRegistration = { name: `instance-${i}`, nice: 0, contents, nodes: Uint8Array.from(nodesBefore[i]!), active: new Uint8Array(contents.length) };
    return { reg, at: registrationPoints[k]! };
  });
  const stops = trace.scans.filter((s) => s.kind === 'stop');
  const { events: raw, model } = replayInModel(run.config, mms, stops.length);
  const inst = (id: number) => enterOrder[id]!;
  const events = raw.map((e) => ({ ...e, scannedMm: inst(e.scannedMm), keptMm: inst(e.keptMm), otherMm: inst(e.otherMm) }));
  const mmIds = mmIdsFromEnters(trace, pidIndex);
  const merges = compareMerges(trace.merges, events, mmIds, nodeOfPfn, run.config.nodes);
  const keptPages = compareKeptPages(trace.merges, events, pageOwnersFromPagemaps(new Map(run.pagemapsBefore.map((pfns, i) => [i, pfns]))));
  const kernelPasses = trace.merges.map((m) => stops.filter((s) => s.timestamp < m.timestamp).length);
  const modelPasses = events.map((e) => e.fullScans);
  let samePass = 0;
  let sameKeptNode = 0;
  for (let i = 0; i < merges.compared; i++) {
    if (kernelPasses[i] === modelPasses[i]) samePass++;
    if (nodeOfPfn(trace.merges[i]!.pfn) === events[i]!.keptNode) sameKeptNode++;
  }
  return { trace, enterOrder, registrationPoints, nodesBefore, nodeOfPfn, events, model, merges, keptPages, kernelPasses, modelPasses, samePass, sameKeptNode };
}
