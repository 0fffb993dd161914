/** The Executor for a testbed file's host: this machine, or SSH with host-key checking. */
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { TestbedFile } from '../../core/testbed-file.ts';
import { LocalExecutor, SshExecutor } from '../../host/exec/index.ts';
import type { Executor } from '../../host/exec/types.ts';

/** '~/x' → '$HOME/x' for key and known_hosts paths on the machine running nuksm (testbed files use '~'). */
export function expandHome(path: string): string {
  return path === '~' ? homedir() : path.startsWith('~/') ? join(homedir(), path.slice(2)) : path;
}

export async function hostExecutor(file: Pick<TestbedFile, 'host' | 'timeouts'>): Promise<Executor> {
  const defaultTimeoutMs = file.timeouts.commandS * 1000;
  if (file.host.kind === 'local') return new LocalExecutor({ defaultTimeoutMs });
  return new SshExecutor({
    host: file.host.host,
    port: file.host.port,
    username: file.host.user,
    privateKeyPath: expandHome(file.host.identityFile),
    knownHostsFile: expandHome(file.host.knownHostsFile),
    hostKeyPolicy: file.host.pinHostKeyOnFirstUse ? 'pin-on-first-use' : 'strict',
    defaultTimeoutMs,
    connectTimeoutMs: file.timeouts.sshConnectS * 1000,
  });
}
