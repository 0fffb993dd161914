/**
 * Runs commands on a remote host over SSH (ssh2). One connection is reused for every command and
 * kept alive; it is (re)opened on demand with retries (p-retry) so a host that is still booting
 * or has just dropped the connection is reached again. Host keys are checked against a
 * known_hosts file (see known-hosts.ts); an unknown or changed key is refused.
 *
 * Every command is an argument array quoted with shellQuote; the remote shell prints its PID
 * first (on stderr, stripped here) so that a timeout or abort kills the remote process group
 * instead of leaving it running.
 *
 * A command's timeout covers everything: waiting for the connection (a reconnect included),
 * opening the channel and running. run() ends by its timeout plus KILL_BOUND_MS whatever the
 * server does (a stopped sshd, a port that accepts and never sends a banner); the kill of a
 * timed-out command goes over the same connection and never reconnects.
 */
import { createWriteStream, type WriteStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import pRetry, { AbortError } from 'p-retry';
import { Client, type ClientChannel, type ConnectConfig } from 'ssh2';
import { HarnessError } from '../../core/errors.ts';
import { CommandError, commandTimeout } from './errors.ts';
import { KnownHosts, type HostKeyPolicy } from './known-hosts.ts';
import { shellJoin, shellQuote } from './quote.ts';
import type { ExecOptions, ExecResult, Executor } from './types.ts';

export interface SshExecutorOptions {
  host: string;
  port?: number;
  username: string;
  /** Private key (PEM/OpenSSH text) or a path to it. */
  privateKey?: string;
  privateKeyPath?: string;
  passphrase?: string;
  /** known_hosts file the host key is checked against. Required: there is no accept-anything mode. */
  knownHostsFile: string;
  /** 'strict' (default) refuses unknown hosts; 'pin-on-first-use' records the first key seen, then enforces it. */
  hostKeyPolicy?: HostKeyPolicy;
  defaultTimeoutMs?: number;
  /** TCP + handshake timeout of one connection attempt. */
  connectTimeoutMs?: number;
  /** Connection attempts after the first (a refused or timed-out port is retried). */
  connectRetries?: number;
  /** Upper bound of the backoff between connection attempts. */
  connectMaxDelayMs?: number;
  keepaliveIntervalMs?: number;
  /** Concurrent commands on the one connection (sshd's MaxSessions defaults to 10); more wait. */
  maxConcurrentCommands?: number;
}

const PID_MARKER = 'NUKSM_REMOTE_PID ';

/** run()'s options plus where runToFile() sends stdout. */
type ChannelOptions = ExecOptions & { stdoutTo?: WriteStream };

/** How long past its timeout a command may take to be killed (its rejection waits at most this). */
export const KILL_BOUND_MS = 5_000;

// $1 = the remote shell's PID, which is its process group (sshd starts each session with setsid).
const KILL_GROUP_SCRIPT = [
  'kill -TERM -- "-$1" 2>/dev/null || kill -TERM "$1" 2>/dev/null',
  'i=0; while [ $i -lt 20 ]; do kill -0 -- "-$1" 2>/dev/null || kill -0 "$1" 2>/dev/null || exit 0; sleep 0.1; i=$((i+1)); done',
  'kill -KILL -- "-$1" 2>/dev/null; kill -KILL "$1" 2>/dev/null; exit 0',
].join('\n');

/** ssh2 host-key algorithm names for a known_hosts key type. */
function hostKeyAlgorithmsFor(keyTypes: string[]): string[] {
  return keyTypes.flatMap((t) => (t === 'ssh-rsa' ? ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'] : [t]));
}

/** The command line sent to the remote shell for one argv. */
export function remoteCommandLine(argv: readonly string[], opts: Pick<ExecOptions, 'cwd' | 'env'> = {}): string {
  const parts = [`printf '${PID_MARKER}%s\\n' "$$" >&2`];
  if (opts.cwd) parts.push(`cd -- ${shellQuote(opts.cwd)} || exit 127`);
  const envArgs = Object.entries(opts.env ?? {}).map(([k, v]) => {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(k)) throw new Error(`invalid environment variable name '${k}'`);
    return shellQuote(`${k}=${v}`);
  });
  parts.push(envArgs.length > 0 ? `exec env ${envArgs.join(' ')} ${shellJoin(argv)}` : `exec ${shellJoin(argv)}`);
  return parts.join('; ');
}

export class SshExecutor implements Executor {
  readonly target: string;
  readonly defaultTimeoutMs: number;
  private readonly knownHosts: KnownHosts;
  private client: Promise<Client> | null = null;
  private current: Client | null = null;
  private readonly maxChannels: number;
  private activeChannels = 0;
  private readonly channelWaiters: (() => void)[] = [];
  /** Bumped by close(): connection attempts of an older generation stop retrying. */
  private generation = 0;
  /** Why a connection that was up ended (ssh2's error, e.g. a keepalive timeout), for the commands it cut off. */
  private readonly lostBecause = new WeakMap<Client, string>();

  constructor(readonly opts: SshExecutorOptions) {
    const port = opts.port ?? 22;
    this.target = `${opts.username}@${opts.host}:${port}`;
    this.defaultTimeoutMs = opts.defaultTimeoutMs ?? 60_000;
    if (!opts.knownHostsFile) throw new HarnessError('config', `SSH to ${this.target}: a known_hosts file is required`);
    this.knownHosts = new KnownHosts(opts.knownHostsFile, opts.hostKeyPolicy ?? 'strict');
    this.maxChannels = opts.maxConcurrentCommands ?? 8;
  }

  /** The shared connection, opened (with retries) when there is none. */
  connection(): Promise<Client> {
    if (!this.client) {
      const generation = this.generation;
      const attempt = pRetry(() => (generation === this.generation ? this.connectOnce() : Promise.reject(new AbortError(`SSH to ${this.target}: the executor was closed`))), {
        retries: this.opts.connectRetries ?? 5,
        minTimeout: 500,
        maxTimeout: this.opts.connectMaxDelayMs ?? 5_000,
        factor: 2,
      });
      this.client = attempt.catch((err: unknown) => {
        this.client = null;
        if (err instanceof HarnessError) throw err;
        throw new HarnessError('guest-unreachable', `SSH to ${this.target} failed: ${(err as Error).message}`, { target: this.target }, { cause: err });
      });
    }
    return this.client;
  }

  private async connectOnce(): Promise<Client> {
    const port = this.opts.port ?? 22;
    const privateKey = this.opts.privateKey ?? (this.opts.privateKeyPath ? await readFile(this.opts.privateKeyPath, 'utf8') : undefined);
    const knownTypes = await this.knownHosts.keyTypesFor(this.opts.host, port);
    let refusal: string | null = null;
    const config: ConnectConfig = {
      host: this.opts.host,
      port,
      username: this.opts.username,
      privateKey,
      passphrase: this.opts.passphrase,
      readyTimeout: this.opts.connectTimeoutMs ?? 20_000,
      // 6 unanswered keepalives (~60 s) before the connection counts as lost: a TCG guest on a loaded host
      // stopped answering for 30-40 s twice on Dec 2 and was fine afterwards. Command timeouts still bound
      // every command, so a dead host is still found by its command's deadline.
      keepaliveInterval: this.opts.keepaliveIntervalMs ?? 10_000,
      keepaliveCountMax: 6,
      hostVerifier: (key: Buffer, verify: (ok: boolean) => void) => {
        this.knownHosts.verify(this.opts.host, port, key).then(
          (verdict) => {
            if (!verdict.ok) refusal = verdict.message;
            verify(verdict.ok);
          },
          (err: Error) => {
            refusal = `cannot check the host key: ${err.message}`;
            verify(false);
          },
        );
      },
    };
    if (knownTypes.length > 0) config.algorithms = { serverHostKey: hostKeyAlgorithmsFor(knownTypes) as never };
    const client = new Client();
    return new Promise<Client>((resolve, reject) => {
      let ready = false;
      client.once('ready', () => {
        ready = true;
        this.current = client;
        resolve(client);
      });
      client.on('error', (err: Error & { level?: string }) => {
        if (ready) {
          // A later error also emits 'close', handled below; keep why, for the commands it cuts off.
          this.lostBecause.set(client, err.message);
          return;
        }
        client.end();
        if (refusal) {
          reject(new AbortError(new HarnessError('guest-unreachable', `SSH to ${this.target} refused: ${refusal}`, { target: this.target, hostKey: 'rejected' })));
        } else if (err.level === 'client-authentication') {
          reject(new AbortError(new HarnessError('guest-unreachable', `SSH to ${this.target}: authentication failed for ${this.opts.username}`, { target: this.target })));
        } else {
          reject(err);
        }
      });
      client.on('close', () => {
        // Next command opens a new connection.
        if (ready && this.current === client) {
          this.current = null;
          this.client = null;
        }
      });
      client.connect(config);
    });
  }

  async run(argv: readonly string[], opts: ExecOptions = {}): Promise<ExecResult> {
    await this.acquireChannel();
    try {
      return await this.runOnChannel(argv, opts);
    } finally {
      this.releaseChannel();
    }
  }

  /**
   * Run a command whose stdout (raw bytes, any size: e.g. `tar -czf -` of a results directory)
   * is streamed into the local file `path` instead of memory; the result's stdout is ''. A
   * non-zero exit throws as run() does (after the file was written), unless allowFailure.
   */
  async runToFile(argv: readonly string[], path: string, opts: Omit<ExecOptions, 'onStdout'> = {}): Promise<ExecResult> {
    const sink = createWriteStream(path);
    await new Promise<void>((resolve, reject) => sink.once('open', () => resolve()).once('error', reject));
    await this.acquireChannel();
    try {
      return await this.runOnChannel(argv, { ...opts, stdoutTo: sink });
    } finally {
      if (!sink.closed) sink.destroy();
      this.releaseChannel();
    }
  }

  // sshd refuses more than MaxSessions (default 10) channels per connection: queue beyond the
  // limit. Kill commands for timed-out runs bypass the queue, so they can never wait on it.
  private async acquireChannel(): Promise<void> {
    if (this.activeChannels < this.maxChannels) {
      this.activeChannels++;
      return;
    }
    await new Promise<void>((resolve) => this.channelWaiters.push(resolve));
  }

  private releaseChannel(): void {
    const next = this.channelWaiters.shift();
    if (next) next();
    else this.activeChannels--;
  }

  private async runOnChannel(argv: readonly string[], opts: ChannelOptions = {}): Promise<ExecResult> {
    const timeoutMs = opts.timeoutMs ?? this.defaultTimeoutMs;
    const command = remoteCommandLine(argv, opts);
    const started = Date.now();
    const deadline = started + timeoutMs;
    const aborted = () => new HarnessError('timeout', `${argv.join(' ')} was aborted on ${this.target}`, { argv: [...argv] });
    // Connecting and opening the channel count against the command's timeout.
    const client = await byDeadline(this.connection(), deadline, opts.signal, () => commandTimeout(this.target, argv, timeoutMs), aborted);
    const stream = await byDeadline(
      openChannel(client, command).catch((err: Error) => {
        throw new HarnessError('guest-unreachable', `SSH to ${this.target}: cannot open a channel: ${err.message}`, { target: this.target }, { cause: err });
      }),
      deadline,
      opts.signal,
      () => commandTimeout(this.target, argv, timeoutMs),
      aborted,
      (late) => late.close(), // opened after the caller gave up: nothing reads it
    );
    return this.collect(client, stream, argv, opts, timeoutMs, deadline, started);
  }

  private collect(client: Client, stream: ClientChannel, argv: readonly string[], opts: ChannelOptions, timeoutMs: number, deadline: number, started: number): Promise<ExecResult> {
    return new Promise<ExecResult>((resolve, reject) => {
      let stdout = '';
      let stderr = '';
      let stderrHead = '';
      let remotePid: number | null = null;
      let exitCode: number | null = null;
      let settled = false;
      let killedFor: HarnessError | null = null;

      const finish = (fn: () => void) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        opts.signal?.removeEventListener('abort', onAbort);
        client.removeListener('close', onConnectionClose);
        fn();
      };
      const kill = (why: HarnessError) => {
        if (killedFor) return;
        killedFor = why;
        const pid = remotePid;
        // TERM to the remote process group, KILL after a grace period (like execa locally), over
        // this command's own connection: a reconnect here could take longer than the command had.
        const killing = pid && pid > 0 && this.current === client ? killRemoteGroup(client, pid) : Promise.resolve();
        let bound: NodeJS.Timeout | undefined;
        const late = new Promise<void>((r) => {
          bound = setTimeout(r, KILL_BOUND_MS);
        });
        void Promise.race([killing, late]).finally(() => {
          clearTimeout(bound);
          stream.close();
          finish(() => reject(why));
        });
      };
      const timer = setTimeout(() => kill(commandTimeout(this.target, argv, timeoutMs)), Math.max(1, deadline - Date.now()));
      const onAbort = () => kill(new HarnessError('timeout', `${argv.join(' ')} was aborted on ${this.target}`, { argv: [...argv] }));
      opts.signal?.addEventListener('abort', onAbort, { once: true });
      if (opts.signal?.aborted) onAbort();
      // Why and after how long: a keepalive timeout after 40 s reads differently from a reset after 1 s.
      const lost = () => `after ${((Date.now() - started) / 1000).toFixed(1)} s${this.lostBecause.has(client) ? ` (${this.lostBecause.get(client)})` : ''}`;
      const onConnectionClose = () =>
        finish(() => reject(new HarnessError('guest-unreachable', `SSH connection to ${this.target} was lost while running ${argv.join(' ')}, ${lost()}`, { target: this.target, argv: [...argv] })));
      client.once('close', onConnectionClose);

      const sink = opts.stdoutTo;
      let sinkError: Error | null = null;
      sink?.on('error', (err: Error) => {
        sinkError ??= err;
        kill(new HarnessError('benchmark-error', `${argv.join(' ')} on ${this.target}: cannot write its output locally: ${err.message}`, { argv: [...argv] }));
      });
      stream.on('data', (b: Buffer) => {
        if (sink) {
          // Raw bytes to the file, with back-pressure: the channel pauses while the disk catches up.
          if (!sinkError && !sink.write(b)) {
            stream.pause();
            sink.once('drain', () => stream.resume());
          }
          return;
        }
        const s = b.toString('utf8');
        stdout += s;
        opts.onStdout?.(s);
      });
      stream.stderr.on('data', (b: Buffer) => {
        let s = b.toString('utf8');
        if (remotePid === null) {
          // The first stderr line is the PID marker; hold output until it is complete.
          stderrHead += s;
          const nl = stderrHead.indexOf('\n');
          if (nl < 0) return;
          const first = stderrHead.slice(0, nl);
          s = stderrHead.slice(nl + 1);
          if (first.startsWith(PID_MARKER)) remotePid = Number(first.slice(PID_MARKER.length)) || -1;
          else {
            remotePid = -1;
            s = stderrHead;
          }
          if (!s) return;
        }
        stderr += s;
        opts.onStderr?.(s);
      });
      stream.on('exit', (code: number | null, signal?: string) => {
        exitCode = code ?? 128 + (signal === 'KILL' ? 9 : signal === 'TERM' ? 15 : 0);
      });
      stream.on('close', () => {
        if (killedFor) return;
        if (remotePid === null && stderrHead) stderr += stderrHead;
        if (exitCode === null) {
          finish(() => reject(new HarnessError('guest-unreachable', `SSH channel to ${this.target} closed without an exit status while running ${argv.join(' ')}, ${lost()}`, { target: this.target })));
          return;
        }
        const code = exitCode;
        const done = () => {
          const result = { exitCode: code, stdout, stderr, durationMs: Date.now() - started };
          finish(() => {
            if (code !== 0 && !opts.allowFailure) reject(new CommandError(this.target, argv, code, stdout, stderr));
            else resolve(result);
          });
        };
        // The file is complete (flushed and closed) before the command counts as finished.
        if (sink) sink.end(done);
        else done();
      });
      stream.end(opts.input ?? undefined);
    });
  }

  /** Read a file with `cat` (text; works on any POSIX host, no SFTP subsystem needed). */
  async readFile(path: string, opts: { timeoutMs?: number } = {}): Promise<string> {
    return (await this.run(['cat', '--', path], { timeoutMs: opts.timeoutMs })).stdout;
  }

  /** Write a file with `cat >` (so sysfs writes report the kernel's error, e.g. EBUSY). */
  async writeFile(path: string, content: string, opts: { timeoutMs?: number } = {}): Promise<void> {
    await this.run(['sh', '-c', 'cat > "$1"', 'sh', path], { input: content, timeoutMs: opts.timeoutMs });
  }

  /** Close the connection; a connection still being opened is not waited for (it is dropped when it opens). */
  async close(): Promise<void> {
    const pending = this.client;
    const current = this.current;
    this.generation++;
    this.client = null;
    this.current = null;
    if (!pending) return;
    if (current === null) {
      void pending.then((c) => c.end(), () => undefined);
      return;
    }
    await new Promise<void>((resolve) => {
      const t = setTimeout(() => {
        current.destroy();
        resolve();
      }, 2_000);
      current.once('close', () => {
        clearTimeout(t);
        resolve();
      });
      current.end();
    });
  }
}

/** A channel running `command` on an open connection. */
function openChannel(client: Client, command: string): Promise<ClientChannel> {
  return new Promise((resolve, reject) => client.exec(command, (err, stream) => (err ? reject(err) : resolve(stream))));
}

/** KILL_GROUP_SCRIPT for `pid` on this connection; resolves when it ends or fails (never rejects). */
function killRemoteGroup(client: Client, pid: number): Promise<void> {
  return openChannel(client, shellJoin(['sh', '-c', KILL_GROUP_SCRIPT, 'sh', String(pid)])).then(
    (ch) =>
      new Promise<void>((resolve) => {
        ch.on('close', () => resolve());
        ch.on('data', () => undefined);
        ch.stderr.on('data', () => undefined);
        ch.end();
      }),
    () => undefined,
  );
}

/**
 * `work`, or the deadline's (or the abort's) error once that comes first. A result arriving after
 * the caller gave up goes to `onLate` (e.g. to close a channel nobody reads).
 */
function byDeadline<T>(work: Promise<T>, deadline: number, signal: AbortSignal | undefined, late: () => Error, aborted: () => Error, onLate?: (value: T) => void): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let done = false;
    const end = (fn: () => void) => {
      if (done) return false;
      done = true;
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      fn();
      return true;
    };
    const onAbort = () => end(() => reject(aborted()));
    const timer = setTimeout(() => end(() => reject(late())), Math.max(0, deadline - Date.now()));
    signal?.addEventListener('abort', onAbort, { once: true });
    if (signal?.aborted) onAbort();
    work.then(
      (v) => {
        if (!end(() => resolve(v))) onLate?.(v);
      },
      (err: unknown) => end(() => reject(err)),
    );
  });
}
