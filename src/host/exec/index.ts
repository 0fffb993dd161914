export type { ExecOptions, ExecResult, Executor } from './types.ts';
export { LocalExecutor, type LocalExecutorOptions } from './local.ts';
export { SshExecutor, type SshExecutorOptions, remoteCommandLine } from './ssh.ts';
export { KnownHosts, type HostKeyPolicy, parseKnownHosts, hostFieldMatches, knownHostsName } from './known-hosts.ts';
export { shellQuote, shellJoin } from './quote.ts';
export { CommandError } from './errors.ts';
export { runDetached, attachDetached, waitDetached, parseDetachedStatus, type DetachedHandle, type DetachedStatus, type DetachedResult } from './detached.ts';
export { ChrootExecutor, type ChrootExecutorOptions } from './chroot.ts';
