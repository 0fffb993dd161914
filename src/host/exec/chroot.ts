/**
 * Runs commands inside a directory tree with chroot(8) (an image being built, mounted on this
 * machine): `chroot <root> env -i [-C cwd] PATH=… NAME=VALUE… argv`. The environment inside is
 * built from scratch (the host's variables do not leak into the image), the working directory is
 * a path inside the root. readFile/writeFile map absolute paths under the root on the host.
 *
 * Needs root. It does not mount /proc, /sys or /dev in the tree: the caller does (a build mounts
 * them for the whole build, see src/testbeds/images/debian.ts).
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join, posix } from 'node:path';
import { LocalExecutor } from './local.ts';
import type { ExecOptions, ExecResult, Executor } from './types.ts';

export interface ChrootExecutorOptions {
  /** Used when a call does not pass timeoutMs. */
  defaultTimeoutMs?: number;
  /** Environment of every command inside the root (a call's env is added on top). */
  env?: Record<string, string>;
}

const DEFAULT_ENV: Record<string, string> = {
  PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
  HOME: '/root',
  LANG: 'C.UTF-8',
  DEBIAN_FRONTEND: 'noninteractive',
};

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

export class ChrootExecutor implements Executor {
  readonly target: string;
  private readonly local: LocalExecutor;
  private readonly env: Record<string, string>;

  constructor(readonly root: string, opts: ChrootExecutorOptions = {}) {
    if (!posix.isAbsolute(root)) throw new Error(`chroot root must be an absolute path, got '${root}'`);
    this.target = `chroot:${root}`;
    this.local = new LocalExecutor({ defaultTimeoutMs: opts.defaultTimeoutMs ?? 600_000 });
    this.env = { ...DEFAULT_ENV, ...(opts.env ?? {}) };
  }

  /** The host-side argv that runs argv inside the root. */
  commandLine(argv: readonly string[], opts: Pick<ExecOptions, 'cwd' | 'env'> = {}): string[] {
    if (argv.length === 0) throw new Error('empty command');
    if (opts.cwd !== undefined && !posix.isAbsolute(opts.cwd)) throw new Error(`cwd inside a chroot must be absolute, got '${opts.cwd}'`);
    const env = { ...this.env, ...(opts.env ?? {}) };
    const assignments = Object.entries(env).map(([k, v]) => {
      if (!ENV_NAME.test(k)) throw new Error(`invalid environment variable name '${k}'`);
      return `${k}=${v}`;
    });
    // env(1) would take a command word containing '=' for an assignment: run such a command through sh.
    const command = argv[0]!.includes('=') ? ['/bin/sh', '-c', 'exec "$@"', 'sh', ...argv] : [...argv];
    return ['chroot', this.root, '/usr/bin/env', '-i', ...(opts.cwd ? ['-C', opts.cwd] : []), ...assignments, ...command];
  }

  run(argv: readonly string[], opts: ExecOptions = {}): Promise<ExecResult> {
    const { cwd, env, ...rest } = opts;
    // The host's own environment only reaches chroot(8) itself; env -i clears it inside.
    return this.local.run(this.commandLine(argv, { cwd, env }), rest);
  }

  /** Host path of an absolute path inside the root. */
  hostPath(path: string): string {
    if (!posix.isAbsolute(path)) throw new Error(`path inside a chroot must be absolute, got '${path}'`);
    // '..' above '/' stays at '/', as inside the chroot. (Symlinks in the tree are followed on the host.)
    return join(this.root, posix.normalize(path));
  }

  async readFile(path: string): Promise<string> {
    return readFile(this.hostPath(path), 'utf8');
  }

  async writeFile(path: string, content: string): Promise<void> {
    const host = this.hostPath(path);
    await mkdir(posix.dirname(host), { recursive: true });
    await writeFile(host, content);
  }

  async close(): Promise<void> {
    /* nothing held open */
  }
}
