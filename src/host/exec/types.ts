/**
 * Executors run commands on a host or guest: locally (execa) or over SSH (ssh2). Commands are
 * always argument arrays; an executor quotes them itself, never a caller.
 */
export interface ExecOptions {
  /** Every command has a timeout; the default is the executor's. */
  timeoutMs?: number;
  cwd?: string;
  env?: Record<string, string>;
  input?: string;
  /** Streamed output, e.g. into the step's log. */
  onStdout?: (chunk: string) => void;
  onStderr?: (chunk: string) => void;
  /** Return a non-zero exit instead of throwing. */
  allowFailure?: boolean;
  signal?: AbortSignal;
}

export interface ExecResult {
  exitCode: number;
  stdout: string;
  stderr: string;
  durationMs: number;
}

export interface Executor {
  /** 'local' or 'user@host:port', for logs and manifests. */
  readonly target: string;
  run(argv: readonly string[], opts?: ExecOptions): Promise<ExecResult>;
  readFile(path: string, opts?: { timeoutMs?: number }): Promise<string>;
  writeFile(path: string, content: string, opts?: { timeoutMs?: number }): Promise<void>;
  close(): Promise<void>;
}
