/** `nuksm` as a child process (bin/nuksm.js), as a user runs it: stdout kept, stderr kept and passed on line by line. */
import { spawn, type ChildProcess } from 'node:child_process';
import { join, resolve } from 'node:path';

const ROOT = resolve(import.meta.dirname, '../..');

export interface NuksmChild {
  child: ChildProcess;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  out(): string;
  err(): string;
}

export function spawnNuksm(args: string[], onLine: (l: string) => void = () => undefined): NuksmChild {
  const child = spawn(process.execPath, [join(ROOT, 'bin', 'nuksm.js'), ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (b: Buffer) => (stdout += b.toString()));
  child.stderr!.on('data', (b: Buffer) => {
    stderr += b.toString();
    for (const line of b.toString().split('\n').filter(Boolean)) onLine(line);
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => child.once('exit', (code, signal) => r({ code, signal })));
  return { child, exited, out: () => stdout, err: () => stderr };
}
