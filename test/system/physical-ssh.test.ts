/**
 * The physical driver with its host reached over SSH (a real OpenSSH sshd on loopback, host key
 * checked): the same bare-metal MySQL step as physical.test.ts, so every host command, file read
 * and detached timed phase goes through SshExecutor. The KSM page walk is left out to keep it short
 * (physical.test.ts covers it locally).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeWith } from '../support/components.ts';
import { thisHostTestbedFile } from '../support/this-host.ts';
import type { Sample } from '../../src/core/sample.ts';
import type { Scenario } from '../../src/core/scenario.ts';
import { LocalExecutor } from '../../src/host/exec/index.ts';
import { KsmControl } from '../../src/host/ksm/index.ts';
import { createPhysicalTestbed } from '../../src/testbeds/physical/index.ts';
import type { Testbed } from '../../src/testbeds/types.ts';
import { TestSshd, freePort } from '../host/sshd-harness.ts';

describeWith(['sshd', 'root', 'ksm', 'mariadb', 'sysbench', 'numactl'], 'physical testbed over SSH', () => {
  let sshd: TestSshd;
  let work = '';
  let testbed: Testbed;
  const samples: Sample[] = [];
  const ksm = new KsmControl(new LocalExecutor());
  let knobsBefore: Record<string, string> = {};

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'nuksm-physical-ssh-'));
    sshd = new TestSshd(await freePort());
    await sshd.start();
    const knownHosts = join(work, 'known_hosts');
    writeFileSync(knownHosts, `${sshd.knownHostsLine()}\n`);
    const file = await thisHostTestbedFile({
      file: 'physical-ssh.test.yaml',
      name: 'loopback',
      host: { kind: 'ssh', host: '127.0.0.1', port: sshd.port, user: sshd.user, identityFile: sshd.clientKeyPath, knownHostsFile: knownHosts, pinHostKeyOnFirstUse: false },
    });
    testbed = await createPhysicalTestbed(file, { hostWorkRoot: join(work, 'hostwork'), hostInstallRoot: join(work, 'install'), defaultVariant: 'small' });
    knobsBefore = await ksm.readKnobs();
    const inst = (name: string, startAtS: number) => ({ name, kind: 'process' as const, node: 0, vcpus: 1, memoryMiB: 512, nice: 0, template: null, startAtS });
    const scenario: Scenario = {
      campaign: 'test',
      experiment: 'ssh',
      configId: 'mysql/ksm',
      kernelMode: 'ksm',
      iteration: 0,
      seed: 1,
      memoryHog: null,
      ksm: { run: true, pagesToScan: 1000, sleepMillisecs: 20, mergeAcrossNodes: true, maxPageSharing: 256, forestMibPerTree: null, extraKnobs: {} },
      instances: [inst('s0', 0), inst('s1', 1)],
      workloads: ['s0', 's1'].map((i) => ({ instance: i, workload: 'mysql', params: { tableSize: 10_000, timeS: 3, clients: 2, serverUser: 'root', port: 3417 } })),
      timeline: { staggerS: 1, staggerFrom: 'launch', ksmdStart: 'step', mergeWait: { kind: 'converged', maxS: 30, windowS: 4, epsilonPct: 5 }, timedPhases: 'sequential', samplePeriodS: 1, maxDurationS: 600 },
      monitors: ['ksm', 'meminfo', 'ksmd-cpu'],
    };
    await testbed.runScenario(scenario, { emit: (s) => samples.push(...s), log: pino({ level: 'warn' }), signal: new AbortController().signal, rawDir: join(work, 'raw') });
  }, 600_000);

  afterAll(async () => {
    await testbed?.close();
    await sshd?.stop();
    sshd?.cleanup();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('describes the host through SSH', async () => {
    const env = await testbed.describe();
    expect(env.details.target).toBe(`${sshd.user}@127.0.0.1:${sshd.port}`);
    expect(env.kernelRelease).toBe(execFileSync('uname', ['-r'], { encoding: 'utf8' }).trim());
  });

  it('runs both instances one after the other and merges their tables', () => {
    const runtime = (i: string) => samples.find((s) => s.metric === 'runtime_s' && s.instance === i && s.t === null)!;
    for (const i of ['s0', 's1']) expect(runtime(i).value).toBeGreaterThan(2.5);
    // Sequential timed phases: the second instance's throughput series starts after the first's ends.
    const series = (i: string) => samples.filter((s) => s.metric === 'throughput_ops' && s.instance === i && s.t !== null).map((s) => s.t!);
    expect(Math.min(...series('s1'))).toBeGreaterThan(Math.max(...series('s0')));
    const sharing = samples.find((s) => s.metric === 'ksm_pages_sharing' && s.t === null)!;
    expect(sharing.value).toBeGreaterThan(1000);
    expect(samples.find((s) => s.metric === 'oom')!.value).toBe(0);
  });

  it('restores KSM and leaves no process behind', async () => {
    expect(await ksm.readKnobs()).toEqual(knobsBefore);
    let left = '';
    try {
      left = execFileSync('pgrep', ['-f', join(work, 'hostwork')], { encoding: 'utf8' }).trim();
    } catch {
      left = '';
    }
    expect(left).toBe('');
  });
});
