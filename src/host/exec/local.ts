/**
 * Runs commands on this machine through execa: no shell, a timeout on every command (the process
 * is killed with SIGTERM, then SIGKILL after a grace period), output streamed while it runs.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { constants as osConstants } from 'node:os';
import { execa } from 'execa';
import { HarnessError } from '../../core/errors.ts';
import { CommandError, commandTimeout } from './errors.ts';
import type { ExecOptions, ExecResult, Executor } from './types.ts';

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
    const child = execa(argv[0]!, argv.slice(1), {
      timeout: timeoutMs,
      forceKillAfterDelay: 2_000,
      cwd: opts.cwd,
      env: opts.env,
      input: opts.input,
      stdin: opts.input === undefined ? 'ignore' : undefined,
      cancelSignal: opts.signal,
      reject: false,
      stripFinalNewline: false,
      encoding: 'utf8',
    });
    if (opts.onStdout) child.stdout?.on('data', (b: Buffer) => opts.onStdout!(b.toString('utf8')));
    if (opts.onStderr) child.stderr?.on('data', (b: Buffer) => opts.onStderr!(b.toString('utf8')));
    const res = await child;
    const durationMs = Date.now() - started;
    const stdout = String(res.stdout ?? '');
    const stderr = String(res.stderr ?? '');
    if (res.timedOut) throw commandTimeout(this.target, argv, timeoutMs);
    if (res.isCanceled) throw new HarnessError('timeout', `${argv.join(' ')} was aborted on ${this.target}`, { argv: [...argv] });
    if (res.exitCode === undefined) {
      // Spawn failure (ENOENT) or killed by a signal.
      const why = res.signal ? `killed by ${res.signal}` : (res.cause as Error | undefined)?.message ?? res.shortMessage;
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
