/**
 * Minimal Executor for the workload tests (execa, local). The project's real LocalExecutor lives in
 * src/host/exec; this one keeps the workload tests independent of it.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { execa } from 'execa';
import { HarnessError } from '../../../src/core/errors.ts';
import type { ExecOptions, ExecResult, Executor } from '../../../src/host/exec/types.ts';

export class TestLocalExecutor implements Executor {
  readonly target = 'local';
  readonly commands: string[][] = [];

  async run(argv: readonly string[], opts: ExecOptions = {}): Promise<ExecResult> {
    this.commands.push([...argv]);
    const started = performance.now();
    const child = execa(argv[0]!, argv.slice(1), {
      cwd: opts.cwd,
      env: opts.env,
      input: opts.input,
      timeout: opts.timeoutMs ?? 60_000,
      cancelSignal: opts.signal,
      reject: false,
      stripFinalNewline: false,
    });
    child.stdout?.on('data', (c: Buffer) => opts.onStdout?.(c.toString()));
    child.stderr?.on('data', (c: Buffer) => opts.onStderr?.(c.toString()));
    const r = await child;
    if (r.timedOut) throw new HarnessError('timeout', `${argv.join(' ')} timed out after ${opts.timeoutMs} ms`);
    const result = { exitCode: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr), durationMs: performance.now() - started };
    if (result.exitCode !== 0 && !opts.allowFailure) {
      throw new HarnessError('benchmark-error', `${argv.join(' ')} exited with ${result.exitCode}: ${result.stderr}`);
    }
    return result;
  }

  readFile(path: string): Promise<string> {
    return readFile(path, 'utf8');
  }

  writeFile(path: string, content: string): Promise<void> {
    return writeFile(path, content);
  }

  async close(): Promise<void> {}
}
