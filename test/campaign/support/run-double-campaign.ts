/**
 * TEST HELPER (a child process of test/campaign/adaptive.test.ts): resumes a campaign with the
 * scripted double testbed, so the test can SIGKILL a real process at any moment of an adaptive
 * campaign. Args: <results dir> <campaign id> <runtimeSpread JSON> <slowMs>. Prints `step <id>`
 * on stderr when a step is about to run.
 */
import pino from 'pino';
import { executeCampaign, openCampaign } from '../../../src/campaign/campaign.ts';
import { DoubleTestbed } from './double-testbed.ts';

const [resultsDir, id, spread, slowMs] = process.argv.slice(2);
const c = openCampaign(resultsDir, id!);
const result = await executeCampaign(c, new DoubleTestbed({ runtimeSpread: JSON.parse(spread!) as Record<string, number>, slowMs: Number(slowMs) }), {
  retryDelayMs: 0,
  log: pino({ level: 'silent' }),
  onProgress: (p) => void process.stderr.write(`step ${p.step.stepId}\n`),
});
c.store.close();
process.exitCode = result.outcome === 'complete' ? 0 : 3;
