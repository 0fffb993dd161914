/** A scripted Executor for decision-logic tests: each call is answered by a handler. */
import type { ExecOptions, ExecResult, Executor } from '../../src/host/exec/types.ts';

export type Handler = (argv: readonly string[], opts: ExecOptions) => Partial<ExecResult> | Promise<Partial<ExecResult>>;

export class FakeExecutor implements Executor {
  readonly target = 'fake';
  readonly calls: string[][] = [];
  readonly writes: [string, string][] = [];
  files = new Map<string, string>();
  writeHook: ((path: string, content: string) => void) | null = null;

  constructor(public handler: Handler = () => ({})) {}

  async run(argv: readonly string[], opts: ExecOptions = {}): Promise<ExecResult> {
    this.calls.push([...argv]);
    const r = await this.handler(argv, opts);
    const res = { exitCode: 0, stdout: '', stderr: '', durationMs: 0, ...r };
    if (res.exitCode !== 0 && !opts.allowFailure) throw new Error(`${argv.join(' ')} exited ${res.exitCode}`);
    return res;
  }

  async readFile(path: string): Promise<string> {
    const v = this.files.get(path);
    if (v === undefined) throw Object.assign(new Error(`ENOENT: ${path}`), { code: 'ENOENT' });
    return v;
  }

  async writeFile(path: string, content: string): Promise<void> {
    this.writeHook?.(path, content);
    this.writes.push([path, content]);
    this.files.set(path, content.trim());
  }

  async close(): Promise<void> {}
}
