/** Shared by run, resume and start: open the testbed, run with signals handled, map the outcome to an exit code. */
import { type OpenCampaign, executeCampaign, loadTestbedFile } from '../campaign/campaign.ts';
import type { RunResult } from '../campaign/runner.ts';
import { createTestbed } from '../testbeds/index.ts';
import { EXIT } from './exit-codes.ts';
import { progressPrinter } from './progress.ts';

export async function runOpenCampaign(c: OpenCampaign, opts: { maxSteps?: number; quiet?: boolean } = {}): Promise<{ result: RunResult; exitCode: number }> {
  const testbedFile = loadTestbedFile(c.plan.testbed.file);
  const testbed = await createTestbed(testbedFile);
  const controller = new AbortController();
  const stop = () => controller.abort(new Error('stopped by signal'));
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  try {
    const result = await executeCampaign(c, testbed, { signal: controller.signal, maxSteps: opts.maxSteps, onProgress: opts.quiet ? undefined : progressPrinter() });
    const exitCode = result.outcome === 'rebooting' ? EXIT.rebooting : result.outcome === 'stopped' ? EXIT.stopped : result.failed - result.unsupported > 0 ? EXIT.stepsFailed : EXIT.ok;
    return { result, exitCode };
  } finally {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
    await testbed.close();
  }
}

export function describeOutcome(id: string, dir: string, r: RunResult): string {
  const head = `campaign ${id}: ${r.done} done, ${r.failed} failed${r.unsupported ? ` (${r.unsupported} unsupported on this testbed)` : ''}, ${r.pending} pending of ${r.total}`;
  if (r.outcome === 'rebooting') return `${head}\nrebooting into the next kernel; after boot run: nuksm resume ${id}\n`;
  if (r.outcome === 'stopped') return `${head}\nstopped; continue with: nuksm resume ${id}\n`;
  return `${head}\nresults: ${dir}\n`;
}
