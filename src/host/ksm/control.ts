/**
 * KSM control through an Executor (locally or over SSH): write knobs and read them back, respect
 * the -EBUSY rules (merge_across_nodes and max_page_sharing change only while no KSM pages exist,
 * so run=2 unmerges first), unmerge and restore between steps, read the counters in one command.
 */
import { HarnessError } from '../../core/errors.ts';
import type { Executor } from '../exec/types.ts';

export const KSM_SYSFS = '/sys/kernel/mm/ksm';

/** Knobs that the kernel accepts only while there are no KSM pages. */
export const KNOBS_NEEDING_UNMERGE = ['merge_across_nodes', 'max_page_sharing'] as const;

/** Read-only statistics files, never written or restored. */
export const KSM_STAT_FILES = new Set([
  'pages_shared',
  'pages_sharing',
  'pages_unshared',
  'pages_volatile',
  'full_scans',
  'stable_node_chains',
  'stable_node_dups',
  'pages_scanned',
  'pages_skipped',
  'ksm_zero_pages',
  'general_profit',
]);

export interface KsmCounters {
  pages_shared: number;
  pages_sharing: number;
  pages_unshared: number;
  pages_volatile: number;
  full_scans: number;
  /** Everything else numeric in the directory (ksm_zero_pages, general_profit, …). */
  extra: Record<string, number>;
}

export type KsmKnobValues = Record<string, string | number>;

/** Selection files print every choice with the active one bracketed: `[none] scan-time` → `none`. */
export function normalizeKnobValue(raw: string): string {
  const selected = /\[([^\]]+)\]/.exec(raw);
  return selected ? selected[1]! : raw.trim();
}

/** Parse `grep -r . DIR` output (`DIR/name:value` lines) into name → value. */
export function parseGrepDump(text: string, dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const prefix = `${dir.replace(/\/+$/, '')}/`;
  for (const line of text.split('\n')) {
    if (!line.startsWith(prefix)) continue;
    const rest = line.slice(prefix.length);
    const colon = rest.indexOf(':');
    if (colon < 0) continue;
    const name = rest.slice(0, colon);
    if (name.includes('/')) continue;
    out[name] = normalizeKnobValue(rest.slice(colon + 1));
  }
  return out;
}

export function countersFromDump(dump: Record<string, string>): KsmCounters {
  const num = (name: string): number => {
    const v = Number(dump[name]);
    if (!Number.isFinite(v)) throw new HarnessError('unsupported', `KSM counter ${name} is missing or not a number ('${dump[name]}')`);
    return v;
  };
  const extra: Record<string, number> = {};
  for (const name of KSM_STAT_FILES) {
    if (['pages_shared', 'pages_sharing', 'pages_unshared', 'pages_volatile', 'full_scans'].includes(name)) continue;
    if (dump[name] !== undefined && Number.isFinite(Number(dump[name]))) extra[name] = Number(dump[name]);
  }
  return {
    pages_shared: num('pages_shared'),
    pages_sharing: num('pages_sharing'),
    pages_unshared: num('pages_unshared'),
    pages_volatile: num('pages_volatile'),
    full_scans: num('full_scans'),
    extra,
  };
}

/** The order knob writes are applied in: unmerge-gated knobs first, `run` last. */
export function planKnobWrites(current: Record<string, string>, wanted: KsmKnobValues): { needsUnmerge: boolean; order: [string, string][] } {
  const entries = Object.entries(wanted).map(([k, v]) => [k, String(v)] as [string, string]);
  for (const [k] of entries) {
    if (KSM_STAT_FILES.has(k)) throw new HarnessError('config', `KSM file '${k}' is a read-only statistic, not a knob`);
    if (!/^[a-z0-9_]+$/.test(k)) throw new HarnessError('config', `invalid KSM knob name '${k}'`);
  }
  const changed = entries.filter(([k, v]) => current[k] !== v);
  const needsUnmerge = changed.some(([k]) => (KNOBS_NEEDING_UNMERGE as readonly string[]).includes(k));
  // advisor_mode other than 'none' makes pages_to_scan read-only (EINVAL): leave it before run.
  const rank = (k: string, v: string) =>
    (KNOBS_NEEDING_UNMERGE as readonly string[]).includes(k) ? 0 : k === 'advisor_mode' ? (v === 'none' ? 0.5 : 1.5) : k === 'run' ? 2 : 1;
  const order = changed.sort((a, b) => rank(a[0], a[1]) - rank(b[0], b[1]));
  return { needsUnmerge, order };
}

export interface KsmControlOptions {
  dir?: string;
  timeoutMs?: number;
  /** How long an unmerge (run=2) may take to bring pages_shared to 0. */
  unmergeTimeoutMs?: number;
}

export class KsmControl {
  readonly dir: string;
  private readonly timeoutMs: number;
  private readonly unmergeTimeoutMs: number;

  constructor(
    readonly exec: Executor,
    opts: KsmControlOptions = {},
  ) {
    this.dir = opts.dir ?? KSM_SYSFS;
    this.timeoutMs = opts.timeoutMs ?? 15_000;
    this.unmergeTimeoutMs = opts.unmergeTimeoutMs ?? 300_000;
  }

  /** Every file in the KSM directory, name → trimmed content (one command). */
  async readAll(): Promise<Record<string, string>> {
    const res = await this.exec.run(['grep', '-r', '.', this.dir], { timeoutMs: this.timeoutMs, allowFailure: true });
    const dump = parseGrepDump(res.stdout, this.dir);
    if (Object.keys(dump).length === 0) {
      throw new HarnessError('unsupported', `KSM is not available on ${this.exec.target}: ${this.dir} is missing or empty (CONFIG_KSM off?) ${res.stderr.trim()}`);
    }
    return dump;
  }

  /** Current knob values only (statistics left out). */
  async readKnobs(): Promise<Record<string, string>> {
    const all = await this.readAll();
    return Object.fromEntries(Object.entries(all).filter(([k]) => !KSM_STAT_FILES.has(k)));
  }

  async readCounters(): Promise<KsmCounters> {
    return countersFromDump(await this.readAll());
  }

  /**
   * Write knobs and verify each by reading it back. A knob this kernel lacks (e.g. nuKSM's
   * smart_ksm on a vanilla kernel) is an 'unsupported' error, never silently ignored.
   */
  async setKnobs(wanted: KsmKnobValues): Promise<Record<string, string>> {
    const current = await this.readKnobs();
    const missing = Object.keys(wanted).filter((k) => current[k] === undefined);
    if (missing.length > 0) {
      throw new HarnessError('unsupported', `KSM knob(s) ${missing.join(', ')} do not exist on ${this.exec.target} (${this.dir}); this kernel has: ${Object.keys(current).sort().join(', ')}`, { missing });
    }
    let { needsUnmerge, order } = planKnobWrites(current, wanted);
    if (needsUnmerge) {
      await this.unmerge();
      // Unmerging leaves run=2: put run back to what it was unless the caller sets it.
      ({ order } = planKnobWrites(await this.readKnobs(), { run: current.run ?? '0', ...wanted }));
    }
    for (const [name, value] of order) await this.writeKnob(name, value);
    const after = await this.readKnobs();
    const wrong = order.filter(([k, v]) => after[k] !== v);
    if (wrong.length > 0) {
      throw new HarnessError('unsupported', `KSM knob(s) did not keep the written value on ${this.exec.target}: ${wrong.map(([k, v]) => `${k} wrote ${v}, reads ${after[k]}`).join('; ')}`);
    }
    return after;
  }

  private async writeKnob(name: string, value: string): Promise<void> {
    const path = `${this.dir}/${name}`;
    try {
      await this.exec.writeFile(path, `${value}\n`, { timeoutMs: this.timeoutMs });
    } catch (err) {
      const msg = (err as Error).message;
      const busy = /EBUSY|busy/i.test(msg) || (err as NodeJS.ErrnoException).code === 'EBUSY';
      throw new HarnessError(busy ? 'unsupported' : 'config', `cannot write ${value} to ${path} on ${this.exec.target}${busy ? ' (EBUSY: KSM pages still exist; unmerge first)' : ''}: ${msg}`, { knob: name, value }, { cause: err });
    }
  }

  /** run=2: stop ksmd and unmerge everything; wait until no KSM pages remain. Leaves run=2. */
  async unmerge(): Promise<void> {
    await this.writeKnob('run', '2');
    const deadline = Date.now() + this.unmergeTimeoutMs;
    for (;;) {
      const c = await this.readCounters();
      if (c.pages_shared === 0 && c.pages_sharing === 0) return;
      if (Date.now() > deadline) {
        throw new HarnessError('timeout', `KSM unmerge on ${this.exec.target} did not finish in ${this.unmergeTimeoutMs} ms (pages_shared=${c.pages_shared}, pages_sharing=${c.pages_sharing})`);
      }
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  /** Saved knob values, for restore() at the end of a step or test. */
  async save(): Promise<Record<string, string>> {
    return this.readKnobs();
  }

  /**
   * Between steps: unmerge everything and put the knobs back to `saved` (or to the given values).
   * Knobs whose file is read-only for root (advisor-dependent, absent) are reported, not skipped.
   */
  async reset(saved: Record<string, string>): Promise<void> {
    await this.unmerge();
    const writable = Object.fromEntries(Object.entries(saved).filter(([k]) => !KSM_STAT_FILES.has(k)));
    await this.setKnobs(writable);
  }
}
