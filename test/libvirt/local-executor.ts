/**
 * Minimal local Executor for the libvirt tests, used until src/host/exec publishes its own.
 * Argument arrays only (execa, no shell), a timeout on every command.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { execa } from 'execa';
import type { ExecOptions, ExecResult, Executor } from '../../src/host/exec/types.ts';

export class TestLocalExecutor implements Executor {
  readonly target = 'local';
  constructor(private readonly defaultTimeoutMs = 60_000) {}

  async run(argv: readonly string[], opts: ExecOptions = {}): Promise<ExecResult> {
    const t0 = Date.now();
    const res = await execa(argv[0], argv.slice(1), {
      timeout: opts.timeoutMs ?? this.defaultTimeoutMs,
      cwd: opts.cwd,
      env: opts.env,
      input: opts.input,
      reject: false,
      cancelSignal: opts.signal,
    });
    if (res.timedOut) throw new Error(`${argv.join(' ')}: timed out after ${opts.timeoutMs ?? this.defaultTimeoutMs} ms`);
    const out: ExecResult = { exitCode: res.exitCode ?? -1, stdout: String(res.stdout), stderr: String(res.stderr), durationMs: Date.now() - t0 };
    if (out.exitCode !== 0 && !opts.allowFailure) throw new Error(`${argv.join(' ')} exited ${out.exitCode}: ${out.stderr.trim()}`);
    return out;
  }

  readFile(path: string): Promise<string> {
    return readFile(path, 'utf8');
  }

  writeFile(path: string, content: string): Promise<void> {
    return writeFile(path, content);
  }

  async close(): Promise<void> {}
}
