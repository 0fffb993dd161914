/**
 * The Fig. 8 memory hog on the host: memhog.py bound to the hog's node, registering unique
 * KSM-mergeable memory step by step; its progress lines become hog_registered_gib samples.
 * Unlike the artifact's fill_another (never killed, artifact.md §5.12) it is always stopped.
 */
import { readFileSync } from 'node:fs';
import type { MemoryHog } from '../../core/scenario.ts';
import type { Executor } from '../../host/exec/types.ts';
import { GIB } from '../../host/monitors/sample.ts';
import { startDetachedHog, type DetachedHogRun } from '../step/hog.ts';
import type { HogStarter } from '../step/types.ts';

const SCRIPT = readFileSync(new URL('./memhog.py', import.meta.url), 'utf8');

/** Bytes registered so far, from the hog's stdout ("registered <bytes>" lines). */
export function registeredBytes(stdout: string): number {
  const all = [...stdout.matchAll(/^registered (\d+)$/gm)];
  return all.length ? Number(all[all.length - 1][1]) : 0;
}

export async function startMemoryHog(exec: Executor, hog: MemoryHog, opts: Parameters<HogStarter>[1]): Promise<DetachedHogRun> {
  const scriptPath = `${opts.workDir}/memhog.py`;
  await exec.run(['mkdir', '-p', opts.workDir], { timeoutMs: 10_000 });
  await exec.writeFile(scriptPath, SCRIPT, { timeoutMs: 10_000 });
  const program = ['python3', scriptPath, String(Math.round(hog.stepGiB * GIB)), String(hog.everyS), String(Math.round(hog.maxGiB * GIB)), String(opts.seed)];
  return startDetachedHog(exec, hog, program, registeredBytes, opts);
}
