/**
 * A campaign that runs on the host it reboots (a physical server running nuksm itself, or the
 * harness inside the emulated machine) continues after each boot by itself: before running, the
 * campaign installs the boot-resume hooks of src/host/boot-resume (systemd unit, and an @reboot
 * cron entry for the scalability flow, as the paper's artifact does), whose guard runs
 * `nuksm resume <id>`; the hooks are removed when the campaign completes.
 *
 * The guard's boot-loop check measures progress as the journal's finished steps (`nuksm status
 * <id> --finished`). Whoever watches the campaign from outside reads <campaign dir>/progress.json,
 * rewritten atomically before every step and at the end.
 */
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { EXIT } from '../core/exit-codes.ts';
import type { TestbedFile } from '../core/testbed-file.ts';
import { LocalExecutor } from '../host/exec/index.ts';
import { installBootResume, removeBootResume, type BootResumeSpec } from '../host/boot-resume/index.ts';
import { STORE_FILE } from '../results/store.ts';
import type { Plan } from './plan.ts';
import type { RunOutcome } from './runner.ts';

export const PROGRESS_FILE = 'progress.json';
/**
 * nuksm exits a rerun would not change (complete, steps failed, bad input, rebooting, stopped);
 * a crash (internal error 5, a signal: 128+n) is worth running again.
 */
export const FINAL_EXITS: readonly number[] = [EXIT.ok, EXIT.stepsFailed, EXIT.config, EXIT.rebooting, EXIT.stopped];
const HARNESS_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

export interface CampaignProgress {
  campaign: string;
  /** 'running' while a runner works on it; the runner's outcome after; 'error' if the runner threw. */
  outcome: 'running' | RunOutcome | 'error';
  done: number;
  failed: number;
  /** Adaptive iterations decided away (absent in files written before adaptive repetition). */
  notNeeded?: number;
  pending: number;
  total: number;
  /** Step about to run (while 'running'). */
  current: string | null;
  message: string | null;
  updatedAt: string;
}

/** The boot-resume hook id of a campaign (names its unit, cron file and state dir). */
export function hookIdOf(campaignId: string): string {
  return campaignId.replace(/[^A-Za-z0-9_-]+/g, '_').slice(0, 64);
}

/** Hook spec for a campaign, or null when the testbed file asks for no resume. */
export function campaignResumeHook(plan: Plan, dir: string, resume: TestbedFile['resume']): BootResumeSpec | null {
  if (resume === 'none') return null;
  // The artifact's scalability flow restarts from @reboot: add the cron entry when the plan has one.
  const scalability = plan.steps.some((s) => s.scenario.memoryHog !== null && s.scenario.memoryHog !== undefined);
  const nuksm = [process.execPath, join(HARNESS_ROOT, 'bin', 'nuksm.js')];
  return {
    id: hookIdOf(plan.campaign),
    command: [...nuksm, 'resume', plan.campaign, '--results-dir', dirname(dir)],
    // Progress is the journal's count of finished steps (done or failed), not progress.json's mtime;
    // read by a plain-JS script (the same number as `nuksm status --finished`, without tsx's start-up).
    progressCommand: [process.execPath, join(HARNESS_ROOT, 'bin', 'finished-steps.cjs'), join(dir, STORE_FILE)],
    via: resume === 'systemd' && scalability ? 'both' : resume,
    finalExitCodes: FINAL_EXITS,
    attemptsPerBoot: 3,
    cwd: HARNESS_ROOT,
    // The resume runs like this run: same harness commit label, same Node options.
    env: Object.fromEntries(['NUKSM_HARNESS_COMMIT', 'NODE_OPTIONS'].flatMap((k) => (process.env[k] ? [[k, process.env[k]!]] : []))),
  };
}

export async function armBootResume(hook: BootResumeSpec): Promise<void> {
  await installBootResume(new LocalExecutor({ defaultTimeoutMs: 60_000 }), hook);
}

export async function disarmBootResume(hook: BootResumeSpec): Promise<void> {
  await removeBootResume(new LocalExecutor({ defaultTimeoutMs: 60_000 }), hook);
}
