/**
 * The numbers the nuKSM paper (PACT 2021) publishes that the harness's figure tables also hold,
 * each with where it is printed: Tables II and III, and the Fig. 3a / 6a / 8 numbers quoted in the
 * text (§III-A, §V-B, §V-D). The reproduction table of the report (src/results/report.ts) sets
 * every one of them next to the campaign's value. Text: /work/shared/paper, BRIEF §1.
 */
import type { Row } from './figures.ts';

/** Table II keys: the columns of the harness's table2 (src/results/figures.ts). */
export type Table2Column = 'fairness_ksm' | 'fairness_nuksm' | 'perf_nuksm_over_ksm' | 'saved_gib_ksm' | 'saved_gib_nuksm';

/** What the campaign's counterparts are read from: its figure tables, and per kernel mode how its Fig. 8 steps ended. */
export interface CampaignTables {
  tables: ReadonlyMap<string, readonly Row[]>;
  /** Fig. 8 steps by kernel mode: whether the host ran out of memory, and the last sample time (s). */
  fig8End: ReadonlyMap<string, { oom: boolean; lastT: number }>;
}

export interface PaperNumber {
  /** Which campaign table holds the counterpart (figure name in FIGURE_DEFS; '8' = the 8a–8c steps). */
  figure: 'table2' | 'table3' | '3a' | '6a' | '8';
  /** Row key: benchmark (table2, 3a, 6a), config (table3), kernel mode (8). */
  row: string;
  /** Column in that table (table2/table3), or a name for a derived number. */
  column: string;
  /** How the paper states it: '=' a printed value, '≈' "about", '>' "more than", '≤' "at most". */
  relation?: '=' | '≈' | '>' | '≤';
  /** This campaign's counterpart; null when it did not run. Default: tables[figure] row[column]. */
  campaign?: (c: CampaignTables) => number | null;
  /** What the number is, in words. */
  label: string;
  value: number;
  unit: string;
  /** Where the paper prints it. */
  source: string;
}

const num = (v: unknown): number | null => (v === null || v === undefined || v === '' ? null : Number(v));

/** Runtime normalised to Instance-0 without KSM, of `instance` under `mode` (first kernel with a value). */
const normalised = (figure: '3a' | '6a', benchmark: string, mode: string, instance: string) => (c: CampaignTables) =>
  num(c.tables.get(figure)?.find((r) => r.benchmark === benchmark && r.kernel_mode === mode && r.instance === instance && num(r.normalized_runtime) !== null)?.normalized_runtime);

/** Performance difference (%) between the two instances under `mode`: (slower / faster − 1) × 100. */
function instanceGapPct(rows: readonly Row[] | undefined, benchmark: string, mode: string): number | null {
  const xs = (rows ?? []).filter((r) => r.benchmark === benchmark && r.kernel_mode === mode).map((r) => num(r.runtime_s)).filter((x): x is number => x !== null && x > 0);
  if (xs.length < 2) return null;
  return Number(((Math.max(...xs) / Math.min(...xs) - 1) * 100).toFixed(2));
}
const gap = (figure: '3a' | '6a', benchmark: string, mode: string) => (c: CampaignTables) => instanceGapPct(c.tables.get(figure), benchmark, mode);
/** Smallest / largest instance gap under KSM across the benchmarks the campaign ran. */
const gapRange = (figure: '3a' | '6a', pick: 'min' | 'max') => (c: CampaignTables) => {
  const rows = c.tables.get(figure) ?? [];
  const gaps = [...new Set(rows.map((r) => String(r.benchmark)))].map((b) => instanceGapPct(rows, b, 'ksm')).filter((g): g is number => g !== null);
  return gaps.length < 2 ? null : pick === 'min' ? Math.min(...gaps) : Math.max(...gaps);
};

/** The Fig. 8 nuKSM run: the forest kernel (nuKSM_MultiTree) when the campaign ran it, else nuKSM fair. */
const fig8Nuksm = (c: CampaignTables) => (c.fig8End.has('nuksm-forest') ? 'nuksm-forest' : 'nuksm-fair');
/** Largest de-duplicated memory (GiB) of the Fig. 8 nuKSM run up to `untilS` seconds (all of it when undefined). */
const savedBy = (untilS?: number) => (c: CampaignTables) => {
  const mode = fig8Nuksm(c);
  const xs = (c.tables.get('8b') ?? []).filter((r) => r.kernel_mode === mode && r.metric === 'memory_saved_gib' && (untilS === undefined || (num(r.t) ?? Infinity) <= untilS)).map((r) => num(r.value)!);
  return xs.length ? Number(Math.max(...xs).toFixed(2)) : null;
};

const FIG3_SOURCE = 'paper §III-A (text on Fig. 3a: "RandomAccess and CG in VM-1 slow down by 46% and 31% … while they are unaffected in VM-0"; "16%-46%")';
const FIG6_SOURCE = 'paper §V-B (text on Fig. 6a: "from 15% … MySQL to 46% for … RandomAccess"; nuKSM "at most 4% variability … for RandomAccess")';
const FIG8_SOURCE = 'paper §V-D (text on Fig. 8: KSM OOM "at about 900 seconds"; nuKSM "more than 6 GiB … within 900 seconds and about 40 GiB overall")';

const TABLE2_SOURCE = 'paper Table II (§V-A, "Amount of de-duplicated memory and fairness with KSM and nuKSM")';
const TABLE3_SOURCE = 'paper Table III (§V-C, "Different priority configurations … fraction of de-duplicated pages local to each VM")';

/** Table II as printed: fairness KSM / nuKSM, combined performance nuKSM / KSM, memory saved (GiB) KSM / nuKSM. */
const TABLE2: Record<string, [number, number, number, number, number]> = {
  xsbench: [0.84, 0.98, 0.99, 10.76, 10.79],
  btree: [0.85, 0.98, 0.99, 5.18, 5.29],
  mysql: [0.85, 0.99, 1.0, 15.9, 15.97],
  cg: [0.77, 0.99, 0.99, 2.4, 2.39],
  randomaccess: [0.7, 0.94, 0.99, 3.14, 3.16],
};

export const TABLE2_COLUMNS: { column: Table2Column; label: string; unit: string }[] = [
  { column: 'fairness_ksm', label: 'fairness, KSM', unit: '' },
  { column: 'fairness_nuksm', label: 'fairness, nuKSM', unit: '' },
  { column: 'perf_nuksm_over_ksm', label: 'combined runtime nuKSM / KSM', unit: '' },
  { column: 'saved_gib_ksm', label: 'memory saved, KSM', unit: 'GiB' },
  { column: 'saved_gib_nuksm', label: 'memory saved, nuKSM', unit: 'GiB' },
];

/** Table III as printed: % of de-duplicated pages local to VM-0 / VM-1 per priority configuration. */
const TABLE3: Record<string, [number, number]> = {
  'C-10:1': [91, 9],
  'C-5:1': [83, 17],
  'C-1:1': [50, 50],
  'C-1:5': [17, 83],
  'C-1:10': [9, 91],
};

const TEXT_NUMBERS: PaperNumber[] = [
  { figure: '3a', row: 'randomaccess', column: 'vm1_ksm', label: 'VM-1 runtime with KSM / VM-0 without KSM', relation: '=', value: 1.46, unit: '×', source: FIG3_SOURCE, campaign: normalised('3a', 'randomaccess', 'ksm', 'vm1') },
  { figure: '3a', row: 'cg', column: 'vm1_ksm', label: 'VM-1 runtime with KSM / VM-0 without KSM', relation: '=', value: 1.31, unit: '×', source: FIG3_SOURCE, campaign: normalised('3a', 'cg', 'ksm', 'vm1') },
  { figure: '3a', row: 'randomaccess', column: 'vm0_ksm', label: 'VM-0 runtime with KSM / without ("unaffected")', relation: '≈', value: 1.0, unit: '×', source: FIG3_SOURCE, campaign: normalised('3a', 'randomaccess', 'ksm', 'vm0') },
  { figure: '3a', row: 'cg', column: 'vm0_ksm', label: 'VM-0 runtime with KSM / without ("unaffected")', relation: '≈', value: 1.0, unit: '×', source: FIG3_SOURCE, campaign: normalised('3a', 'cg', 'ksm', 'vm0') },
  { figure: '3a', row: 'all benchmarks', column: 'gap_min', label: 'smallest gap between the instances with KSM', relation: '=', value: 16, unit: '%', source: FIG3_SOURCE, campaign: gapRange('3a', 'min') },
  { figure: '3a', row: 'all benchmarks', column: 'gap_max', label: 'largest gap between the instances with KSM', relation: '=', value: 46, unit: '%', source: FIG3_SOURCE, campaign: gapRange('3a', 'max') },
  { figure: '6a', row: 'mysql', column: 'gap_ksm', label: 'gap between the instances with KSM', relation: '=', value: 15, unit: '%', source: FIG6_SOURCE, campaign: gap('6a', 'mysql', 'ksm') },
  { figure: '6a', row: 'randomaccess', column: 'gap_ksm', label: 'gap between the instances with KSM', relation: '=', value: 46, unit: '%', source: FIG6_SOURCE, campaign: gap('6a', 'randomaccess', 'ksm') },
  { figure: '6a', row: 'randomaccess', column: 'gap_nuksm', label: 'gap between the instances with nuKSM', relation: '≤', value: 4, unit: '%', source: FIG6_SOURCE, campaign: gap('6a', 'randomaccess', 'nuksm-fair') },
  {
    figure: '8', row: 'ksm', column: 'oom_s', label: 'KSM runs out of memory at', relation: '≈', value: 900, unit: 's', source: FIG8_SOURCE,
    // The step's last sample time when it ended out of memory; null (shown "not run") otherwise.
    campaign: (c) => { const e = c.fig8End.get('ksm'); return e?.oom ? e.lastT : null; },
  },
  { figure: '8', row: 'nuksm', column: 'saved_900s', label: 'nuKSM de-duplicated within 900 s', relation: '>', value: 6, unit: 'GiB', source: FIG8_SOURCE, campaign: savedBy(900) },
  { figure: '8', row: 'nuksm', column: 'saved_total', label: 'nuKSM de-duplicated overall', relation: '≈', value: 40, unit: 'GiB', source: FIG8_SOURCE, campaign: savedBy() },
];

export const PAPER_NUMBERS: readonly PaperNumber[] = [
  ...Object.entries(TABLE2).flatMap(([benchmark, values]) =>
    TABLE2_COLUMNS.map((c, i) => ({ figure: 'table2' as const, row: benchmark, column: c.column, label: c.label, value: values[i]!, unit: c.unit, source: TABLE2_SOURCE })),
  ),
  ...Object.entries(TABLE3).flatMap(([config, [vm0, vm1]]) => [
    { figure: 'table3' as const, row: config, column: 'local_pct_vm0', label: 'de-duplicated pages local to VM-0', value: vm0, unit: '%', source: TABLE3_SOURCE },
    { figure: 'table3' as const, row: config, column: 'local_pct_vm1', label: 'de-duplicated pages local to VM-1', value: vm1, unit: '%', source: TABLE3_SOURCE },
  ]),
  ...TEXT_NUMBERS,
];
