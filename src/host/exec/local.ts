/**
 * Runs commands on this machine through execa: no shell, a timeout on every command (the command's
 * process group gets SIGTERM, then SIGKILL after a grace period), output streamed while it runs.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { constants as osConstants } from 'node:os';
import { execa } from 'execa';
import { HarnessError } from '../../core/errors.ts';
import { CommandError, commandTimeout } from './errors.ts';
import type { ExecOptions, ExecResult, Executor } from './types.ts';

const KILL_GRACE_MS = 2_000;

function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    /* already gone */
  }
}

export interface LocalExecutorOptions {
  /** Used when a call does not pass timeoutMs. */
  defaultTimeoutMs?: number;
}

export class LocalExecutor implements Executor {
  readonly target = 'local';
  readonly defaultTimeoutMs: number;

  constructor(opts: LocalExecutorOptions = {}) {
    this.defaultTimeoutMs = opts.defaultTimeoutMs ?? 60_000;
  }

  async run(argv: readonly string[], opts: ExecOptions = {}): Promise<ExecResult> {
    if (argv.length === 0) throw new Error('empty command');
    const timeoutMs = opts.timeoutMs ?? this.defaultTimeoutMs;
    const started = Date.now();
    // Own process group, so a timeout or abort stops everything the command started.
    const child = execa(argv[0]!, argv.slice(1), {
      detached: true,
      cwd: opts.cwd,
      env: opts.env,
      input: opts.input,
      stdin: opts.input === undefined ? 'ignore' : undefined,
      reject: false,
      stripFinalNewline: false,
      encoding: 'utf8',
    });
    let killedFor: HarnessError | null = null;
    const killGroup = (why: HarnessError) => {
      if (killedFor || child.pid === undefined) return;
      killedFor = why;
      const pid = child.pid;
      signalGroup(pid, 'SIGTERM');
      setTimeout(() => signalGroup(pid, 'SIGKILL'), KILL_GRACE_MS).unref();
    };
    const timer = setTimeout(() => killGroup(commandTimeout(this.target, argv, timeoutMs)), timeoutMs);
    const onAbort = () => killGroup(new HarnessError('timeout', `${argv.join(' ')} was aborted on ${this.target}`, { argv: [...argv] }));
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    if (opts.signal?.aborted) onAbort();
    if (opts.onStdout) child.stdout?.on('data', (b: Buffer) => opts.onStdout!(b.toString('utf8')));
    if (opts.onStderr) child.stderr?.on('data', (b: Buffer) => opts.onStderr!(b.toString('utf8')));
    const res = await child.finally(() => {
      clearTimeout(timer);
      opts.signal?.removeEventListener('abort', onAbort);
    });
    const durationMs = Date.now() - started;
    const stdout = String(res.stdout ?? '');
    const stderr = String(res.stderr ?? '');
    if (killedFor) throw killedFor;
    if (res.exitCode === undefined) {
      // Spawn failure (ENOENT) or killed by a signal from elsewhere.
      const why = res.signal ? `killed by ${res.signal}` : ((res.cause as Error | undefined)?.message ?? res.shortMessage);
      const code = res.signal ? 128 + (osConstants.signals[res.signal as keyof typeof osConstants.signals] ?? 0) : 127;
      if (opts.allowFailure) return { exitCode: code, stdout, stderr: stderr || String(why), durationMs };
      throw new CommandError(this.target, argv, code, stdout, stderr || String(why));
    }
    if (res.exitCode !== 0 && !opts.allowFailure) throw new CommandError(this.target, argv, res.exitCode, stdout, stderr);
    return { exitCode: res.exitCode, stdout, stderr, durationMs };
  }

  async readFile(path: string, opts: { timeoutMs?: number } = {}): Promise<string> {
    return readFile(path, { encoding: 'utf8', signal: AbortSignal.timeout(opts.timeoutMs ?? this.defaultTimeoutMs) });
  }

  async writeFile(path: string, content: string, opts: { timeoutMs?: number } = {}): Promise<void> {
    await writeFile(path, content, { encoding: 'utf8', signal: AbortSignal.timeout(opts.timeoutMs ?? this.defaultTimeoutMs) });
  }

  async close(): Promise<void> {}
}
