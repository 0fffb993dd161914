/**
 * The reference KSM model (src/policy) against a real kernel, merge by merge, on Linux 6.12 in the
 * emulated machine. nuksm-native instances of one seed (page j identical across them, every page unique
 * within one): p0 on node 0 and p1 on node 1 three seconds later; KSM started once both have filled their
 * memory (unstable-tree merges), settled, stopped mid-list; then p2 on node 0 fills its memory and KSM
 * runs again (stable-tree hits). The `ksm` trace events of the whole run are compared with the model
 * driven with the same inputs (registration order and points from ksm_enter, per-page nodes from the
 * pre-merge pagemaps, pages_to_scan per wake, smart scan off): compareTracedRun in src/policy/trace.ts.
 *
 * What the model must reproduce here (asserted): the number of merges and their kinds, the pass each
 * merge happens in, the node of the surviving copy (the central observation) and which page survives
 * (mm, page index, which also checks the scan order). What it cannot know (not compared): timing, and
 * where in the mm list a process lands when it registers mid-pass (the trace does not say how far the
 * pass had got; it does not change these merges). Raw artifacts (trace, pagemaps, memory blocks,
 * counters, report.json) are kept in a tmp dir whose path is printed.
 */
import { mkdtempSync, mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { runDetached, type DetachedHandle, type SshExecutor } from '../../src/host/exec/index.ts';
import { defaultKsmModelConfig } from '../../src/policy/index.ts';
import { compareTracedRun, parsePagemapWords } from '../../src/policy/trace.ts';
import { GUEST_NATIVE_BIN_DIR } from '../../src/testbeds/emulated/index.ts';
import { NATIVE_BINARY, nativeArgv } from '../../src/workloads/native/index.ts';
import { describeWith } from '../support/components.ts';
import { releaseSharedMachine, useSharedMachine, type SharedMachine } from '../support/shared-machine.ts';

const say = (l: string) => process.stderr.write(`[emulated-trace] ${l}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const FOOTPRINT_MIB = 8;
const PAGES = (FOOTPRINT_MIB << 20) / 4096;
const PAGES_TO_SCAN = 500;
const SLEEP_MS = 20;
const SEED = 42;
const KSM = '/sys/kernel/mm/ksm';
const TRACING = '/sys/kernel/tracing';

describeWith(['qemu', 'debootstrap', 'root', 'gcc'], 'emulated machine, Linux 6.12: the KSM model against a real ksm trace', () => {
  const work = mkdtempSync(join(tmpdir(), 'nuksm-emulated-trace-'));
  const artifacts = join(work, 'artifacts');
  mkdirSync(artifacts, { recursive: true });
  let machine: SharedMachine | null = null;
  let exec: SshExecutor;
  let release = '';
  let WORK = '';

  const sh = async (script: string, timeoutMs = 120_000): Promise<string> => (await exec.run(['sh', '-c', script], { timeoutMs })).stdout;
  const keep = (name: string, text: string) => writeFileSync(join(artifacts, name), text);

  beforeAll(async () => {
    const t0 = Date.now();
    machine = await useSharedMachine('backports', 'emulated-trace', say);
    ({ exec, release, workDir: WORK } = machine);
    say(`running ${release} ${((Date.now() - t0) / 1000).toFixed(0)} s after the test started; artifacts in ${artifacts}`);
  }, 1_800_000);

  afterAll(async () => {
    if (machine) await releaseSharedMachine(machine);
  }, 600_000);

  it('rebuilds the same merges as the model: count, kinds, passes, surviving node and page', async () => {
    const t0 = Date.now();
    expect(release).toMatch(/^6\.12\./);
    // KSM stopped and emptied, then the knobs; tracing of the ksm events into a large enough buffer.
    const thpBefore = (await sh('cat /sys/kernel/mm/transparent_hugepage/enabled 2>/dev/null || echo none')).trim();
    await sh(
      [
        `echo 0 > ${KSM}/run`,
        `echo 2 > ${KSM}/run`,
        `echo 0 > ${KSM}/run`,
        `echo ${PAGES_TO_SCAN} > ${KSM}/pages_to_scan`,
        `echo ${SLEEP_MS} > ${KSM}/sleep_millisecs`,
        `echo 0 > ${KSM}/smart_scan`,
        `echo 1 > ${KSM}/merge_across_nodes`,
        `echo 0 > ${KSM}/use_zero_pages`,
        // THP is not modelled (docs/policy.md §1): no huge pages, so no splits at merge time.
        `[ -w /sys/kernel/mm/transparent_hugepage/enabled ] && echo never > /sys/kernel/mm/transparent_hugepage/enabled || true`,
        `[ -d ${TRACING}/events ] || mount -t tracefs nodev ${TRACING}`,
        `echo 0 > ${TRACING}/tracing_on`,
        `echo 16384 > ${TRACING}/buffer_size_kb`,
        `if [ -e ${TRACING}/options/hash-ptr ]; then echo 0 > ${TRACING}/options/hash-ptr; fi`,
        `echo 1 > ${TRACING}/events/ksm/enable`,
        `echo > ${TRACING}/trace`,
        `echo 1 > ${TRACING}/tracing_on`,
              ].join(' && '),
    );
    const knobs = await sh(`cd ${KSM} && grep . run pages_to_scan sleep_millisecs smart_scan merge_across_nodes max_page_sharing use_zero_pages; cat /sys/kernel/mm/transparent_hugepage/enabled`);
    say(`THP before: ${thpBefore}; knobs:\n${knobs}`);
    const maxPageSharing = Number(/max_page_sharing:(\d+)/.exec(knobs)![1]);

    // Instances of the same seed: page j has the same content in all of them.
    const bin = `${GUEST_NATIVE_BIN_DIR}/${NATIVE_BINARY}`;
    const pids: number[] = [];
    const starts: number[] = [];
    const startInstance = async (id: string, node: number): Promise<void> => {
      const argv = nativeArgv(bin, { workload: 'randomaccess', node, merge: 'madvise', footprintMiB: FOOTPRINT_MIB, iterations: 1, seed: SEED, goFile: `${WORK}/go`, doneFile: `${WORK}/done`, lingerS: 1800 });
      const h: DetachedHandle = await runDetached(exec, argv, { workDir: WORK, id });
      for (let i = 0; ; i++) {
        const m = /NUKSM_READY \S+ pid=(\d+)/.exec(await sh(`cat ${h.dir}/stdout 2>/dev/null; true`));
        if (m) {
          pids.push(Number(m[1]));
          break;
        }
        if (i > 240) throw new Error(`instance ${id} not ready: ${await sh(`cat ${h.dir}/stderr ${h.dir}/exit 2>/dev/null; true`)}`);
        await sleep(500);
      }
      // Its registered area: the only anonymous mapping of exactly the footprint.
      const maps = await sh(`cat /proc/${pids.at(-1)}/maps`);
      const areas = maps
        .split('\n')
        .map((l) => /^([0-9a-f]+)-([0-9a-f]+) rw-p 00000000 00:00 0\s*$/.exec(l))
        .filter((m): m is RegExpExecArray => m !== null && parseInt(m[2], 16) - parseInt(m[1], 16) === FOOTPRINT_MIB << 20);
      if (areas.length !== 1) throw new Error(`${id}: ${areas.length} anonymous areas of ${FOOTPRINT_MIB} MiB in\n${maps}`);
      starts.push(parseInt(areas[0]![1], 16));
    };
    const pagemap = async (i: number): Promise<number[]> => {
      const text = await sh(`dd if=/proc/${pids[i]}/pagemap bs=8 skip=${starts[i]! / 4096} count=${PAGES} 2>/dev/null | od -An -v -tx8`);
      const pfns = parsePagemapWords(text);
      expect(pfns).toHaveLength(PAGES);
      return pfns;
    };
    // KSM on until pages_sharing has not changed over two full scans (at least 4 scans in all), then off.
    let counters = '';
    const mergePhase = async (label: string): Promise<void> => {
      const tKsm = Date.now();
      await sh(`echo 1 > ${KSM}/run`);
      let lastSharing = -1;
      let unchangedSince = 0; // full_scans when pages_sharing was last seen to change
      let firstFull = -1;
      for (;;) {
        counters = await sh(`cd ${KSM} && grep . pages_shared pages_sharing pages_unshared pages_volatile full_scans`);
        const full = Number(/full_scans:(\d+)/.exec(counters)![1]);
        const sharing = Number(/pages_sharing:(\d+)/.exec(counters)![1]);
        if (firstFull < 0) firstFull = full;
        if (sharing !== lastSharing) {
          lastSharing = sharing;
          unchangedSince = full;
        }
        if (full - firstFull >= 4 && sharing > 0 && full - unchangedSince >= 2) break;
        if (Date.now() - tKsm > 300_000) throw new Error(`${label}: KSM did not settle in 300 s: ${counters}`);
        await sleep(1_000);
      }
      await sh(`echo 0 > ${KSM}/run`);
      say(`${label}: KSM settled after ${((Date.now() - tKsm) / 1000).toFixed(0)} s: ${counters.replace(/\n/g, ' ')}`);
    };

    // Phase 1: p0 on node 0, p1 on node 1 three seconds later; KSM once both have filled their memory.
    await startInstance('p0', 0);
    await sleep(3_000);
    await startInstance('p1', 1);
    const before = [await pagemap(0), await pagemap(1)];
    await mergePhase('phase 1 (p0, p1)');
    // Phase 2: with KSM stopped mid-list, p2 on node 0 fills its memory; KSM again: stable-tree hits.
    await startInstance('p2', 0);
    before.push(await pagemap(2));
    keep('pagemap-before.json', JSON.stringify({ pids, starts, pfns: before }));
    await mergePhase('phase 2 (p2)');
    await sh(`echo 0 > ${TRACING}/tracing_on`);
    keep('ksm-counters.txt', counters);
    say(`instances: pids ${pids.join(', ')}`);

    const traceText = await sh(`cat ${TRACING}/trace`, 300_000);
    keep('trace.txt', traceText);
    const blockSize = parseInt((await sh('cat /sys/devices/system/memory/block_size_bytes')).trim(), 16);
    const links = await sh('ls -d /sys/devices/system/node/node*/memory*');
    keep('memory-blocks.txt', `block_size_bytes ${blockSize}\n${links}`);
    const after = [await pagemap(0), await pagemap(1), await pagemap(2)];
    keep('pagemap-after.json', JSON.stringify({ pids, starts, pfns: after }));
    const merging = await sh(pids.map((p) => `cat /proc/${p}/ksm_merging_pages`).join('; '));
    await sh(`touch ${WORK}/go ${WORK}/done; kill ${pids.join(' ')} 2>/dev/null; true`);
    say(`guest part done in ${((Date.now() - t0) / 1000).toFixed(0)} s`);

    // ---- kernel vs model, with the same inputs
    // Same seed: page j has the same content in every instance; splitmix64 outputs never repeat, so no
    // two pages of one instance are equal (no zero pages either: every word is written).
    const contents = pids.map(() => Uint32Array.from({ length: PAGES }, (_, j) => j));
    const config = defaultKsmModelConfig({ nodes: 2, pagesToScan: PAGES_TO_SCAN, sleepMillisecs: SLEEP_MS, mergeAcrossNodes: true, maxPageSharing, compareOrder: 'from-6.11', smartScan: false, policy: 'ksm' });
    const r = compareTracedRun({ traceText, pids, pagemapsBefore: before, contents, blockSizeBytes: blockSize, nodeMemoryLinks: links, config });
    const { trace, merges: cmp, keptPages: kept, events, model } = r;
    expect(trace.unparsed).toEqual([]);
    const header = /entries-in-buffer\/entries-written: (\d+)\/(\d+)/.exec(traceText);
    expect(header, 'trace header').not.toBeNull();
    expect(Number(header![1]), 'no trace entries lost (buffer large enough)').toBe(Number(header![2]));
    expect(r.enterOrder, 'one ksm_enter per instance, in start order').toEqual([0, 1, 2]);
    // MPOL_BIND held: every page of an instance sat on its node before merging.
    expect(r.nodesBefore.map((ns) => ns.filter((n, _, a) => n !== a[0]).length)).toEqual([0, 0, 0]);
    expect(r.nodesBefore.map((ns) => ns[0])).toEqual([0, 1, 0]);
    const kinds = (xs: Array<{ kind: string }>) => ({ unstable: xs.filter((x) => x.kind === 'unstable').length, stable: xs.filter((x) => x.kind === 'stable').length });
    const keptNodes = (ns: number[]) => [ns.filter((n) => n === 0).length, ns.filter((n) => n === 1).length];
    const kernelKeptNodes = keptNodes(trace.merges.map((m) => r.nodeOfPfn(m.pfn)));
    const modelKeptNodes = keptNodes(events.map((e) => e.keptNode));
    const tally = (ps: number[]) => Object.fromEntries([...new Set(ps)].map((p) => [p, ps.filter((x) => x === p).length]));
    const pct = (n: number) => Math.round((1000 * n) / Math.max(1, cmp.compared)) / 10;
    const report = {
      release,
      thpBefore,
      pids,
      registrationPoints: r.registrationPoints,
      fullScans: trace.scans.filter((s) => s.kind === 'stop').length,
      failedMerges: trace.failedMerges,
      counters: counters.replace(/\n/g, ' '),
      ksmMergingPages: merging.trim().split('\n'),
      kernel: { merges: trace.merges.length, kinds: kinds(trace.merges), keptNodes: kernelKeptNodes, mergesPerPass: tally(r.kernelPasses) },
      model: { merges: events.length, kinds: kinds(events), keptNodes: modelKeptNodes, mergesPerPass: tally(r.modelPasses), counters: model.counters(), scanOrder: model.scanOrder().map((id) => r.enterOrder[id]) },
      agreementPct: { allFields: pct(cmp.agreeing), keptNode: pct(r.sameKeptNode), pass: pct(r.samePass), keptPage: pct(kept.sameKeptPage) },
      compared: cmp.compared,
      unknownPfns: kept.unknownPfns,
      keptNodeByScannedMm: Object.fromEntries(cmp.keptNodeByScannedMm),
      firstMismatches: cmp.mismatches.slice(0, 5),
      firstKeptPageMismatches: kept.mismatches.slice(0, 5),
      afterNodes: after.map((pfns) => keptNodes(pfns.map(r.nodeOfPfn))),
    };
    keep('report.json', JSON.stringify(report, null, 1));
    say(`report: ${JSON.stringify(report)}`);

    // What must hold: each instance's pages merged once, in both; the same kinds; the same passes; the
    // surviving copy on the same node (>= 95 %) and, merge by merge, the same surviving page.
    expect(trace.merges).toHaveLength(2 * PAGES);
    expect(events).toHaveLength(2 * PAGES);
    expect(Number(/pages_sharing:(\d+)/.exec(counters)![1])).toBe(2 * PAGES);
    expect(model.counters().pagesSharing).toBe(2 * PAGES);
    expect(kinds(trace.merges)).toEqual({ unstable: PAGES, stable: PAGES });
    expect(kinds(events)).toEqual(kinds(trace.merges));
    expect(r.samePass / cmp.compared).toBeGreaterThanOrEqual(0.95);
    expect(r.sameKeptNode / cmp.compared).toBeGreaterThanOrEqual(0.95);
    expect(kernelKeptNodes).toEqual(modelKeptNodes);
    expect(kept.unknownPfns).toBe(0);
    expect(kept.sameKeptPage / kept.compared).toBeGreaterThanOrEqual(0.95);
    expect(cmp.agreeing / cmp.compared).toBeGreaterThanOrEqual(0.95);
    // After merging, every instance maps the surviving copies: all on the node the kernel kept them on.
    expect(report.afterNodes[1]).toEqual(report.afterNodes[0]);
    expect(report.afterNodes[2]).toEqual(report.afterNodes[0]);
    say(`test body ${((Date.now() - t0) / 1000).toFixed(0)} s`);
  }, 900_000);
});
