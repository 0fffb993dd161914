/**
 * Linux's own KSM selftests (tools/testing/selftests/{vm,mm}/ksm_tests.c and, from 6.2,
 * ksm_functional_tests.c) as an outside check, and what the reference model says about the same
 * scenarios. Pure: no I/O. Building the selftests from Debian's linux-source and running them in the
 * emulated machine is test/support/ksm-selftests.ts; the system test is
 * test/system/emulated-ksm-selftests.test.ts.
 *
 * What ksm_tests checks (facts from its source, 6.1 and 6.12 alike): it sets run=2 (unmerge all),
 * sleep_millisecs=0, merge_across_nodes=1 and pages_to_scan=<-p, default 10>, maps anonymous
 * memory, fills it, madvises it MADV_MERGEABLE, sets run=1 and waits until full_scans has grown by 2
 * (by 1 more after the writes of -U), then requires pages_shared and pages_sharing to equal what its
 * formula gives for the number of duplicate pages and the current max_page_sharing (expectedCounts).
 * It prints "OK" / "Not OK" and exits 0 (KSFT_PASS), 1 (KSFT_FAIL) or 4 (KSFT_SKIP).
 */
import { recordFromModel } from '../../src/policy/trace-file.ts';
import type { KsmScenario } from '../../src/policy/scenario.ts';

/** kselftest exit codes. */
export const KSFT = { pass: 0, fail: 1, skip: 4 } as const;

/**
 * pages_shared / pages_sharing that ksm_tests requires for `dupl` identical pages under
 * max_page_sharing `mps`: KSM pages of at most mps mappers each; when dupl % mps is 1 the last
 * page has no partner and stays unmerged.
 */
export function expectedCounts(dupl: number, mps: number): { shared: number; sharing: number } {
  const r = dupl % mps;
  if (r === 0 || r === 1) {
    const shared = Math.floor(dupl / mps);
    return { shared, sharing: shared * (mps - 1) };
  }
  const shared = Math.floor(dupl / mps) + 1;
  return { shared, sharing: dupl - shared };
}

/** The kernel knobs a case depends on, as read from the machine before it runs. */
export interface KernelKnobs {
  release: string;
  maxPageSharing: number;
  /** The smart_scan knob (6.7+), or null on kernels without it. */
  smartScan: 0 | 1 | null;
  pagesToScan: number;
}

/** A selftest case in the model: the scenario, the pass at whose end ksm_tests reads the counters, the duplicates it counts. */
export interface ModelExpression {
  scenario: KsmScenario;
  checkPass: number;
  dupl: number;
  /** How the model's scenario differs from what the selftest does (empty: it is the same). */
  approximation: string;
  /** The selftest's check: ksm_tests' exact counts (default), or ksm_functional_tests' "some page merged". */
  check?: 'counts' | 'any-merged';
}

export interface SelftestCase {
  /** ksm_tests arguments (as run_vmtests.sh gives them) or 'functional:<test function>'. */
  id: string;
  argv: string[];
  /** max_page_sharing the harness writes before the run (null: leave the kernel's). */
  presetMaxPageSharing: number | null;
  /** What the case checks, in a few words. */
  what: string;
  /** The model's version of the case, or why the model cannot express it. */
  model: ((k: KernelKnobs) => ModelExpression) | { notExpressible: string };
}

/** Extra cases nuksm adds: ksm_tests -M run after the harness set max_page_sharing (run_vmtests.sh only runs it with the default 256). */
export const EXTRA_MAX_PAGE_SHARING = [2, 3, 4] as const;

const CONTENT = 7; // any content id: the model only compares ids
const smart = (k: KernelKnobs): { smart_scan?: 0 | 1 } => (k.smartScan === null ? {} : { smart_scan: k.smartScan });

/** ksm_tests -M -p n (and -Z -z 0, where zero-filled pages are ordinary content): n identical pages in one mm. */
function mergeCase(n: number, mpsPreset: number | null, approximation = ''): (k: KernelKnobs) => ModelExpression {
  return (k) => {
    const mps = mpsPreset ?? k.maxPageSharing;
    return {
      scenario: {
        name: `ksm_tests merge ${n} pages mps ${mps}`,
        family: 0,
        knobs: { pages_to_scan: n, merge_across_nodes: 1, max_page_sharing: mps, ...smart(k) },
        procs: [{ node: 0, contents: new Array<number>(n).fill(CONTENT) }],
        initial: [0],
        events: [],
        endPass: 4,
      },
      checkPass: 2,
      dupl: n,
      approximation,
    };
  };
}

/** ksm_tests -U: 2 identical pages merged (2 passes), then a different first byte written into each; checked 1 pass later. */
function unmergeCase(k: KernelKnobs): ModelExpression {
  return {
    scenario: {
      name: 'ksm_tests unmerge',
      family: 0,
      knobs: { pages_to_scan: 10, merge_across_nodes: 1, max_page_sharing: k.maxPageSharing, ...smart(k) },
      procs: [{ node: 0, contents: [CONTENT, CONTENT] }],
      initial: [0],
      events: [
        { at: { pass: 2 }, action: { kind: 'write', proc: 0, page: 0, content: CONTENT + 1 } },
        { at: { pass: 2 }, action: { kind: 'write', proc: 0, page: 1, content: CONTENT + 2 } },
      ],
      endPass: 5,
    },
    checkPass: 3,
    dupl: 0,
    approximation: 'the writes happen exactly at the end of pass 2 (in the kernel: whenever the test sees full_scans +2)',
  };
}

/** ksm_tests -N -m mac: one page on each of nodes 0 and 1, the second made mergeable 2 passes after the first; checked 2 passes later. */
function numaCase(mac: 0 | 1): (k: KernelKnobs) => ModelExpression {
  return (k) => ({
    scenario: {
      name: `ksm_tests numa merge_across_nodes ${mac}`,
      family: 0,
      knobs: { pages_to_scan: 10, merge_across_nodes: mac, max_page_sharing: k.maxPageSharing, ...smart(k) },
      procs: [
        { node: 0, contents: [CONTENT] },
        { node: 1, contents: [CONTENT] },
      ],
      initial: [0],
      events: [{ at: { pass: 2 }, action: { kind: 'register', proc: 1 } }],
      endPass: 6,
    },
    checkPass: 4,
    dupl: mac === 1 ? 2 : 0,
    approximation:
      'the selftest has both pages in one process (two mappings, the second madvised after 2 passes); the model registers whole processes, so the second page is a second process registered at the end of pass 2',
  });
}

/**
 * The merge step every ksm_functional_tests test starts with (mmap_and_merge_range): 2 MiB (512 pages)
 * of one byte value, MADV_MERGEABLE, run=1, 2 passes; it fails unless /proc/self/ksm_merging_pages > 0.
 * The functional tests set no knob: pages_to_scan and max_page_sharing are the machine's.
 */
export function functionalMergeStep(k: KernelKnobs): ModelExpression {
  return {
    scenario: {
      name: 'ksm_functional_tests merge step',
      family: 0,
      knobs: { pages_to_scan: k.pagesToScan, merge_across_nodes: 1, max_page_sharing: k.maxPageSharing, ...smart(k) },
      procs: [{ node: 0, contents: new Array<number>(512).fill(CONTENT) }],
      initial: [0],
      events: [],
      endPass: 4,
    },
    checkPass: 2,
    dupl: 512,
    approximation: '',
    check: 'any-merged',
  };
}

const TIMING = 'measures merge/COW time and speed and checks no counter: the model has no wall-clock cost per page';

/** The model's side of each ksm_tests argument list that run_vmtests.sh uses (joined with spaces). */
const KSM_TESTS_MODEL: Record<string, SelftestCase['model']> = {
  '-M -p 10': mergeCase(10, null),
  '-U': unmergeCase,
  '-Z -p 10 -z 0': mergeCase(10, null, 'zero-filled pages are one more content: with use_zero_pages=0 the kernel merges them like any other'),
  '-Z -p 10 -z 1': { notExpressible: 'use_zero_pages=1 maps zero-filled pages to the kernel zero page (counted in ksm_zero_pages, not pages_shared); the model has no use_zero_pages and no zero page' },
  '-N -m 1': numaCase(1),
  '-N -m 0': numaCase(0),
  '-P -s 100': { notExpressible: TIMING },
  '-H -s 100': { notExpressible: `${TIMING}; also needs transparent huge pages, which the model does not have` },
};

const WHAT: Record<string, string> = {
  '-M': 'merge of identical pages (pages_shared/pages_sharing)',
  '-U': 'merged pages written to are unmerged (COW)',
  '-Z': 'zero-filled pages',
  '-N': 'pages on two NUMA nodes, merge_across_nodes',
  '-P': 'merge time and speed',
  '-H': 'merge time and speed, THP-backed area',
  '-C': 'COW time of merged pages',
  '-D': 'unmerge time',
};

/** ksm_functional_tests' test functions (6.12), what each checks and why the model cannot express its check. */
export const FUNCTIONAL_TESTS: Record<string, { what: string; notExpressible: string }> = {
  test_unmerge: { what: 'MADV_UNMERGEABLE unmerges 2 MiB of merged pages', notExpressible: 'MADV_UNMERGEABLE breaks sharing while the pages stay mapped; the model only has unregisterMm (the process exits)' },
  test_unmerge_zero_pages: { what: 'use_zero_pages=1: ksm_zero_pages after merge, partial MADV_UNMERGEABLE and write faults', notExpressible: 'no use_zero_pages / zero page / ksm_zero_pages in the model' },
  test_unmerge_discarded: { what: 'MADV_UNMERGEABLE over a range half discarded with MADV_DONTNEED', notExpressible: 'no MADV_DONTNEED (discarding mapped pages) and no MADV_UNMERGEABLE in the model' },
  test_unmerge_uffd_wp: { what: 'MADV_UNMERGEABLE on a userfaultfd-write-protected range', notExpressible: 'no userfaultfd and no MADV_UNMERGEABLE in the model' },
  test_prot_none: { what: 'PROT_NONE pages: merged, written through /proc/self/mem, unmerged', notExpressible: 'no page protections (PROT_NONE), no ptrace writes and no MADV_UNMERGEABLE in the model' },
  test_prctl: { what: 'PR_SET_MEMORY_MERGE / PR_GET_MEMORY_MERGE', notExpressible: 'a system call interface check; nothing for the model to compute' },
  test_prctl_fork: { what: 'PR_SET_MEMORY_MERGE is inherited by fork, and the child merges', notExpressible: 'no fork / per-process KSM flag inheritance in the model' },
  test_prctl_fork_exec: { what: 'PR_SET_MEMORY_MERGE survives fork + exec, and the child merges', notExpressible: 'no fork / exec in the model' },
  test_prctl_unmerge: { what: 'PR_SET_MEMORY_MERGE=0 unmerges', notExpressible: 'process-wide unmerge while the pages stay mapped is not in the model (unregisterMm is exit)' },
};

/**
 * The ksm_tests cases of a kernel tree's run_vmtests.sh (its `run_test ./ksm_tests ...` lines, in
 * order) and whether it runs ksm_functional_tests, plus nuksm's max_page_sharing extras.
 */
export function casesFromRunVmtests(runVmtests: string): { cases: SelftestCase[]; functional: boolean } {
  const cases: SelftestCase[] = [];
  let functional = false;
  for (const line of runVmtests.split('\n')) {
    const m = /run_test \.\/(ksm_tests|ksm_functional_tests)((?:\s+-\S+(?:\s+[^-\s]\S*)?)*)\s*$/.exec(line.replace(/#.*$/, '').trimEnd());
    if (!m) continue;
    if (m[1] === 'ksm_functional_tests') {
      functional = true;
      continue;
    }
    const argv = m[2]!.trim().split(/\s+/);
    const key = argv.join(' ');
    cases.push({
      id: key,
      argv,
      presetMaxPageSharing: null,
      what: WHAT[argv[0]!] ?? argv[0]!,
      model: KSM_TESTS_MODEL[key] ?? { notExpressible: `no model expression written for ksm_tests ${key} (a case this harness does not know)` },
    });
  }
  for (const mps of EXTRA_MAX_PAGE_SHARING) {
    cases.push({
      id: `-M -p 10 (max_page_sharing ${mps})`,
      argv: ['-M', '-p', '10'],
      presetMaxPageSharing: mps,
      what: `merge of 10 identical pages with max_page_sharing=${mps} set first (nuksm's extra; the formula expects ${JSON.stringify(expectedCounts(10, mps))})`,
      model: mergeCase(10, mps),
    });
  }
  return { cases, functional };
}

export interface ModelVerdict {
  /** Counters at the end of checkPass. */
  shared: number;
  sharing: number;
  expected: { shared: number; sharing: number };
  /** The counters did not change over the 2 passes after checkPass (the selftest reads them some time after). */
  stable: boolean;
  /** What ksm_tests would conclude from the model's counters. */
  ok: boolean;
  mergeAcrossNodes: 0 | 1;
  maxPageSharing: number;
}

/** Replays a case's scenario in the reference model (the model testbed's recorder) and applies the selftest's check. */
export function modelVerdict(e: ModelExpression, release: string): ModelVerdict {
  const t = recordFromModel(e.scenario, { release, source: `ksm selftest ${e.scenario.name}`, pageStates: 'last-stop' });
  const at = (pass: number) => {
    const r = t.records.find((x) => x.t === 'snap' && x.at === 'pass' && x.n === pass);
    if (!r || r.t !== 'snap') throw new Error(`model run of ${e.scenario.name} has no stop at pass ${pass}`);
    return { shared: r.c.pages_shared!, sharing: r.c.pages_sharing! };
  };
  const c = at(e.checkPass);
  const later = [e.checkPass + 1, e.checkPass + 2].filter((p) => p <= e.scenario.endPass).map(at);
  const stable = later.every((x) => x.shared === c.shared && x.sharing === c.sharing);
  const expected = expectedCounts(e.dupl, e.scenario.knobs.max_page_sharing);
  const ok = e.check === 'any-merged' ? c.shared + c.sharing > 0 : stable && c.shared === expected.shared && c.sharing === expected.sharing;
  return { ...c, expected, stable, ok, mergeAcrossNodes: e.scenario.knobs.merge_across_nodes, maxPageSharing: e.scenario.knobs.max_page_sharing };
}

/** One result of ksm_functional_tests' TAP output, tied to the test function announced for it ("# [RUN] test_x"). */
export interface TapResult {
  test: string;
  ok: boolean;
  skip: boolean;
  description: string;
}

/**
 * Parses kselftest TAP (ksft_test_result_*: "ok N desc", "not ok N desc", "ok N # SKIP desc").
 * Each test function prints one "# [RUN]" line and one result, so the n-th distinct [RUN] name is
 * result n. A forked child that returns into main() instead of exiting (6.12.95's
 * test_prctl_fork_exec when its execv fails) runs the remaining tests itself and prints their
 * results and a "# Totals" line of its own into the same stream: then the parent's result per
 * number is its last one, and `strayChild` says a child's stream was mixed in.
 */
export function parseTap(out: string): { results: TapResult[]; planned: number | null; totals: string | null; strayChild: boolean } {
  const names: string[] = [];
  const byNumber = new Map<number, { ok: boolean; skip: boolean; description: string }>();
  let planned: number | null = null;
  const totals: string[] = [];
  let repeated = false;
  for (const line of out.split('\n')) {
    const run = /^# \[RUN\] (\S+)/.exec(line);
    if (run && !names.includes(run[1]!)) names.push(run[1]!);
    const plan = /^1\.\.(\d+)/.exec(line);
    if (plan) planned = Number(plan[1]);
    const t = /^# Totals: (.*)$/.exec(line);
    if (t) totals.push(t[1]!);
    const r = /^(not )?ok (\d+) (.*)$/.exec(line);
    if (r) {
      const n = Number(r[2]);
      if (byNumber.has(n)) repeated = true;
      const skip = /^# SKIP\b/i.test(r[3]!);
      byNumber.set(n, { ok: !r[1], skip, description: r[3]!.replace(/^# SKIP\s*/i, '') });
    }
  }
  const results = [...byNumber.entries()].sort((a, b) => a[0] - b[0]).map(([n, r]) => ({ test: names[n - 1] ?? `#${n}`, ...r }));
  return { results, planned, totals: totals.at(-1) ?? null, strayChild: repeated || totals.length > 1 };
}

/** Counters ksm_tests -d prints (6.12): "pages_shared      : 1". */
export function parseDebugCounters(out: string): { shared: number; sharing: number } | null {
  const shared = /^pages_shared\s*:\s*(\d+)/m.exec(out);
  const sharing = /^pages_sharing\s*:\s*(\d+)/m.exec(out);
  return shared && sharing ? { shared: Number(shared[1]), sharing: Number(sharing[1]) } : null;
}
