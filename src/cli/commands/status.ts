/** `nuksm status [campaign-id]`: step states, failures and where the results are. */
import type { Argv, CommandModule } from 'yargs';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { openCampaign, resultsRoot } from '../../campaign/campaign.ts';
import { MACHINE_FILE, type MachineRecord } from '../../campaign/in-machine.ts';
import { STORE_FILE } from '../../results/store.ts';
import { textTable } from '../format.ts';
import { withJson, withResultsDir } from '../options.ts';
import { campaignIdOrLatest } from './resume.ts';

export interface StatusArgs {
  campaignId?: string;
  resultsDir?: string;
  json: boolean;
  finished?: boolean;
}

export const statusCommand: CommandModule<object, StatusArgs> = {
  command: 'status [campaign-id]',
  describe: 'Show the state of every step of a campaign (default: the latest)',
  builder: (y: Argv<object>) =>
    withJson(withResultsDir(y))
      .positional('campaign-id', { type: 'string', describe: 'campaign' })
      .option('finished', { type: 'boolean', default: false, describe: 'print only the number of finished (done, failed or not needed) steps, from the journal (the boot-loop guard reads it)' }) as unknown as Argv<StatusArgs>,
  handler: (args) => {
    const id = campaignIdOrLatest(args.campaignId, args.resultsDir);
    const dir = join(resultsRoot(args.resultsDir), id);
    if (existsSync(join(dir, MACHINE_FILE)) && !existsSync(join(dir, STORE_FILE))) {
      // Its journal is inside the emulated machine until the campaign completes and is copied back.
      const record = JSON.parse(readFileSync(join(dir, MACHINE_FILE), 'utf8')) as MachineRecord;
      const text = `campaign ${id} runs inside the emulated machine (${record.machine.stateDir}, started ${record.startedAt}); its results come back to ${dir} when it completes. 'nuksm resume ${id}' watches it (and starts the machine if it is off).\n`;
      process.stdout.write(args.json ? `${JSON.stringify({ campaign: id, dir, inMachine: record }, null, 2)}\n` : text);
      return;
    }
    const c = openCampaign(args.resultsDir, id);
    if (args.finished) {
      const n = c.journal.finishedSteps();
      c.store.close();
      process.stdout.write(`${n}\n`);
      return;
    }
    const steps = c.journal.steps();
    const counts = c.journal.counts();
    c.store.close();
    if (args.json) {
      const slim = steps.map(({ scenario: _s, ...rest }) => rest);
      process.stdout.write(`${JSON.stringify({ campaign: c.plan.campaign, dir: c.dir, counts, steps: slim }, null, 2)}\n`);
      return;
    }
    const notNeeded = counts['not-needed'] ? `, ${counts['not-needed']} not needed (adaptive repetition)` : '';
    process.stdout.write(`campaign ${c.plan.campaign} (${c.plan.spec} on ${c.plan.testbed.name}): ${counts.done} done, ${counts.failed} failed${notNeeded}, ${counts.running} running, ${counts.pending} pending\n\n`);
    const adaptive = steps.some((s) => s.adaptive);
    const rows = steps.map((s) => [s.seq, s.stepId, s.state, s.attempts, s.failureClass ? `${s.failureClass}: ${s.failureMessage ?? ''}`.slice(0, 100) : '', ...(adaptive ? [s.decision?.reason ?? (s.adaptive ? 'conditional: not decided yet' : '')] : [])]);
    process.stdout.write(textTable(['#', 'step', 'state', 'attempts', 'failure', ...(adaptive ? ['adaptive repetition'] : [])], rows));
  },
};
