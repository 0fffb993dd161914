/**
 * Long commands that must survive an SSH drop: started detached (setsid + nohup, stdin from
 * /dev/null) with stdout, stderr and the exit status written to files in workDir/<id>/, then
 * polled. A lost connection while waiting is retried on a new connection (the executor opens one
 * on demand). Starting the same id twice does not start the command twice: the run directory is
 * created atomically with mkdir and a second start just returns the handle.
 */
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

/** Timeout of one status poll (cut to the time a wait has left). */
const POLL_TIMEOUT_MS = 15_000;
/** The time reading a finished run's files may take, even when its wait's deadline is closer. */
export const COLLECT_MIN_MS = 15_000;

/** One look at a detached run (reconnecting if needed), by `timeoutMs` from now (default: 10 reconnects' worth). */
export async function attachDetached(exec: Executor, handle: DetachedHandle, opts: { reconnectRetries?: number; timeoutMs?: number } = {}): Promise<DetachedStatus> {
  const deadline = Date.now() + (opts.timeoutMs ?? 10 * 60_000);
  return withReconnect(statusProbe(exec, handle), { retries: opts.reconnectRetries ?? 10, deadline, tryMs: POLL_TIMEOUT_MS });
}

function statusProbe(exec: Executor, handle: DetachedHandle, signal?: AbortSignal): (timeoutMs: number) => Promise<DetachedStatus> {
  return async (timeoutMs) => parseDetachedStatus((await exec.run(['sh', '-c', STATUS_SCRIPT, 'sh', handle.dir], { timeoutMs, signal })).stdout);
}

/**
 * Poll until the detached command has written its exit status, then collect its output. Every
 * poll and reconnect gets only the time left, so the wait ends by its deadline (plus the
 * executor's kill bound) with a 'timeout' error, even when the host stops answering; reading the
 * output of a run that finished gets at least COLLECT_MIN_MS.
 */
export async function waitDetached(exec: Executor, handle: DetachedHandle, opts: WaitOptions): Promise<DetachedResult> {
  const deadline = Date.now() + opts.timeoutMs;
  const pollMs = opts.pollMs ?? 1_000;
  const retries = opts.reconnectRetries ?? 10;
  const late = (cause?: unknown) =>
    new HarnessError('timeout', `detached run ${handle.id} on ${exec.target} still running (or not answering) after ${opts.timeoutMs} ms`, { dir: handle.dir }, cause ? { cause } : undefined);
  const look = () =>
    withReconnect(statusProbe(exec, handle, opts.signal), { retries, deadline, tryMs: POLL_TIMEOUT_MS, signal: opts.signal }).catch((err: unknown) => {
      throw Date.now() >= deadline && failureClassOf(err) !== 'benchmark-error' ? late(err) : err;
    });
  for (;;) {
    if (opts.signal?.aborted) throw new HarnessError('timeout', `waiting for detached run ${handle.id} on ${exec.target} was aborted`);
    if (Date.now() >= deadline) throw late();
    const status = await look();
    opts.onPoll?.(status);
    if (status.exitCode !== null) break;
    if (!status.running && status.pid !== null) {
      // Re-read once: the command may have finished between the two checks in the script.
      const again = await look();
      if (again.exitCode !== null) break;
      throw new HarnessError('benchmark-error', `detached run ${handle.id} on ${exec.target} died without an exit status (killed, or the host rebooted)`, { dir: handle.dir });
    }
    if (Date.now() >= deadline) throw late();
    await sleep(Math.min(pollMs, deadline - Date.now()), opts.signal);
  }
  const collectBy = Math.max(deadline, Date.now() + COLLECT_MIN_MS);
  return withReconnect(
    async (timeoutMs) => {
      const [exitText, stdout, stderr] = await Promise.all([exec.readFile(`${handle.dir}/exit`, { timeoutMs }), exec.readFile(`${handle.dir}/stdout`, { timeoutMs }), exec.readFile(`${handle.dir}/stderr`, { timeoutMs })]);
      return { exitCode: Number(exitText.trim()), stdout, stderr };
    },
    { retries, deadline: collectBy, tryMs: 60_000 },
  );
}

/**
 * Retry an operation while the target is unreachable or a try times out (each try gets a fresh
 * connection), up to `retries` more tries and never past `deadline`: each try gets
 * min(tryMs, time left) as its timeout, and the back-off is cut to the time left.
 */
async function withReconnect<T>(fn: (timeoutMs: number) => Promise<T>, opts: { retries: number; deadline: number; tryMs: number; signal?: AbortSignal }): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    const left = opts.deadline - Date.now();
    try {
      return await fn(Math.max(1, Math.min(opts.tryMs, left)));
    } catch (err) {
      const cls = failureClassOf(err);
      const leftNow = opts.deadline - Date.now();
      if ((cls !== 'guest-unreachable' && cls !== 'timeout') || attempt >= opts.retries || leftNow <= 0 || opts.signal?.aborted) throw err;
      await sleep(Math.min(500 * 2 ** attempt, 5_000, leftNow), opts.signal);
    }
  }
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const t = setTimeout(done, Math.max(0, ms));
    signal?.addEventListener('abort', done, { once: true });
  });
}
