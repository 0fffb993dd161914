/**
 * virsh through an Executor: argument arrays, an explicit connection URI (qemu:///system or
 * qemu+ssh://…), a timeout on every call. Failures become HarnessErrors naming the command.
 */
import { HarnessError, type FailureClass } from '../../core/errors.ts';
import type { ExecResult, Executor } from '../exec/types.ts';

export class Virsh {
  constructor(
    readonly exec: Executor,
    readonly uri: string,
    readonly defaultTimeoutMs = 60_000,
  ) {}

  /** Run `virsh -c <uri> <args…>`; throws HarnessError(failureClass) on a non-zero exit. */
  async run(args: readonly string[], opts: { timeoutMs?: number; allowFailure?: boolean; failureClass?: FailureClass } = {}): Promise<ExecResult> {
    const argv = ['virsh', '-q', '-c', this.uri, ...args];
    let res: ExecResult;
    try {
      res = await this.exec.run(argv, { timeoutMs: opts.timeoutMs ?? this.defaultTimeoutMs, allowFailure: true });
    } catch (err) {
      // Timeouts and unreachable hosts already carry their class (executors throw HarnessErrors).
      if (err instanceof HarnessError) throw err;
      throw new HarnessError('timeout', `virsh ${args.join(' ')} on ${this.exec.target}: ${(err as Error).message}`, { argv }, { cause: err });
    }
    if (res.exitCode !== 0 && !opts.allowFailure) {
      throw new HarnessError(opts.failureClass ?? 'benchmark-error', `virsh ${args.join(' ')} failed (exit ${res.exitCode}) on ${this.exec.target}: ${res.stderr.trim() || res.stdout.trim()}`, {
        argv,
        exitCode: res.exitCode,
        stderr: res.stderr,
      });
    }
    return res;
  }

  /** 'running', 'shut off', … or null when the domain does not exist. */
  async domainState(name: string): Promise<string | null> {
    const res = await this.run(['domstate', name], { allowFailure: true });
    return res.exitCode === 0 ? res.stdout.trim() : null;
  }

  async listAllDomains(): Promise<string[]> {
    const res = await this.run(['list', '--all', '--name']);
    return res.stdout.split('\n').map((l) => l.trim()).filter(Boolean);
  }
}
