/**
 * Shared by run, resume and start: open the testbed, run with signals handled, map the outcome to
 * an exit code. Campaigns on the emulated testbed run inside its machine (campaign/in-machine.ts): the host
 * starts and watches them, then holds the copied-back store like any other campaign's.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { checkCampaignId, checkMaxSteps, createCampaign, executeCampaign, loadTestbedFile, openCampaign, planCampaign, resultsRoot, type OpenCampaign, type PlanRequest } from '../campaign/campaign.ts';
import { countsOf, type RunResult } from '../campaign/runner.ts';
import { exportFigures } from '../results/figures.ts';
import { describeReport, reportOrWarning, writeReportSync } from '../results/report.ts';
import { STORE_FILE } from '../results/store.ts';
import { ConfigError } from '../core/errors.ts';
import { createTestbed } from '../testbeds/index.ts';
import { parseShardSpec } from '../campaign/shard.ts';
import { openOrCreateShard } from '../campaign/shard-campaign.ts';
import { EXIT } from './exit-codes.ts';
import { progressReporter } from './progress.ts';

export async function runOpenCampaign(c: OpenCampaign, opts: { maxSteps?: number; quiet?: boolean } = {}): Promise<{ result: RunResult; exitCode: number }> {
  const testbedFile = loadTestbedFile(c.plan.testbed.file);
  const testbed = await createTestbed(testbedFile);
  const controller = new AbortController();
  const stop = () => controller.abort(new Error('stopped by signal'));
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  const progress = opts.quiet ? null : progressReporter();
  try {
    const result = await executeCampaign(c, testbed, { resume: testbedFile.resume, signal: controller.signal, maxSteps: opts.maxSteps, onProgress: progress?.onProgress, onLog: progress?.onLog });
    progress?.stop(result.done + result.failed + result.notNeeded);
    return { result, exitCode: exitCodeOf(result) };
  } finally {
    progress?.stop();
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
    await testbed.close();
  }
}

function exitCodeOf(result: RunResult): number {
  return result.outcome === 'rebooting' ? EXIT.rebooting : result.outcome === 'stopped' ? EXIT.stopped : result.failed - result.unsupported > 0 ? EXIT.stepsFailed : EXIT.ok;
}

/** Counts of a campaign whose runner is not here (copied back from the emulated machine). */
function resultOf(c: OpenCampaign): RunResult {
  const n = countsOf(c.journal);
  return { outcome: n.pending === 0 ? 'complete' : 'stopped', ...n };
}

// On stderr also with --json (stdout carries the JSON): a campaign in the machine runs for hours.
const machineLog = (line: string) => {
  process.stderr.write(`[machine] ${line}\n`);
};

async function inMachine<T>(fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const controller = new AbortController();
  const stop = () => controller.abort(new Error('stopped by signal'));
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  try {
    return await fn(controller.signal);
  } finally {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
  }
}

/** `nuksm run` / `nuksm start`: validate everything, create the campaign and run it where it runs. */
/** `c` and `result` are null when a campaign in the emulated machine was stopped (its results are still inside). */
export type CampaignRun = { c: OpenCampaign; result: RunResult; exitCode: number } | { c: null; result: null; exitCode: number };

export async function runNewCampaign(req: PlanRequest & { resultsDir?: string }, opts: { maxSteps?: number; quiet?: boolean } = {}): Promise<CampaignRun> {
  checkMaxSteps(opts.maxSteps);
  resultsRoot(req.resultsDir);
  const planned = planCampaign(req);
  if (planned.testbed.kind === 'emulated' && !planned.testbed.emulated?.inside) {
    // The runner is inside the machine and runs the whole campaign; say so rather than ignore it.
    if (opts.maxSteps !== undefined) throw new ConfigError('command line', '--max-steps', 'not supported on the emulated testbed (the campaign runs inside the machine to the end)');
    const { runCampaignInMachine } = await import('../campaign/in-machine.ts');
    const root = resultsRoot(req.resultsDir);
    if (!opts.quiet) process.stderr.write(`campaign ${planned.plan.campaign}: ${planned.plan.steps.length} steps inside the emulated machine → ${join(root, planned.plan.campaign)}\n`);
    const run = await inMachine((signal) => runCampaignInMachine({ ...planned, iterations: req.iterations, interleave: req.interleave }, { resultsRoot: root, log: machineLog, signal }));
    if (run.stopped) return { c: null, result: null, exitCode: EXIT.stopped };
    const c = openCampaign(req.resultsDir, planned.plan.campaign);
    const result = resultOf(c);
    return { c, result, exitCode: exitCodeOf(result) };
  }
  const c = createCampaign(req);
  if (!opts.quiet) process.stderr.write(`campaign ${c.plan.campaign}: ${c.plan.steps.length} steps on ${c.plan.testbed.name} → ${c.dir}\n`);
  return { c, ...(await runOpenCampaign(c, opts)) };
}

/** `nuksm run --shard k/N`: create (or, run again, resume) one shard's campaign and run it here. */
export async function runShard(req: PlanRequest & { resultsDir?: string; fleetFile?: string }, shard: string | undefined, opts: { maxSteps?: number; quiet?: boolean } = {}): Promise<CampaignRun> {
  if (shard === undefined) throw new ConfigError('command line', '--shard', '--fleet needs --shard k/N (which shard to run)');
  checkMaxSteps(opts.maxSteps);
  const { index, count } = parseShardSpec(shard);
  const c = openOrCreateShard({ ...req, shards: count }, index);
  if (!opts.quiet) process.stderr.write(`campaign ${c.plan.campaign}: shard ${index} of ${count}, ${c.plan.steps.length} steps on ${c.plan.testbed.name} → ${c.dir}\n`);
  return { c, ...(await runOpenCampaign(c, opts)) };
}

/** End of a shard's run: no figures (a shard holds part of the campaign; `nuksm merge` makes the figures). */
export function finishShard(run: CampaignRun, json: boolean): void {
  process.exitCode = run.exitCode;
  if (!run.c) return;
  const { c, result } = run;
  c.store.close();
  const parent = (c.plan as { shard?: { parent: string } }).shard?.parent ?? c.plan.campaign;
  const head = describeOutcome(c.plan.campaign, c.dir, result);
  const next = result.outcome === 'complete' ? `when every shard is complete: nuksm merge ${parent}\n` : '';
  process.stdout.write(json ? `${JSON.stringify({ campaign: c.plan.campaign, dir: c.dir, ...result }, null, 2)}\n` : head + next);
}

/** `nuksm resume`: continue where the campaign runs (here, or inside the emulated machine). */
export async function resumeCampaign(resultsDir: string | undefined, id: string, opts: { maxSteps?: number; quiet?: boolean } = {}): Promise<CampaignRun> {
  checkCampaignId(id, 'campaign-id');
  checkMaxSteps(opts.maxSteps);
  const dir = join(resultsRoot(resultsDir), id);
  const { MACHINE_FILE, resumeCampaignInMachine } = await import('../campaign/in-machine.ts');
  if (existsSync(join(dir, MACHINE_FILE))) {
    if (opts.maxSteps !== undefined) throw new ConfigError('command line', '--max-steps', 'not supported on the emulated testbed (the campaign runs inside the machine to the end)');
    // Copied back = complete; otherwise the machine (started if off) still holds the campaign.
    if (!existsSync(join(dir, STORE_FILE))) {
      const run = await inMachine((signal) => resumeCampaignInMachine(dir, { resultsRoot: resultsRoot(resultsDir), log: machineLog, signal }));
      if (run.stopped) return { c: null, result: null, exitCode: EXIT.stopped };
    }
    const c = openCampaign(resultsDir, id);
    const result = resultOf(c);
    return { c, result, exitCode: exitCodeOf(result) };
  }
  const c = openCampaign(resultsDir, id);
  return { c, ...(await runOpenCampaign(c, opts)) };
}

/** Shared end of run/resume: export the figures of a complete campaign, print the outcome, set the exit code. */
export function finishCampaign(run: CampaignRun, json: boolean): void {
  process.exitCode = run.exitCode;
  if (!run.c) return; // stopped inside the emulated machine: the launcher said how to continue
  const { c, result } = run;
  const figures = result.outcome === 'complete' ? exportFigures(c.store) : [];
  const report = result.outcome === 'complete' ? reportOrWarning(() => writeReportSync(c)) : null;
  c.store.close();
  process.stdout.write(json ? `${JSON.stringify({ campaign: c.plan.campaign, dir: c.dir, ...result, figures, report: report?.path ?? null }, null, 2)}\n` : describeOutcome(c.plan.campaign, c.dir, result) + (report ? describeReport(report) : ''));
}

export function describeOutcome(id: string, dir: string, r: RunResult): string {
  const head = `campaign ${id}: ${r.done} done, ${r.failed} failed${r.unsupported ? ` (${r.unsupported} unsupported on this testbed)` : ''}, ${r.notNeeded ? `${r.notNeeded} not needed (adaptive repetition), ` : ''}${r.pending} pending of ${r.total}`;
  if (r.outcome === 'rebooting') return `${head}\nrebooting into the next kernel; after boot run: nuksm resume ${id}\n`;
  if (r.outcome === 'stopped') return `${head}\nstopped; continue with: nuksm resume ${id}\n`;
  return `${head}\nresults: ${dir}\n`;
}
