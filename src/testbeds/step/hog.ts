/**
 * The Fig. 8 memory hog's mechanics, shared by every testbed: a detached program bound to the
 * hog's node (tagged with the step's marker, so a reclaim after a kill finds it), started at the
 * hog's start time, whose stdout progress becomes `hog_registered_gib` samples every period; it is
 * always killed at stop (unlike the artifact's fill_another, artifact.md §5.12). Which program
 * runs (memhog.py on a server, nuksm-native in the emulated machine) is the testbed's choice.
 */
import type { MemoryHog } from '../../core/scenario.ts';
import { runDetached, type DetachedHandle } from '../../host/exec/index.ts';
import type { Executor } from '../../host/exec/types.ts';
import { GIB, makeSample } from '../../host/monitors/sample.ts';
import type { HogStarter, MemoryHogRun } from './types.ts';

export interface DetachedHogRun extends MemoryHogRun {
  handle: DetachedHandle;
}

/** `program`: the hog's argv (run under numactl on the hog's node); `registeredBytes`: its stdout → bytes registered so far. */
export async function startDetachedHog(
  exec: Executor,
  hog: MemoryHog,
  program: readonly string[],
  registeredBytes: (stdout: string) => number,
  opts: Parameters<HogStarter>[1],
): Promise<DetachedHogRun> {
  await exec.run(['mkdir', '-p', opts.workDir], { timeoutMs: 10_000 });
  const delayMs = hog.startAtS * 1000 - (Date.now() - opts.stepStartMs);
  const argv = [
    'env', `NUKSM_INSTANCE=${opts.marker}`,
    'sh', '-c', 'sleep "$0"; exec "$@"', String(Math.max(0, delayMs) / 1000),
    'numactl', `--cpunodebind=${hog.node}`, `--membind=${hog.node}`,
    ...program,
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
      // The detached wrapper shell's child is the hog (env → sh → numactl → program, by exec).
      // Killing only the child lets the wrapper reap it and record its exit status.
      await exec.run(['sh', '-c', 'pid=$(cat "$0/pid") && pkill -KILL -P "$pid"; true', handle.dir], { timeoutMs: 10_000, allowFailure: true });
    },
  };
}
