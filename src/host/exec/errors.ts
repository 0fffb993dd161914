import { HarnessError, type FailureClass } from '../../core/errors.ts';

/** A command that exited non-zero (and the caller did not pass allowFailure). */
export class CommandError extends HarnessError {
  readonly exitCode: number;
  readonly stderr: string;
  readonly stdout: string;

  constructor(target: string, argv: readonly string[], exitCode: number, stdout: string, stderr: string, failureClass: FailureClass = 'benchmark-error') {
    const tail = (stderr.trim() || stdout.trim()).split('\n').slice(-5).join('\n');
    super(failureClass, `${argv.join(' ')} exited ${exitCode} on ${target}${tail ? `: ${tail}` : ''}`, { target, argv: [...argv], exitCode });
    this.name = 'CommandError';
    this.exitCode = exitCode;
    this.stderr = stderr;
    this.stdout = stdout;
  }
}

export function commandTimeout(target: string, argv: readonly string[], timeoutMs: number): HarnessError {
  return new HarnessError('timeout', `${argv.join(' ')} timed out after ${timeoutMs} ms on ${target} (killed)`, { target, argv: [...argv], timeoutMs });
}
