// The nuksm KSM trace file (JSONL, format version 1; docs/trace.md): one recorded KSM scenario run, from
// a real kernel (the ksm-scenario driver) or from the reference model itself, so that anyone can replay
// it into the model (`nuksm trace replay`) and get the agreement report. Line 1 is the header; then, in
// the order they happened, registrations, writes, exits, stops (counters and page states) and merge
// events; the last line is {"t":"end"}. Every line is validated on read; errors name file, line and key.
import { readFileSync, writeFileSync } from 'node:fs';
import { z } from 'zod';
import { ConfigError } from '../core/errors.ts';
import { KsmModel, defaultKsmModelConfig } from './model.ts';
import { compareOrderOf, compareScenario, isKsmPage, scenarioModelConfig, type KernelRecord, type KsmScenario, type ScenarioComparison } from './scenario.ts';
import { nodeOfPfnFromMemoryBlocks, parseNodeMemoryLinks } from './trace.ts';
import type { CompareOrder, MergeEvent } from './types.ts';

export const TRACE_FORMAT = 'nuksm-ksm-trace';
export const TRACE_FORMAT_VERSION = 1;

const int = z.number().int();
const nat = int.nonnegative();
const pageRef = z.tuple([nat, nat]);

/**
 * z.array(elem) for the per-page arrays of a trace (millions of entries in a large recording): one plain loop
 * with `ok`, which accepts exactly what `elem` accepts; only an array that fails it goes through zod element by
 * element, to name the element and word the error. The parsed array is kept as it is (zod would copy it).
 */
function pageArray<T extends z.ZodTypeAny>(elem: T, ok: (x: unknown) => boolean): z.ZodType<Array<z.infer<T>>> {
  const exact = z.array(elem);
  return z.any().superRefine((v, ctx) => {
    if (Array.isArray(v)) {
      let k = 0;
      while (k < v.length && ok(v[k])) k++;
      if (k === v.length) return;
    }
    const r = exact.safeParse(v);
    if (!r.success) for (const issue of r.error.issues) ctx.addIssue(issue);
  });
}
const positives = pageArray(int.positive(), (x) => Number.isInteger(x) && (x as number) > 0);
const pfns = pageArray(int.min(-1), (x) => Number.isInteger(x) && (x as number) >= -1);
const ksmBits = pageArray(z.union([z.literal(0), z.literal(1)]), (x) => x === 0 || x === 1);

const knobsSchema = z
  .object({
    pages_to_scan: int.positive(),
    merge_across_nodes: z.union([z.literal(0), z.literal(1)]),
    max_page_sharing: int.min(2),
    smart_scan: z.union([z.literal(0), z.literal(1)]).optional(),
    stable_node_chains_prune_millisecs: nat.optional(),
  })
  .strict();

const triggerSchema = z.union([z.object({ pass: nat }).strict(), z.object({ batch: nat }).strict()]);
const actionSchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('register'), proc: nat }).strict(),
  z.object({ kind: z.literal('write'), proc: nat, page: nat, content: int.positive() }).strict(),
  z.object({ kind: z.literal('exit'), proc: nat }).strict(),
]);
const scenarioSchema = z
  .object({
    name: z.string().min(1),
    family: nat,
    knobs: knobsSchema,
    procs: z.array(z.object({ node: nat, contents: positives }).strict()).min(1),
    initial: z.array(nat),
    events: z.array(z.object({ at: triggerSchema, action: actionSchema }).strict()),
    endPass: nat,
  })
  .strict();

/** pfn -> node: the machine's memory blocks (sysfs), or explicit pfn ranges [start, end) (model recordings). */
const nodeMapSchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('memory-blocks'), blockSizeBytes: int.positive(), blocks: z.array(z.tuple([nat, nat])).min(1) }).strict(),
  z.object({ kind: z.literal('pfn-ranges'), ranges: z.array(z.tuple([nat, nat, nat])).min(1) }).strict(),
]);

export const traceHeaderSchema = z
  .object({
    t: z.literal('header'),
    format: z.literal(TRACE_FORMAT),
    version: z.literal(TRACE_FORMAT_VERSION),
    /** 'kernel': measured on a real kernel; 'model': produced by the reference model (never a measurement). */
    producer: z.enum(['kernel', 'model']),
    /** Free text: the testbed file / host it was recorded on, the nuksm version. */
    source: z.string(),
    /** uname -r of the recording kernel; for model recordings the kernel whose rules the model followed. */
    release: z.string().min(1),
    compareOrder: z.enum(['upto-6.10', 'from-6.11']),
    smartScanKnob: z.boolean(),
    knobs: knobsSchema,
    nodes: int.positive(),
    nodeMap: nodeMapSchema,
    scenario: scenarioSchema,
    /** Which stops carry page states: every stop, or only the last one (large recordings). */
    pageStates: z.enum(['every-stop', 'last-stop']),
  })
  .strict();
export type TraceHeader = z.infer<typeof traceHeaderSchema>;

const procState = z.object({ i: nat, pfn: pfns, ksm: ksmBits }).strict();
const counters = z.record(z.string(), int);
/** A merge: k 'u' (two private pages -> new KSM page) | 's' (joined a KSM page); pass = full_scans at the merge. */
const mergeSchema = z.object({ t: z.literal('merge'), k: z.enum(['u', 's']), pass: nat, scanned: pageRef, other: pageRef, kept: pageRef, node: nat }).strict();
export type TraceMerge = z.infer<typeof mergeSchema>;

const recordSchema = z.discriminatedUnion('t', [
  z.object({ t: z.literal('reg'), i: nat, pid: int, node: nat, pfn: pfns }).strict(),
  z.object({ t: z.literal('write'), i: nat, page: nat, content: int.positive(), pfn: nat }).strict(),
  z.object({ t: z.literal('exit'), i: nat }).strict(),
  z.object({ t: z.literal('snap'), at: z.enum(['pass', 'batch']), n: nat, b: nat, c: counters, procs: z.array(procState).optional() }).strict(),
  mergeSchema,
  z.object({ t: z.literal('end') }).strict(),
]);
export type TraceRecord = z.infer<typeof recordSchema>;

export interface TraceFile {
  header: TraceHeader;
  records: TraceRecord[];
}

function zodWhy(file: string, line: number, err: z.ZodError): ConfigError {
  const i = err.issues[0]!;
  return new ConfigError(file, `line ${line}${i.path.length ? `: ${i.path.join('.')}` : ''}`, i.message);
}

// Merge lines are most of a large trace (a million in a long recording), so they have two fast paths; each
// accepts only lines that JSON.parse + mergeSchema accept, and gives the same object. Anything else goes the
// slow way, where zod words the error.

/** What follows '{"t":"merge","k":"u' in a canonical merge line, each followed by a number; then '}'. */
const MERGE_SEPARATORS = ['","pass":', ',"scanned":[', ',', '],"other":[', ',', '],"kept":[', ',', '],"node":'];
const MERGE_NUMBERS: number[] = MERGE_SEPARATORS.map(() => 0); // scratch (small integers stay unboxed)

/**
 * A merge line exactly as traceText writes it (no spaces, keys in schema order, plain non-negative integers of
 * at most 15 digits, so no precision question), scanned without JSON.parse; null for any other line.
 */
export function scanCanonicalMerge(line: string): TraceMerge | null {
  return scanMergeAt(line, 0, line.length);
}

/** scanCanonicalMerge of text[start, end) (a line, end at its '\n' or the text's end), read in place. */
function scanMergeAt(text: string, start: number, end: number): TraceMerge | null {
  const PREFIX = '{"t":"merge","k":"';
  if (!text.startsWith(PREFIX, start)) return null;
  let at = start + PREFIX.length;
  const k = text.charCodeAt(at++);
  if (k !== 117 && k !== 115) return null; // 'u' | 's'
  const v = MERGE_NUMBERS;
  for (let i = 0; i < MERGE_SEPARATORS.length; i++) {
    // A separator has no '\n', so neither it nor the digits can run past the line's end.
    const sep = MERGE_SEPARATORS[i]!;
    if (!text.startsWith(sep, at)) return null;
    at += sep.length;
    const first = at;
    let n = 0;
    for (let c = text.charCodeAt(at); c >= 48 && c <= 57; c = text.charCodeAt(++at)) n = n * 10 + (c - 48);
    const len = at - first;
    if (len === 0 || len > 15 || (len > 1 && text.charCodeAt(first) === 48)) return null; // none, too long, or a leading 0
    v[i] = n;
  }
  if (at + 1 !== end || text.charCodeAt(at) !== 125) return null; // '}' ends the line
  return { t: 'merge', k: k === 117 ? 'u' : 's', pass: v[0]!, scanned: [v[1]!, v[2]!], other: [v[3]!, v[4]!], kept: [v[5]!, v[6]!], node: v[7]! };
}

/** A parsed merge line of any layout, checked by hand (exactly mergeSchema's rules). */
function isMergeFast(r: Record<string, unknown>): boolean {
  const ref = (x: unknown) => Array.isArray(x) && x.length === 2 && Number.isInteger(x[0]) && Number.isInteger(x[1]) && (x[0] as number) >= 0 && (x[1] as number) >= 0;
  let keys = 0;
  for (const _ in r) keys++;
  return keys === 7 && (r.k === 'u' || r.k === 's') && Number.isInteger(r.pass) && (r.pass as number) >= 0 && Number.isInteger(r.node) && (r.node as number) >= 0 && ref(r.scanned) && ref(r.other) && ref(r.kept);
}

/** Parses and validates a trace file's text; throws ConfigError(file, "line N: key", why). */
export function parseTraceText(text: string, file: string): TraceFile {
  // Line by line without split(): a large trace's million line strings would all stay alive at once.
  let lineCount = 0;
  let header: TraceHeader | null = null;
  const records: TraceRecord[] = [];
  let ended = false;
  for (let start = 0, n = 0; start <= text.length; n++) {
    let stop = text.indexOf('\n', start);
    if (stop < 0) stop = text.length;
    lineCount = n + 1;
    const m = header !== null && !ended ? scanMergeAt(text, start, stop) : null;
    const line = m === null ? text.slice(start, stop) : '';
    start = stop + 1;
    if (m !== null) {
      records.push(m);
      continue;
    }
    if (line === '') continue;
    const lineNo = n + 1;
    if (ended) throw new ConfigError(file, `line ${lineNo}`, 'content after the {"t":"end"} line');
    let obj: unknown;
    try {
      obj = JSON.parse(line);
    } catch (err) {
      throw new ConfigError(file, `line ${lineNo}`, `not JSON: ${(err as Error).message}`);
    }
    if (header === null) {
      if (typeof obj === 'object' && obj !== null && (obj as { format?: unknown }).format === TRACE_FORMAT && (obj as { version?: unknown }).version !== TRACE_FORMAT_VERSION) {
        throw new ConfigError(file, `line ${lineNo}: version`, `format version ${JSON.stringify((obj as { version?: unknown }).version)} is not supported (this nuksm reads version ${TRACE_FORMAT_VERSION})`);
      }
      const h = traceHeaderSchema.safeParse(obj);
      if (!h.success) throw zodWhy(file, lineNo, h.error);
      header = h.data;
      continue;
    }
    const r = obj as Record<string, unknown>;
    if (r !== null && typeof r === 'object' && r.t === 'merge' && isMergeFast(r)) {
      records.push(r as unknown as TraceMerge);
      continue;
    }
    const p = recordSchema.safeParse(obj);
    if (!p.success) throw zodWhy(file, lineNo, p.error);
    records.push(p.data);
    if (p.data.t === 'end') ended = true;
  }
  if (header === null) throw new ConfigError(file, 'line 1', 'empty file: no header line');
  if (!ended) throw new ConfigError(file, `line ${lineCount}`, 'the trace does not end with {"t":"end"} (recording cut short?)');
  const procs = header.scenario.procs.length;
  records.forEach((r, k) => {
    const i = r.t === 'merge' ? Math.max(r.scanned[0], r.other[0], r.kept[0]) : 'i' in r ? r.i : -1;
    if (i >= procs) throw new ConfigError(file, `record ${k + 1}`, `instance ${i} is not in the header's scenario (${procs} instances)`);
  });
  return { header, records };
}

export function readTraceFile(file: string): TraceFile {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(file, '', `cannot read the trace file: ${(err as Error).message}`);
  }
  return parseTraceText(text, file);
}

export function traceText(t: TraceFile): string {
  const parts: string[] = [JSON.stringify(t.header)];
  for (const r of t.records) parts.push(JSON.stringify(r));
  return `${parts.join('\n')}\n`;
}

export function writeTraceFile(file: string, t: TraceFile): void {
  writeFileSync(file, traceText(t));
}

export function nodeOfPfnFromMap(m: TraceHeader['nodeMap']): (pfn: number) => number {
  if (m.kind === 'memory-blocks') return nodeOfPfnFromMemoryBlocks(m.blockSizeBytes, new Map(m.blocks));
  const ranges = [...m.ranges].sort((a, b) => a[0] - b[0]);
  return (pfn) => {
    let lo = 0;
    let hi = ranges.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const [s, e, node] = ranges[mid]!;
      if (pfn < s) hi = mid - 1;
      else if (pfn >= e) lo = mid + 1;
      else return node;
    }
    throw new RangeError(`pfn ${pfn} is in no range of the trace's node map`);
  };
}


/**
 * A kernel run of the ksm-scenario driver (its stdout log, the machine's memory layout) as a trace file.
 * Merges come from the kernel's ksm tracepoints when given (mapped to instance and page by pagemap).
 */
export function traceFromDriverLog(
  s: KsmScenario,
  log: readonly KernelRecord[],
  layout: { release: string; blockSizeBytes: number; nodeMemoryLinks: string; smartScanKnob: boolean },
  source: string,
  merges: readonly TraceMerge[] = [],
): TraceFile {
  const blocks = [...parseNodeMemoryLinks(layout.nodeMemoryLinks).entries()].sort((a, b) => a[0] - b[0]);
  const header: TraceHeader = {
    t: 'header',
    format: TRACE_FORMAT,
    version: TRACE_FORMAT_VERSION,
    producer: 'kernel',
    source,
    release: layout.release,
    compareOrder: compareOrderOf(layout.release),
    smartScanKnob: layout.smartScanKnob,
    knobs: { ...s.knobs },
    nodes: new Set(blocks.map((b) => b[1])).size,
    nodeMap: { kind: 'memory-blocks', blockSizeBytes: layout.blockSizeBytes, blocks },
    scenario: s,
    pageStates: 'every-stop',
  };
  const records: TraceRecord[] = [];
  for (const r of log) {
    if (r.t === 'error') throw new Error(`ksm-scenario: ${r.why}`);
    if (r.t === 'snap') records.push({ t: 'snap', at: r.at, n: r.n, b: r.b, c: { ...r.c }, procs: (r.procs ?? []).map((p) => ({ i: p.i, pfn: [...p.pfn], ksm: p.ksm ? p.ksm.map((k) => (k === 1 ? 1 : 0)) : (p.kpf ?? []).map((k) => (isKsmPage(k) ? 1 : 0)) })) });
    else if (r.t !== 'end') records.push({ ...r } as TraceRecord);
  }
  records.push(...merges, { t: 'end' });
  return { header, records };
}

const COUNTER_NAMES = ['pages_shared', 'pages_sharing', 'pages_unshared', 'pages_volatile', 'full_scans'] as const;

/**
 * Records a scenario from the reference model itself (the model testbed): the same stops as the kernel
 * driver (each pass end, each pinned batch), page states as pfns of synthetic physical pages (node n's
 * pages at n * 2^32 + k), merges from the model's merge events. The header says producer "model".
 */
export function recordFromModel(s: KsmScenario, opts: { release: string; nodes?: number; source: string; pageStates?: TraceHeader['pageStates']; smartScanKnob?: boolean }): TraceFile {
  const nodes = opts.nodes ?? Math.max(2, ...s.procs.map((p) => p.node + 1));
  const release = opts.release;
  const base = scenarioModelConfig(s, release, defaultKsmModelConfig({ nodes }));
  // A kernel without the smart_scan knob (before 6.7) scans every page whatever the scenario asks.
  const config = opts.smartScanKnob === false ? { ...base, smartScan: false } : base;
  const model = new KsmModel(config);
  const SPAN = 2 ** 32;
  const nextPfn = Array.from({ length: nodes }, (_, n) => n * SPAN);
  const pfnOfOwner = new Map<number, number[]>(); // proc -> pfn of the physical copy each page last held
  const mmOfProc = new Map<number, number>();
  const procOfMm: number[] = [];
  const records: TraceRecord[] = [];
  const pageStates = opts.pageStates ?? 'every-stop';
  model.onMerge = (e: MergeEvent) => {
    records.push({ t: 'merge', k: e.kind === 'stable' ? 's' : 'u', pass: e.fullScans, scanned: [procOfMm[e.scannedMm]!, e.scannedPage], other: [procOfMm[e.otherMm]!, e.otherPage], kept: [procOfMm[e.keptMm]!, e.keptPage], node: e.keptNode });
  };
  const register = (i: number) => {
    const p = s.procs[i]!;
    const pfn = p.contents.map(() => nextPfn[p.node]!++);
    pfnOfOwner.set(i, pfn);
    const id = model.registerMm({ name: `proc-${i}`, nice: 0, contents: Uint32Array.from(p.contents), nodes: new Uint8Array(p.contents.length).fill(p.node), active: new Uint8Array(p.contents.length) });
    mmOfProc.set(i, id);
    procOfMm[id] = i;
    records.push({ t: 'reg', i, pid: 0, node: p.node, pfn: [...pfn] });
  };
  const act = (a: KsmScenario['events'][number]['action']) => {
    if (a.kind === 'register') register(a.proc);
    else if (a.kind === 'exit') {
      model.unregisterMm(mmOfProc.get(a.proc)!);
      mmOfProc.delete(a.proc);
      records.push({ t: 'exit', i: a.proc });
    } else {
      const mm = mmOfProc.get(a.proc)!;
      model.writePage(mm, a.page, a.content);
      const node = model.pageNode(mm, a.page);
      const pfn = nextPfn[node]!++;
      pfnOfOwner.get(a.proc)![a.page] = pfn;
      records.push({ t: 'write', i: a.proc, page: a.page, content: a.content, pfn });
    }
  };
  let batches = 0;
  const snap = (at: 'pass' | 'batch', n: number, withPages: boolean) => {
    const c = model.counters();
    const cs: Record<string, number> = { pages_shared: c.pagesShared, pages_sharing: c.pagesSharing, pages_unshared: c.pagesUnshared, pages_volatile: c.pagesVolatile, full_scans: c.fullScans };
    if (config.smartScan) cs.pages_skipped = model.pagesSkipped;
    const rec: TraceRecord = { t: 'snap', at, n, b: batches, c: cs };
    if (withPages) {
      rec.procs = [...mmOfProc].map(([i, mm]) => {
        const len = s.procs[i]!.contents.length;
        const pfn: number[] = new Array(len);
        const ksm: Array<0 | 1> = new Array(len);
        for (let page = 0; page < len; page++) {
          const o = model.pageOwner(mm, page);
          pfn[page] = o === null ? -1 : pfnOfOwner.get(procOfMm[o.mm]!)![o.page]!;
          ksm[page] = model.isMerged(mm, page) ? 1 : 0;
        }
        return { i, pfn, ksm };
      });
    }
    records.push(rec);
  };
  for (const i of s.initial) register(i);
  const byPass = new Map<number, KsmScenario['events']>();
  const byBatch = new Map<number, KsmScenario['events']>();
  for (const e of s.events) {
    const m = 'pass' in e.at ? byPass : byBatch;
    const k = 'pass' in e.at ? e.at.pass : e.at.batch;
    m.set(k, [...(m.get(k) ?? []), e]);
  }
  snap('pass', 0, pageStates === 'every-stop' || s.endPass === 0);
  for (const e of byPass.get(0) ?? []) act(e.action);
  let pass = 0;
  const maxBatches = 1e7;
  while (pass < s.endPass) {
    if (++batches > maxBatches) throw new Error(`scenario ${s.name}: pass ${s.endPass} not reached after ${maxBatches} model batches`);
    model.wake();
    const full = model.counters().fullScans;
    if (byBatch.has(batches)) {
      snap('batch', batches, pageStates === 'every-stop');
      for (const e of byBatch.get(batches)!) act(e.action);
    }
    if (full > pass) {
      pass = full;
      snap('pass', pass, pageStates === 'every-stop' || pass === s.endPass);
      for (const e of byPass.get(pass) ?? []) act(e.action);
    }
  }
  records.push({ t: 'end' });
  const header: TraceHeader = {
    t: 'header',
    format: TRACE_FORMAT,
    version: TRACE_FORMAT_VERSION,
    producer: 'model',
    source: opts.source,
    release,
    compareOrder: config.compareOrder,
    smartScanKnob: opts.smartScanKnob ?? config.smartScan === true,
    knobs: { ...s.knobs },
    nodes,
    nodeMap: { kind: 'pfn-ranges', ranges: Array.from({ length: nodes }, (_, n) => [n * SPAN, (n + 1) * SPAN, n] as [number, number, number]) },
    scenario: s,
    pageStates,
  };
  return { header, records };
}

export interface MergeDiff {
  index: number;
  kernel: TraceMerge | null;
  model: TraceMerge | null;
}

export interface ReplayReport {
  header: TraceHeader;
  comparison: Omit<ScenarioComparison, 'model'>;
  merges: { recorded: number; model: number; exact: number; first: MergeDiff[] } | null;
  exact: boolean;
}

/** Replays a trace into the model: counters and page states at every recorded stop, merges position by position. */
export function replayTrace(t: TraceFile, maxDiffs = 8): ReplayReport {
  const h = t.header;
  const config = { ...scenarioModelConfig(h.scenario, h.release, defaultKsmModelConfig({ nodes: h.nodes })), compareOrder: h.compareOrder, smartScan: h.knobs.smart_scan === 1 && h.smartScanKnob };
  const log: KernelRecord[] = [];
  const recorded: TraceMerge[] = [];
  for (const r of t.records) {
    if (r.t === 'merge') recorded.push(r);
    else log.push(r as KernelRecord);
  }
  const wantMerges = recorded.length > 0;
  // Merges are compared as the model makes them (a large recording has millions: no second list is built).
  const first: MergeDiff[] = [];
  let modelCount = 0;
  let exactMerges = 0;
  const cmp = compareScenario(h.scenario, log, config, nodeOfPfnFromMap(h.nodeMap), maxDiffs, (m, procOfMm) => {
    if (!wantMerges) return;
    m.onMerge = (e) => {
      const k = modelCount++;
      const r = recorded[k];
      const scanned = procOfMm[e.scannedMm]!;
      const other = procOfMm[e.otherMm]!;
      const kept = procOfMm[e.keptMm]!;
      const k2 = e.kind === 'stable' ? 's' : 'u';
      if (r && r.k === k2 && r.pass === e.fullScans && r.node === e.keptNode && r.scanned[0] === scanned && r.scanned[1] === e.scannedPage && r.other[0] === other && r.other[1] === e.otherPage && r.kept[0] === kept && r.kept[1] === e.keptPage) {
        exactMerges++;
      } else if (first.length < maxDiffs) {
        const model: TraceMerge = { t: 'merge', k: k2, pass: e.fullScans, scanned: [scanned, e.scannedPage], other: [other, e.otherPage], kept: [kept, e.keptPage], node: e.keptNode };
        first.push({ index: k, kernel: r ?? null, model });
      }
    };
  });
  let merges: ReplayReport['merges'] = null;
  if (wantMerges) {
    for (let k = modelCount; k < recorded.length && first.length < maxDiffs; k++) first.push({ index: k, kernel: recorded[k]!, model: null });
    merges = { recorded: recorded.length, model: modelCount, exact: exactMerges, first };
  }
  const { model: _model, ...comparison } = cmp;
  const exact = cmp.exact && (merges === null || (merges.exact === merges.recorded && merges.recorded === merges.model));
  return { header: h, comparison, merges, exact };
}

const pct = (a: number, b: number) => (b === 0 ? '100.0' : ((100 * a) / b).toFixed(1));

/** The agreement report as text (what `nuksm trace replay` prints). */
export function formatReplayReport(r: ReplayReport): string {
  const h = r.header;
  const c = r.comparison;
  const out: string[] = [];
  out.push(`trace: scenario ${h.scenario.name} (family ${h.scenario.family}), recorded ${h.producer === 'model' ? 'BY THE MODEL (not a kernel measurement)' : 'on a kernel'} ${h.release}, order ${h.compareOrder}; ${h.source}`);
  out.push(`stops with every counter equal: ${c.countersExact}/${c.stops.length} (${pct(c.countersExact, c.stops.length)} %)`);
  out.push(`page states equal (merged, survivor, node): ${c.pagesExact}/${c.pagesCompared} (${pct(c.pagesExact, c.pagesCompared)} %)`);
  if (r.merges) out.push(`merges equal (kind, pages, survivor, node, pass): ${r.merges.exact}/${Math.max(r.merges.recorded, r.merges.model)} (recorded ${r.merges.recorded}, model ${r.merges.model})`);
  else out.push('merges: none recorded (kernel without KSM tracepoints, or no merge happened)');
  const bad = c.stops.filter((s) => !s.counters.equal || s.samePages !== s.pages);
  for (const s of bad.slice(0, 5)) {
    out.push(`  first disagreements at ${s.at} ${s.n} (batches recorded ${s.batches.kernel}, model ${s.batches.model}):`);
    for (const k of Object.keys(s.counters.model)) if (s.counters.kernel[k] !== s.counters.model[k]) out.push(`    ${k}: recorded ${s.counters.kernel[k]} model ${s.counters.model[k]}`);
    for (const d of s.diffs) out.push(`    instance ${d.proc} page ${d.page}: recorded ${JSON.stringify(d.kernel)} model ${JSON.stringify(d.model)}`);
  }
  for (const d of r.merges?.first ?? []) {
    const f = (m: TraceMerge | null) => (m ? `${m.k === 'u' ? 'unstable' : 'stable'} pass ${m.pass} scanned ${m.scanned.join(':')} other ${m.other.join(':')} kept ${m.kept.join(':')} node ${m.node}` : 'none');
    out.push(`  merge ${d.index}: recorded ${f(d.kernel)} | model ${f(d.model)}`);
  }
  out.push(r.exact ? 'verdict: exact agreement' : 'verdict: DISAGREES');
  return `${out.join('\n')}\n`;
}

export { COUNTER_NAMES };
