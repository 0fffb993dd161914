/**
 * `nuksm boot-resume <show|pause|unpause|stop> [campaign-id]`: the boot-resume hooks a campaign
 * installed on this host (src/campaign/boot-resume.ts). pause: the next boots resume nothing until
 * unpause; stop: the hooks are removed now and for good (the campaign stays resumable by hand).
 */
import { existsSync, readFileSync } from 'node:fs';
import type { Argv, CommandModule } from 'yargs';
import { hookIdOf } from '../../campaign/boot-resume.ts';
import { LocalExecutor } from '../../host/exec/index.ts';
import { bootResumePaths, pauseBootResume, stopBootResume } from '../../host/boot-resume/index.ts';
import { ConfigError } from '../../core/errors.ts';
import { withResultsDir } from '../options.ts';
import { campaignIdOrLatest } from './resume.ts';

export interface BootResumeArgs {
  action: 'show' | 'pause' | 'unpause' | 'stop';
  campaignId?: string;
  resultsDir?: string;
  stateRoot?: string;
}

export const bootResumeCommand: CommandModule<object, BootResumeArgs> = {
  command: 'boot-resume <action> [campaign-id]',
  describe: "Show, pause, unpause or stop the hooks that resume a campaign after this host's reboots",
  builder: (y: Argv<object>) =>
    withResultsDir(y)
      .positional('action', { type: 'string', choices: ['show', 'pause', 'unpause', 'stop'] as const, demandOption: true })
      .positional('campaign-id', { type: 'string', describe: 'campaign (default: the latest)' })
      .option('state-root', { type: 'string', describe: 'hooks state root (default /var/lib/nuksm/resume)' }) as unknown as Argv<BootResumeArgs>,
  handler: async (args) => {
    const id = campaignIdOrLatest(args.campaignId, args.resultsDir);
    const hook = { id: hookIdOf(id), stateRoot: args.stateRoot };
    const p = bootResumePaths(hook);
    if (!existsSync(p.stateDir)) throw new ConfigError('command line', 'campaign-id', `no boot-resume hooks of campaign '${id}' on this host (${p.stateDir})`);
    const exec = new LocalExecutor({ defaultTimeoutMs: 60_000 });
    if (args.action === 'pause') await pauseBootResume(exec, hook, true);
    if (args.action === 'unpause') await pauseBootResume(exec, hook, false);
    if (args.action === 'stop') await stopBootResume(exec, hook);
    const installed = [p.unitFile, p.cronFile].filter((f) => existsSync(f));
    const lines = [
      `campaign ${id}: hooks ${installed.length ? installed.join(', ') : 'not installed'}${existsSync(p.pauseFile) ? ' (paused)' : ''}${existsSync(p.stopFile) ? ' (stopped)' : ''}`,
      existsSync(p.reportFile) ? `boot loop: ${readFileSync(p.reportFile, 'utf8').trim()}` : null,
      existsSync(p.bootLog) ? `last boots:\n${readFileSync(p.bootLog, 'utf8').trim().split('\n').slice(-5).join('\n')}` : null,
    ];
    process.stdout.write(`${lines.filter(Boolean).join('\n')}\n`);
  },
};
