/**
 * The Fig. 8 memory hog on the host: memhog.py bound to the hog's node, registering unique
 * KSM-mergeable memory step by step; its progress lines become hog_registered_gib samples.
 * Unlike the artifact's fill_another (never killed, artifact.md §5.12) it is always stopped.
 */
import { readFileSync } from 'node:fs';
import type { SampleSink } from '../../core/sample.ts';
import type { MemoryHog } from '../../core/scenario.ts';
import { runDetached, type DetachedHandle } from '../../host/exec/index.ts';
import type { Executor } from '../../host/exec/types.ts';
import { GIB, makeSample } from '../../host/monitors/sample.ts';

const SCRIPT = readFileSync(new URL('./memhog.py', import.meta.url), 'utf8');

export interface MemoryHogRun {
  handle: DetachedHandle;
  stop(): Promise<void>;
}

/** Bytes registered so far, from the hog's stdout ("registered <bytes>" lines). */
export function registeredBytes(stdout: string): number {
  const all = [...stdout.matchAll(/^registered (\d+)$/gm)];
  return all.length ? Number(all[all.length - 1][1]) : 0;
}

export async function startMemoryHog(
  exec: Executor,
  hog: MemoryHog,
  opts: { workDir: string; stepStartMs: number; periodS: number; seed: number; emit: SampleSink; signal: AbortSignal },
): Promise<MemoryHogRun> {
  const scriptPath = `${opts.workDir}/memhog.py`;
  await exec.run(['mkdir', '-p', opts.workDir], { timeoutMs: 10_000 });
  await exec.writeFile(scriptPath, SCRIPT, { timeoutMs: 10_000 });
  const delayMs = hog.startAtS * 1000 - (Date.now() - opts.stepStartMs);
  const argv = [
    'sh', '-c', 'sleep "$0"; exec "$@"', String(Math.max(0, delayMs) / 1000),
    'numactl', `--cpunodebind=${hog.node}`, `--membind=${hog.node}`,
    'python3', scriptPath, String(Math.round(hog.stepGiB * GIB)), String(hog.everyS), String(Math.round(hog.maxGiB * GIB)), String(opts.seed),
  ];
  const handle = await runDetached(exec, argv, { workDir: opts.workDir, id: 'memhog', timeoutMs: 30_000 });
  const sample = async () => {
    const out = await exec.readFile(`${handle.dir}/stdout`, { timeoutMs: 10_000 }).catch(() => '');
    opts.emit([makeSample('host', 'memhog', 'hog_registered_gib', registeredBytes(out) / GIB, (Date.now() - opts.stepStartMs) / 1000)]);
  };
  const timer = setInterval(() => void sample(), opts.periodS * 1000);
  return {
    handle,
    async stop() {
      clearInterval(timer);
      await sample();
      // The detached wrapper shell's child is the hog (sh → numactl → python3, by exec). Killing only
      // the child lets the wrapper reap it and record its exit status.
      await exec.run(['sh', '-c', 'pid=$(cat "$0/pid") && pkill -KILL -P "$pid"; true', handle.dir], { timeoutMs: 10_000, allowFailure: true });
    },
  };
}
