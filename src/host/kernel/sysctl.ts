/**
 * Kernel settings under /proc/sys through an Executor: read one (null when this kernel lacks it), write
 * one and read it back. The step engine uses it for kernel.numa_balancing (the NUMA-balancing baseline,
 * docs/baselines.md), records the value it found in the step's ledger and writes it back at teardown.
 */
import { HarnessError } from '../../core/errors.ts';
import type { Executor } from '../exec/types.ts';

/** sysctl names as `sysctl` prints them ('kernel.numa_balancing'). */
export const NUMA_BALANCING = 'kernel.numa_balancing';

const pathOf = (name: string): string => {
  if (!/^[a-z0-9_]+(\.[a-z0-9_]+)+$/.test(name)) throw new HarnessError('config', `invalid sysctl name '${name}'`);
  return `/proc/sys/${name.replaceAll('.', '/')}`;
};

export async function readSysctl(exec: Executor, name: string, timeoutMs = 15_000): Promise<string | null> {
  const res = await exec.run(['sh', '-c', 'if test -e "$1"; then cat "$1"; else echo absent >&2; exit 3; fi', 'sh', pathOf(name)], { timeoutMs, allowFailure: true });
  if (res.exitCode === 3) return null;
  if (res.exitCode !== 0) throw new HarnessError('unsupported', `cannot read ${name} on ${exec.target}: ${res.stderr.trim()}`);
  return res.stdout.trim();
}

/** Writes and verifies; a kernel without the setting, or one that does not keep the value, is 'unsupported'. */
export async function writeSysctl(exec: Executor, name: string, value: string, timeoutMs = 15_000): Promise<void> {
  try {
    await exec.writeFile(pathOf(name), `${value}\n`, { timeoutMs });
  } catch (err) {
    throw new HarnessError('unsupported', `cannot write ${value} to ${name} on ${exec.target}: ${(err as Error).message}`, { sysctl: name, value }, { cause: err });
  }
  const after = await readSysctl(exec, name, timeoutMs);
  if (after !== value) throw new HarnessError('unsupported', `${name} on ${exec.target} reads ${after ?? '(absent)'} after writing ${value}`);
}
