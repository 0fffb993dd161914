/** The Executor for a testbed file's host: this machine, or SSH with host-key checking. */
import type { TestbedFile } from '../../core/testbed-file.ts';
import { LocalExecutor, SshExecutor } from '../../host/exec/index.ts';
import type { Executor } from '../../host/exec/types.ts';

export async function hostExecutor(file: Pick<TestbedFile, 'host' | 'timeouts'>): Promise<Executor> {
  const defaultTimeoutMs = file.timeouts.commandS * 1000;
  if (file.host.kind === 'local') return new LocalExecutor({ defaultTimeoutMs });
  return new SshExecutor({
    host: file.host.host,
    port: file.host.port,
    username: file.host.user,
    privateKeyPath: file.host.identityFile,
    knownHostsFile: file.host.knownHostsFile,
    hostKeyPolicy: file.host.pinHostKeyOnFirstUse ? 'pin-on-first-use' : 'strict',
    defaultTimeoutMs,
    connectTimeoutMs: file.timeouts.sshConnectS * 1000,
  });
}
