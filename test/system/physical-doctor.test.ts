/**
 * doctor against this real host: what is right is reported ok, what is wrong (a node the host
 * lacks, no GRUB menu, an inactive libvirt network, a missing base image and keys, perf events
 * this VM cannot count) fails with a fix.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeWith } from '../support/components.ts';
import type { TestbedFile } from '../../src/core/testbed-file.ts';
import { genericChecks } from '../../src/cli/commands/doctor.ts';
import { LocalExecutor } from '../../src/host/exec/index.ts';
import { doctorChecks, formatFindings, type DoctorFinding } from '../../src/testbeds/physical/doctor.ts';
import { readHostNodes } from '../../src/testbeds/physical/topology.ts';
import { ensureLibvirtd, type StartedDaemons } from '../libvirt/daemons.ts';

describeWith(['root', 'ksm', 'libvirtd', 'qemu', 'perf', 'numactl'], 'doctor on this host', () => {
  let daemons: StartedDaemons | null = null;
  let work = '';
  let file: TestbedFile;
  let findings: DoctorFinding[] = [];
  const find = (check: string) => findings.find((f) => f.check === check);

  beforeAll(async () => {
    daemons = await ensureLibvirtd();
    work = mkdtempSync(join(tmpdir(), 'nuksm-doctor-'));
    const baseImage = join(work, 'base.qcow2');
    execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', baseImage, '64M']);
    writeFileSync(join(work, 'id_ed25519'), 'not a real key, only its presence is checked\n');
    const release = execFileSync('uname', ['-r'], { encoding: 'utf8' }).trim();
    const nodes = await readHostNodes(new LocalExecutor());
    file = {
      file: 'doctor.test.yaml',
      name: 'this-host',
      kind: 'physical',
      host: { kind: 'local' },
      nodes: [...nodes, { id: nodes.length, cpus: [64], memoryGiB: 1 }],
      kernels: { running: { bootEntry: 'Debian GNU/Linux', release, ksmKnobs: {} }, nuksm: { bootEntry: 'nuKSM', release: '5.4.0nuKSMSingleTree+', ksmKnobs: { smart_ksm: '1' } } },
      modes: {},
      perfEventSet: 'skylake-sp',
      guests: { user: 'root', identityFile: join(work, 'id_ed25519'), knownHostsFile: join(work, 'known_hosts'), network: 'nuksm-doctor-missing', baseImage, overlayDir: join(work, 'overlays') },
      libvirtUri: 'qemu:///system',
      timeouts: { bootS: 120, sshConnectS: 10, commandS: 60, vmStartS: 60, vmShutdownS: 30 },
      resume: 'none',
      emulated: null,
    };
    findings = await doctorChecks(file);
  }, 120_000);

  afterAll(async () => {
    if (work) rmSync(work, { recursive: true, force: true });
    await daemons?.stop();
  });

  it('reports what is right', () => {
    for (const check of ['host-access', 'root', 'ksm-files', 'ksm-writable', 'kernel-running', 'libvirt', 'base-image', 'overlay-dir', 'guest-key', 'tool:numactl', 'tool:virsh']) {
      expect(find(check)?.status, `${check}: ${find(check)?.message}`).toBe('ok');
    }
  });

  it('fails what is wrong, each with a fix', () => {
    const failed = findings.filter((f) => f.status === 'fail');
    for (const f of failed) expect(f.fix, f.check).toMatch(/\w+/);
    expect(find('numa')).toMatchObject({ status: 'fail' });
    expect(find('numa')!.message).toMatch(new RegExp(`node ${file.nodes.length - 1} is in the testbed file`));
    expect(find('grub')).toMatchObject({ status: 'fail' }); // /boot is empty in this container
    expect(find('libvirt-network')!.message).toMatch(/network 'nuksm-doctor-missing' does not exist/);
    expect(find('guest-known-hosts')).toMatchObject({ status: 'fail' });
    // No vPMU in this VM: the Skylake events are not supported, and the fix names the matching set.
    expect(find('perf')).toMatchObject({ status: 'fail' });
    expect(find('perf')!.message).toMatch(/not supported here: local_dram, remote_dram/);
  });

  it('formats a report, and `nuksm doctor` includes the physical checks after the generic ones', async () => {
    const text = formatFindings(findings);
    expect(text).toMatch(/^FAIL numa: /m);
    expect(text).toMatch(/^ {5}fix: /m);
    expect(text).toMatch(/^ok {3}ksm-files: /m);
    const cli = await genericChecks(file, join(work, 'results'));
    expect(cli.map((f) => f.check)).toEqual(expect.arrayContaining(['testbed file', 'testbed driver', 'results directory', 'numa', 'ksm-files']));
    expect(cli.find((f) => f.check === 'numa')).toMatchObject({ status: 'fail', detail: expect.stringMatching(/fix: /) });
  });
});
