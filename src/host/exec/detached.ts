/**
 * Long commands that must survive an SSH drop: started detached (setsid + nohup, stdin from
 * /dev/null) with stdout, stderr and the exit status written to files in workDir/<id>/, then
 * polled. A lost connection while waiting is retried on a new connection (the executor opens one
 * on demand). Starting the same id twice does not start the command twice: the run directory is
 * created atomically with mkdir and a second start just returns the handle.
 */
import pRetry from 'p-retry';
import { HarnessError, failureClassOf } from '../../core/errors.ts';
import { shellJoin } from './quote.ts';
import type { Executor } from './types.ts';

export interface DetachedHandle {
  id: string;
  /** workDir/<id>: cmd, pid, stdout, stderr, exit. */
  dir: string;
  /** false when a run with this id already existed and was not started again. */
  started: boolean;
}

export interface DetachedStatus {
  running: boolean;
  pid: number | null;
  /** Set once the command has finished. */
  exitCode: number | null;
}

export interface DetachedResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

export interface WaitOptions {
  /** Give up (HarnessError 'timeout') after this long. The detached command keeps running. */
  timeoutMs: number;
  pollMs?: number;
  /** Reconnection attempts per poll when the connection is lost. */
  reconnectRetries?: number;
  signal?: AbortSignal;
  onPoll?: (status: DetachedStatus) => void;
}

const ID_PATTERN = /^[A-Za-z0-9._-]+$/;

// $1 = run dir, $2 = command line (already quoted). The outer shell exits at once; the inner one
// runs in its own session so a hang-up of the SSH session does not reach it.
const START_SCRIPT = [
  'mkdir -p -- "$(dirname -- "$1")" || exit 1',
  'if ! mkdir -- "$1" 2>/dev/null; then echo existing; exit 0; fi',
  'printf "%s\\n" "$2" > "$1/cmd"',
  'nohup setsid sh -c \'eval "$2" > "$1/stdout" 2> "$1/stderr"; echo $? > "$1/exit.tmp"; mv "$1/exit.tmp" "$1/exit"\' sh "$1" "$2" < /dev/null > /dev/null 2>&1 &',
  'echo $! > "$1/pid"',
  'echo started',
].join('\n');

// Prints: "<pid or -> <exit code or -> <running 1/0>".
const STATUS_SCRIPT = [
  'pid=-; [ -f "$1/pid" ] && pid=$(cat "$1/pid")',
  'code=-; [ -f "$1/exit" ] && code=$(cat "$1/exit")',
  'alive=0; [ "$pid" != - ] && kill -0 "$pid" 2>/dev/null && alive=1',
  'echo "$pid $code $alive"',
].join('\n');

export async function runDetached(exec: Executor, argv: readonly string[], opts: { workDir: string; id: string; timeoutMs?: number }): Promise<DetachedHandle> {
  if (!ID_PATTERN.test(opts.id)) throw new HarnessError('config', `detached run id '${opts.id}' must match ${ID_PATTERN}`);
  const dir = `${opts.workDir.replace(/\/+$/, '')}/${opts.id}`;
  const res = await exec.run(['sh', '-c', START_SCRIPT, 'sh', dir, shellJoin(argv)], { timeoutMs: opts.timeoutMs ?? 30_000 });
  return { id: opts.id, dir, started: res.stdout.trim() === 'started' };
}

export function parseDetachedStatus(text: string): DetachedStatus {
  const [pid, code, alive] = text.trim().split(/\s+/);
  const exitCode = code && code !== '-' ? Number(code) : null;
  return {
    pid: pid && pid !== '-' ? Number(pid) : null,
    exitCode: Number.isFinite(exitCode) ? exitCode : null,
    running: alive === '1' && exitCode === null,
  };
}

/** One look at a detached run (reconnecting if needed). */
export async function attachDetached(exec: Executor, handle: DetachedHandle, opts: { reconnectRetries?: number } = {}): Promise<DetachedStatus> {
  return withReconnect(async () => parseDetachedStatus((await exec.run(['sh', '-c', STATUS_SCRIPT, 'sh', handle.dir], { timeoutMs: 15_000 })).stdout), opts.reconnectRetries ?? 10);
}

/** Poll until the detached command has written its exit status, then collect its output. */
export async function waitDetached(exec: Executor, handle: DetachedHandle, opts: WaitOptions): Promise<DetachedResult> {
  const deadline = Date.now() + opts.timeoutMs;
  const pollMs = opts.pollMs ?? 1_000;
  for (;;) {
    if (opts.signal?.aborted) throw new HarnessError('timeout', `waiting for detached run ${handle.id} on ${exec.target} was aborted`);
    const status = await attachDetached(exec, handle, opts);
    opts.onPoll?.(status);
    if (status.exitCode !== null) break;
    if (!status.running && status.pid !== null) {
      // Re-read once: the command may have finished between the two checks in the script.
      const again = await attachDetached(exec, handle, opts);
      if (again.exitCode !== null) break;
      throw new HarnessError('benchmark-error', `detached run ${handle.id} on ${exec.target} died without an exit status (killed, or the host rebooted)`, { dir: handle.dir });
    }
    if (Date.now() >= deadline) throw new HarnessError('timeout', `detached run ${handle.id} on ${exec.target} still running after ${opts.timeoutMs} ms`, { dir: handle.dir });
    await new Promise((r) => setTimeout(r, pollMs));
  }
  return withReconnect(async () => {
    const [exitText, stdout, stderr] = await Promise.all([exec.readFile(`${handle.dir}/exit`), exec.readFile(`${handle.dir}/stdout`), exec.readFile(`${handle.dir}/stderr`)]);
    return { exitCode: Number(exitText.trim()), stdout, stderr };
  }, opts.reconnectRetries ?? 10);
}

/** Retry an operation while the target is unreachable (each try gets a fresh connection). */
async function withReconnect<T>(fn: () => Promise<T>, retries: number): Promise<T> {
  return pRetry(fn, {
    retries,
    minTimeout: 500,
    maxTimeout: 5_000,
    shouldRetry: ({ error }) => failureClassOf(error) === 'guest-unreachable',
  });
}
