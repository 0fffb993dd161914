// The model's side of Linux's KSM selftests (test/support/ksm-selftest-cases.ts): the selftest's
// expected counters, the case list read from a run_vmtests.sh, TAP parsing, and the model's verdict
// on every case it can express, on both comparison orders (6.1 and 6.12).
import { describe, expect, it } from 'vitest';
import { casesFromRunVmtests, expectedCounts, functionalMergeStep, modelVerdict, parseDebugCounters, parseTap, FUNCTIONAL_TESTS } from '../support/ksm-selftest-cases.ts';

// The shape of the ksm lines of a run_vmtests.sh (6.12 style, with a CATEGORY prefix and a comment).
const RUN_VMTESTS = [
  'CATEGORY="ksm" run_test ./ksm_tests -H -s 100',
  '# KSM merge test',
  'CATEGORY="ksm" run_test ./ksm_tests -M -p 10',
  'run_test ./ksm_tests -U',
  'run_test ./ksm_tests -Z -p 10 -z 1',
  'CATEGORY="ksm_numa" run_test ./ksm_tests -N -m 0',
  'CATEGORY="ksm" run_test ./ksm_tests -Q -p 3',
  'CATEGORY="ksm" run_test ./ksm_functional_tests',
  'run_test ./mremap_test',
].join('\n');

describe('ksm selftest cases', () => {
  it("expectedCounts follows ksm_tests' formula (leftover page when dupl % mps is 1)", () => {
    expect(expectedCounts(10, 256)).toEqual({ shared: 1, sharing: 9 });
    expect(expectedCounts(2, 256)).toEqual({ shared: 1, sharing: 1 });
    expect(expectedCounts(0, 256)).toEqual({ shared: 0, sharing: 0 });
    expect(expectedCounts(10, 2)).toEqual({ shared: 5, sharing: 5 });
    expect(expectedCounts(10, 3)).toEqual({ shared: 3, sharing: 6 });
    expect(expectedCounts(10, 4)).toEqual({ shared: 3, sharing: 7 });
    expect(expectedCounts(11, 10)).toEqual({ shared: 1, sharing: 9 });
  });

  it('reads the ksm_tests cases of run_vmtests.sh in order, notices ksm_functional_tests, adds the max_page_sharing extras', () => {
    const { cases, functional } = casesFromRunVmtests(RUN_VMTESTS);
    expect(functional).toBe(true);
    expect(cases.map((c) => c.id)).toEqual(['-H -s 100', '-M -p 10', '-U', '-Z -p 10 -z 1', '-N -m 0', '-Q -p 3', '-M -p 10 (max_page_sharing 2)', '-M -p 10 (max_page_sharing 3)', '-M -p 10 (max_page_sharing 4)']);
    expect(cases[1]!.argv).toEqual(['-M', '-p', '10']);
    expect(cases.at(-1)!.presetMaxPageSharing).toBe(4);
    // An unknown case is listed as not expressible, never silently dropped.
    expect(cases[5]!.model).toEqual({ notExpressible: expect.stringContaining('-Q -p 3') });
    expect(casesFromRunVmtests('run_test ./ksm_tests -M -p 10\n').functional).toBe(false);
  });

  for (const release of ['6.1.0-50-cloud-amd64', '6.12.95+deb12-cloud-amd64']) {
    it(`the model passes every ksm_tests check it can express (${release})`, () => {
      const text = ['-M -p 10', '-U', '-Z -p 10 -z 0', '-N -m 1', '-N -m 0'].map((a) => `run_test ./ksm_tests ${a}`).join('\n');
      const { cases } = casesFromRunVmtests(text);
      const smartScan = release.startsWith('6.12') ? 1 : null;
      const got = cases.map((c) => {
        if (typeof c.model !== 'function') throw new Error(`${c.id}: expected a model expression`);
        const v = modelVerdict(c.model({ release, maxPageSharing: 256, smartScan, pagesToScan: 100 }), release);
        return [c.id, v.shared, v.sharing, v.stable, v.ok];
      });
      expect(got).toEqual([
        ['-M -p 10', 1, 9, true, true],
        ['-U', 0, 0, true, true],
        ['-Z -p 10 -z 0', 1, 9, true, true],
        ['-N -m 1', 1, 1, true, true],
        ['-N -m 0', 0, 0, true, true],
        ['-M -p 10 (max_page_sharing 2)', 5, 5, true, true],
        ['-M -p 10 (max_page_sharing 3)', 3, 6, true, true],
        ['-M -p 10 (max_page_sharing 4)', 3, 7, true, true],
      ]);
    });
  }

  it('a model run that misses the expected counters is reported as not ok', () => {
    const { cases } = casesFromRunVmtests('run_test ./ksm_tests -M -p 10\n');
    const c = cases[0]!.model as Exclude<(typeof cases)[0]['model'], { notExpressible: string }>;
    const e = c({ release: '6.1.0', maxPageSharing: 256, smartScan: null, pagesToScan: 100 });
    // Checked after 1 pass instead of 2: nothing is merged yet.
    const v = modelVerdict({ ...e, checkPass: 1 }, '6.1.0');
    expect(v).toMatchObject({ shared: 0, sharing: 0, ok: false, stable: false });
  });

  it("the functional tests' merge step merges in the model (512 pages, the machine's knobs, 2 passes)", () => {
    for (const [release, smartScan] of [['6.12.95+deb12-cloud-amd64', 1], ['6.12.95+deb12-cloud-amd64', 0]] as const) {
      const v = modelVerdict(functionalMergeStep({ release, maxPageSharing: 256, smartScan, pagesToScan: 100 }), release);
      expect(v).toMatchObject({ shared: 2, sharing: 510, ok: true, stable: true });
    }
  });

  it('parses kselftest TAP and ties each result to the test announced before it', () => {
    const out = ['TAP version 13', '1..3', '# [RUN] test_unmerge', 'ok 1 Pages were unmerged', '# [RUN] test_unmerge_zero_pages', 'ok 2 # SKIP open("/proc/self/ksm_stat") failed', '# [RUN] test_prot_none', 'not ok 3 Pages were unmerged', '# Totals: pass:1 fail:1 xfail:0 xpass:0 skip:1 error:0'].join('\n');
    const t = parseTap(out);
    expect(t.planned).toBe(3);
    expect(t.totals).toBe('pass:1 fail:1 xfail:0 xpass:0 skip:1 error:0');
    expect(t.results).toEqual([
      { test: 'test_unmerge', ok: true, skip: false, description: 'Pages were unmerged' },
      { test: 'test_unmerge_zero_pages', ok: true, skip: true, description: 'open("/proc/self/ksm_stat") failed' },
      { test: 'test_prot_none', ok: false, skip: false, description: 'Pages were unmerged' },
    ]);
    expect(t.strayChild).toBe(false);
    expect(Object.keys(FUNCTIONAL_TESTS)).toContain('test_prot_none');
  });

  it("keeps the parent's results when a forked child that failed to exec ran the remaining tests into the same output", () => {
    // The shape of 6.12.95's run in the emulated machine (test_prctl_fork_exec's execv returned).
    const out = [
      '1..3', '# [RUN] test_prctl_fork', 'ok 1 PR_SET_MEMORY_MERGE value is inherited', '# [RUN] test_prctl_fork_exec',
      '# [RUN] test_prctl_unmerge', 'ok 2 Pages were unmerged', '# Planned tests != run tests (3 != 2)', '# Totals: pass:2 fail:0 xfail:0 xpass:0 skip:0 error:0',
      'ok 2 PR_SET_MEMORY_MERGE value is inherited', '# [RUN] test_prctl_unmerge', 'ok 3 Pages were unmerged', '# Totals: pass:3 fail:0 xfail:0 xpass:0 skip:0 error:0',
    ].join('\n');
    const t = parseTap(out);
    expect(t.strayChild).toBe(true);
    expect(t.totals).toBe('pass:3 fail:0 xfail:0 xpass:0 skip:0 error:0');
    expect(t.results.map((r) => [r.test, r.description])).toEqual([
      ['test_prctl_fork', 'PR_SET_MEMORY_MERGE value is inherited'],
      ['test_prctl_fork_exec', 'PR_SET_MEMORY_MERGE value is inherited'],
      ['test_prctl_unmerge', 'Pages were unmerged'],
    ]);
  });

  it('reads the counters ksm_tests -d prints', () => {
    expect(parseDebugCounters('pages_shared      : 1\npages_sharing     : 9\nmax_page_sharing  : 256\nOK\n')).toEqual({ shared: 1, sharing: 9 });
    expect(parseDebugCounters('OK\n')).toBeNull();
  });
});
