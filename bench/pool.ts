// Runs bench jobs as child processes (one scenario each, so peak RSS is per scenario), two at a time on this
// 2-core machine; each child prints one JSON line last.
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const runTs = fileURLToPath(new URL('../bin/run-ts.js', import.meta.url));

export async function runChild<T>(child: string, args: string[]): Promise<T> {
  const { stdout } = await run(process.execPath, [runTs, child, ...args], { timeout: 600_000, maxBuffer: 1 << 20 });
  return JSON.parse(stdout.trim().split('\n').at(-1)!) as T;
}

/** Runs `jobs` (argument lists of `child`) `parallel` at a time; results in job order. */
export async function pool<T>(child: string, jobs: string[][], parallel = 2): Promise<T[]> {
  const results: T[] = new Array(jobs.length);
  let next = 0;
  await Promise.all(Array.from({ length: parallel }, async () => {
    while (next < jobs.length) {
      const i = next++;
      results[i] = await runChild<T>(child, jobs[i]!);
    }
  }));
  return results;
}
