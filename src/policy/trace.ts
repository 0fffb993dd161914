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

import type { MergeEvent } from './types.ts';

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
