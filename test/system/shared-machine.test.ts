/**
 * The shared emulated machine's contract (test/support/shared-machine.ts): a second user gets the
 * same booted kernel, and finds it as the first user found it — that user's processes gone, its work
 * dir removed, KSM unmerged, knobs and kernel.numa_balancing as at boot.
 */
import { expect, it } from 'vitest';
import { describeWith } from '../support/components.ts';
import { releaseSharedMachine, useSharedMachine } from '../support/shared-machine.ts';
import { testLog } from '../support/log.ts';

const say = testLog('shared-machine');
const KSM = '/sys/kernel/mm/ksm';

describeWith(['qemu', 'debootstrap', 'root', 'gcc'], 'shared emulated machine', () => {
  it('hands the next user the machine as it was at boot', async () => {
    const first = await useSharedMachine('backports', 'contract-a', say);
    const sh = async (script: string) => (await first.exec.run(['sh', '-c', script], { timeoutMs: 120_000 })).stdout.trim();
    const knobs = `cat ${KSM}/pages_to_scan ${KSM}/merge_across_nodes /proc/sys/kernel/numa_balancing`;
    const atBoot = await sh(knobs);
    // A user that changes everything and leaves a process behind in its work dir.
    await sh(`echo 2 > ${KSM}/run; echo 0 > ${KSM}/merge_across_nodes; echo 7 > ${KSM}/pages_to_scan; sysctl -qw kernel.numa_balancing=1`);
    await sh(`cd ${first.workDir} && (setsid sleep 600 >/dev/null 2>&1 &) ; echo started`);
    const pid = await sh(`sleep 1; find /proc -maxdepth 2 -name cwd -lname '${first.workDir}' 2>/dev/null | cut -d/ -f3 | head -1`);
    expect(pid).toMatch(/^\d+$/);
    expect(await sh(knobs)).not.toBe(atBoot);
    await releaseSharedMachine(first);

    const second = await useSharedMachine('backports', 'contract-b', say);
    expect(second.exec).toBe(first.exec); // the same machine, not a new boot
    expect(second.release).toBe(first.release);
    expect(await sh(knobs)).toBe(atBoot);
    expect(await sh(`[ -e /proc/${pid} ] && echo alive || echo gone`)).toBe('gone');
    expect(await sh(`[ -e ${first.workDir} ] && echo present || echo removed`)).toBe('removed');
    expect(await sh(`[ -d ${second.workDir} ] && echo present`)).toBe('present');
    await releaseSharedMachine(second);
  }, 1_800_000);
});
