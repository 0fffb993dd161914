/**
 * The numbers the nuKSM paper (PACT 2021) publishes that the harness's figure tables also hold,
 * each with where it is printed. The reproduction table of the report (src/results/report.ts)
 * sets every one of them next to the campaign's value. Text: /work/shared/paper (§V), BRIEF §1.
 */

/** Table II keys: the columns of the harness's table2 (src/results/figures.ts). */
export type Table2Column = 'fairness_ksm' | 'fairness_nuksm' | 'perf_nuksm_over_ksm' | 'saved_gib_ksm' | 'saved_gib_nuksm';

export interface PaperNumber {
  /** Which campaign table holds the counterpart (figure name in FIGURE_DEFS). */
  figure: 'table2' | 'table3';
  /** Row key in that table: benchmark (table2) or config (table3). */
  row: string;
  /** Column in that table. */
  column: string;
  /** What the number is, in words. */
  label: string;
  value: number;
  unit: string;
  /** Where the paper prints it. */
  source: string;
}

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

export const PAPER_NUMBERS: readonly PaperNumber[] = [
  ...Object.entries(TABLE2).flatMap(([benchmark, values]) =>
    TABLE2_COLUMNS.map((c, i) => ({ figure: 'table2' as const, row: benchmark, column: c.column, label: c.label, value: values[i]!, unit: c.unit, source: TABLE2_SOURCE })),
  ),
  ...Object.entries(TABLE3).flatMap(([config, [vm0, vm1]]) => [
    { figure: 'table3' as const, row: config, column: 'local_pct_vm0', label: 'de-duplicated pages local to VM-0', value: vm0, unit: '%', source: TABLE3_SOURCE },
    { figure: 'table3' as const, row: config, column: 'local_pct_vm1', label: 'de-duplicated pages local to VM-1', value: vm1, unit: '%', source: TABLE3_SOURCE },
  ]),
];
