/**
 * Bad spec and testbed files are rejected before anything runs, with a ConfigError naming the
 * file and the key path. Each case mutates a valid spec or testbed file in one way.
 */
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { loadTestbedFile, planCampaign } from '../../src/campaign/campaign.ts';
import { ConfigError } from '../../src/core/errors.ts';
import { main } from '../../src/cli/main.ts';
import { EXIT } from '../../src/cli/exit-codes.ts';

const tmp = mkdtempSync(join(tmpdir(), 'nuksm-bad-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const validSpec = (): Obj => ({
  kind: 'experiment',
  name: 'ok',
  figures: ['3a'],
  kernelModes: ['ksm-off', 'ksm'],
  iterations: 1,
  instances: [
    { name: 'vm0', kind: 'vm', node: 0, vcpus: 2, memoryGiB: 4, template: 'guest-kvm' },
    { name: 'vm1', kind: 'vm', node: 1, vcpus: 2, memoryGiB: 4, template: 'guest-kvm' },
  ],
  configurations: [{ id: 'xsbench', workload: 'xsbench', params: { footprintGiB: 1 }, estimatedTimedS: 60 }],
});

const validTestbed = (): Obj => ({
  name: 'tb',
  kind: 'model',
  nodes: [
    { id: 0, cpus: [0, 1, 2, 3], memoryGiB: 16 },
    { id: 1, cpus: [4, 5, 6, 7], memoryGiB: 16 },
  ],
  kernels: { v54: { bootEntry: 'Linux 5.4', release: '5.4.0' } },
  modes: { 'ksm-off': { kernel: 'v54' }, ksm: { kernel: 'v54' } },
});

let n = 0;
function write(data: unknown, raw?: string): string {
  const file = join(tmp, `f${n++}.yaml`);
  writeFileSync(file, raw ?? stringify(data));
  return file;
}

function rejection(spec: Obj | string, testbed: Obj | string = validTestbed()): ConfigError {
  const specFile = typeof spec === 'string' ? write(null, spec) : write(spec);
  const tbFile = typeof testbed === 'string' ? write(null, testbed) : write(testbed);
  try {
    planCampaign({ spec: specFile, testbedFile: tbFile });
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    const e = err as ConfigError;
    e.details.specFile = specFile;
    e.details.testbedFile = tbFile;
    return e;
  }
  throw new Error('accepted a bad file');
}

// A physical testbed on this machine with guests (key files that exist, so each case below fails on one key only).
const guestKey = join(tmp, 'guest_key');
const guestKnownHosts = join(tmp, 'guest_known_hosts');
writeFileSync(guestKey, 'stand-in key\n');
writeFileSync(guestKnownHosts, '[127.0.0.1]:* ssh-ed25519 AAAA\n');
function physicalWithGuests(t: Obj, guests: Obj = {}): void {
  t.kind = 'physical';
  t.guests = { user: 'root', identityFile: guestKey, knownHostsFile: guestKnownHosts, network: { user: { sshHost: '127.0.0.1' } }, baseImage: '/var/lib/nuksm/base.qcow2', overlayDir: '/var/lib/nuksm/overlays', ...guests };
}

interface Case {
  kind: string;
  mutate: { spec?: (s: Obj) => void; testbed?: (t: Obj) => void };
  file: 'spec' | 'testbed';
  key: string;
  why: RegExp;
}

const CASES: Case[] = [
  { kind: 'unknown top-level key', mutate: { spec: (s) => (s.colour = 'blue') }, file: 'spec', key: 'colour', why: /unknown key/ },
  { kind: 'unknown nested key', mutate: { spec: (s) => (s.instances[0].ram = 4) }, file: 'spec', key: 'instances[0].ram', why: /unknown key/ },
  { kind: 'wrong type', mutate: { spec: (s) => (s.iterations = 'three') }, file: 'spec', key: 'iterations', why: /number/ },
  { kind: 'negative iterations', mutate: { spec: (s) => (s.iterations = -1) }, file: 'spec', key: 'iterations', why: /at least 1/ },
  { kind: 'unknown workload', mutate: { spec: (s) => (s.configurations[0].workload = 'spec2006') }, file: 'spec', key: 'configurations[0].workload', why: /xsbench/ },
  { kind: 'duplicate VM names', mutate: { spec: (s) => (s.instances[1].name = 'vm0') }, file: 'spec', key: 'instances[1].name', why: /duplicate/ },
  { kind: 'unknown kernel mode', mutate: { spec: (s) => s.kernelModes.push('nuksm-turbo') }, file: 'spec', key: 'kernelModes[2]', why: /ksm-off/ },
  { kind: 'nice out of range', mutate: { spec: (s) => (s.instances[0].nice = 25) }, file: 'spec', key: 'instances[0].nice', why: /19/ },
  { kind: 'a node that does not exist', mutate: { spec: (s) => (s.instances[1].node = 5) }, file: 'spec', key: 'instances[1].node', why: /node 5 does not exist/ },
  { kind: 'VM memory larger than its node', mutate: { spec: (s) => (s.instances[0].memoryGiB = 64) }, file: 'spec', key: 'instances[0].memoryGiB', why: /more than node 0 has/ },
  { kind: 'more vCPUs than the node has', mutate: { spec: (s) => (s.instances[0].vcpus = 8) }, file: 'spec', key: 'instances[0].vcpus', why: /4 CPUs/ },
  { kind: 'override of an unknown instance', mutate: { spec: (s) => (s.configurations[0].instances = { vm9: { nice: -3 } }) }, file: 'spec', key: 'configurations[0].instances.vm9', why: /no instance/ },
  { kind: 'duplicate configuration ids', mutate: { spec: (s) => s.configurations.push({ ...s.configurations[0] }) }, file: 'spec', key: 'configurations[1].id', why: /duplicate/ },
  { kind: 'merge window longer than the wait', mutate: { spec: (s) => (s.timeline = { mergeWait: { converged: { maxS: 30, windowS: 60 } } }) }, file: 'spec', key: 'timeline.mergeWait.converged.windowS', why: /windowS/ },
  { kind: 'VM without template', mutate: { spec: (s) => delete s.instances[0].template }, file: 'spec', key: 'instances[0].template', why: /template/ },
  { kind: 'unknown monitor', mutate: { spec: (s) => (s.monitors = ['ksm', 'vtune']) }, file: 'spec', key: 'monitors[1]', why: /perf-dram/ },
  { kind: 'memory hog on a missing node', mutate: { spec: (s) => (s.configurations[0].memoryHog = { node: 3, stepGiB: 1, everyS: 5, maxGiB: 4 }) }, file: 'spec', key: 'configurations[0].memoryHog.node', why: /node 3/ },
  { kind: 'unknown figure', mutate: { spec: (s) => (s.figures = ['5']) }, file: 'spec', key: 'figures[0]', why: /3a/ },
  // Linux's baselines (docs/baselines.md).
  { kind: 'ksm-node-local when every mode already runs with merge_across_nodes=0', mutate: { spec: (s) => ((s.kernelModes = ['ksm', 'ksm-node-local']), (s.ksm = { mergeAcrossNodes: false })) }, file: 'spec', key: 'kernelModes[1]', why: /already runs that way/ },
  { kind: 'ksm-node-local with extra knobs writing merge_across_nodes=1', mutate: { spec: (s) => ((s.kernelModes = ['ksm-node-local']), (s.ksm = { extraKnobs: { merge_across_nodes: 1 } })) }, file: 'spec', key: 'ksm.extraKnobs.merge_across_nodes', why: /would write 1 over it/ },
  { kind: 'a testbed mapping ksm-node-local with merge_across_nodes=1', mutate: { testbed: (t) => (t.modes['ksm-node-local'] = { kernel: 'v54', ksmKnobs: { merge_across_nodes: 1 } }) }, file: 'testbed', key: 'modes.ksm-node-local.ksmKnobs.merge_across_nodes', why: /runs with merge_across_nodes=0; this file sets 1/ },
  { kind: 'a kernel of ksm-node-local whose knobs set merge_across_nodes=1', mutate: { testbed: (t) => ((t.kernels.v54.ksmKnobs = { merge_across_nodes: 1 }), (t.modes['ksm-node-local'] = { kernel: 'v54' })) }, file: 'testbed', key: 'kernels.v54.ksmKnobs.merge_across_nodes', why: /kernel's knobs set 1/ },
  { kind: 'an unknown baseline name', mutate: { spec: (s) => s.kernelModes.push('ksm-numa') }, file: 'spec', key: 'kernelModes[2]', why: /ksm-numa-balancing/ },
  { kind: 'mode whose kernel has no boot entry', mutate: { testbed: (t) => (t.modes['nuksm-fair'] = { kernel: 'nuKSM' }) }, file: 'testbed', key: 'modes.nuksm-fair.kernel', why: /no entry under 'kernels'/ },
  { kind: 'a mode whose kernel list names a kernel without boot entry', mutate: { testbed: (t) => (t.modes.ksm = { kernel: ['v54', 'v61'] }) }, file: 'testbed', key: 'modes.ksm.kernel[1]', why: /'v61' has no entry under 'kernels'/ },
  { kind: 'a one-kernel list naming a missing kernel', mutate: { testbed: (t) => (t.modes.ksm = { kernel: ['v61'] }) }, file: 'testbed', key: 'modes.ksm.kernel[0]', why: /'v61' has no entry under 'kernels'/ },
  { kind: 'a kernel listed twice for one mode', mutate: { testbed: (t) => ((t.kernels.v61 = { bootEntry: 'Linux 6.1', release: '6.1.0' }), (t.modes.ksm = { kernel: ['v54', 'v61', 'v54'] })) }, file: 'testbed', key: 'modes.ksm.kernel[2]', why: /listed twice/ },
  { kind: 'an empty kernel list', mutate: { testbed: (t) => (t.modes.ksm = { kernel: [] }) }, file: 'testbed', key: 'modes.ksm.kernel', why: /at least one kernel/ },
  { kind: 'kernel with an empty boot entry', mutate: { testbed: (t) => (t.kernels.v54.bootEntry = '') }, file: 'testbed', key: 'kernels.v54.bootEntry', why: /boot entry/ },
  { kind: 'duplicate node ids', mutate: { testbed: (t) => (t.nodes[1].id = 0) }, file: 'testbed', key: 'nodes[1].id', why: /duplicate node/ },
  { kind: 'a CPU in two nodes', mutate: { testbed: (t) => (t.nodes[1].cpus[0] = 3) }, file: 'testbed', key: 'nodes[1].cpus[0]', why: /already listed in node 0/ },
  { kind: 'unknown testbed kind', mutate: { testbed: (t) => (t.kind = 'cloud') }, file: 'testbed', key: 'kind', why: /model/ },
  { kind: 'VMs on a physical testbed without guest access', mutate: { testbed: (t) => (t.kind = 'physical') }, file: 'spec', key: 'instances[0].kind', why: /a VM needs the testbed's 'guests'/ },
  { kind: 'user networking forwarded to a non-loopback address', mutate: { testbed: (t) => physicalWithGuests(t, { network: { user: { sshHost: '192.168.1.5' } } }) }, file: 'testbed', key: 'guests.network.user.sshHost', why: /'192\.168\.1\.5' is not a loopback address.*127\.0\.0\.0\/8 or ::1/ },
  { kind: 'user networking forwarded to a host name', mutate: { testbed: (t) => physicalWithGuests(t, { network: { user: { sshHost: 'localhost' } } }) }, file: 'testbed', key: 'guests.network.user.sshHost', why: /not a loopback address/ },
  { kind: 'user networking forwarded to the wildcard address', mutate: { testbed: (t) => physicalWithGuests(t, { network: { user: { sshHost: '0.0.0.0' } } }) }, file: 'testbed', key: 'guests.network.user.sshHost', why: /not a loopback address/ },
  { kind: 'an unknown key in user networking', mutate: { testbed: (t) => physicalWithGuests(t, { network: { user: { sshHost: '127.0.0.1', port: 2222 } } }) }, file: 'testbed', key: 'guests.network.user.port', why: /unknown key/ },
  { kind: 'a guest network of no known shape', mutate: { testbed: (t) => physicalWithGuests(t, { network: { bridge: 'br0' } }) }, file: 'testbed', key: 'guests.network', why: /libvirt network name.*user/ },
  { kind: 'an empty libvirt network name', mutate: { testbed: (t) => physicalWithGuests(t, { network: { libvirt: '' } }) }, file: 'testbed', key: 'guests.network.libvirt', why: /libvirt network/ },
  { kind: 'a missing guest key on a local host', mutate: { testbed: (t) => physicalWithGuests(t, { identityFile: join(tmp, 'no-such-key') }) }, file: 'testbed', key: 'guests.identityFile', why: /no-such-key does not exist/ },
  { kind: 'a missing guest known_hosts on a local host', mutate: { testbed: (t) => physicalWithGuests(t, { knownHostsFile: 'no-such-known-hosts' }) }, file: 'testbed', key: 'guests.knownHostsFile', why: /no-such-known-hosts does not exist.*relative to the testbed file's directory/ },
  { kind: 'user@host as the SSH host', mutate: { testbed: (t) => (t.host = { kind: 'ssh', host: 'root@server', user: 'root', identityFile: 'k', knownHostsFile: 'kh' }) }, file: 'testbed', key: 'host.host', why: /host\.user/ },
  { kind: 'a relative base image on a host reached over SSH', mutate: { testbed: (t) => (physicalWithGuests(t, { network: 'nuksm-net', baseImage: 'images/base.qcow2' }), (t.host = { kind: 'ssh', host: 'server', user: 'root', identityFile: 'k', knownHostsFile: 'kh' })) }, file: 'testbed', key: 'guests.baseImage', why: /absolute path/ },
  { kind: 'user networking on a host reached over SSH', mutate: { testbed: (t) => (physicalWithGuests(t), (t.host = { kind: 'ssh', host: 'server', user: 'root', identityFile: 'k', knownHostsFile: 'kh' })) }, file: 'testbed', key: 'guests.network.user', why: /cannot reach: run nuksm on that host/ },
  { kind: 'SSH host with a bad port', mutate: { testbed: (t) => (t.host = { kind: 'ssh', host: 'h', port: 70000, user: 'u', identityFile: 'k', knownHostsFile: 'kh' }) }, file: 'testbed', key: 'host.port', why: /65535/ },
  // Durations a Node timer cannot take (a longer setTimeout fires after 1 ms).
  { kind: 'maxDurationS beyond the longest Node timer', mutate: { spec: (s) => (s.timeline = { maxDurationS: 3_000_000 }) }, file: 'spec', key: 'timeline.maxDurationS', why: /at most 2147483 s/ },
  { kind: 'an infinite maxDurationS (.inf)', mutate: { spec: (s) => (s.timeline = { maxDurationS: Infinity }) }, file: 'spec', key: 'timeline.maxDurationS', why: /finite/ },
  { kind: 'an unknown staggerFrom', mutate: { spec: (s) => (s.timeline = { staggerFrom: 'boot' }) }, file: 'spec', key: 'timeline.staggerFrom', why: /launch.*workload|workload.*launch/ },
  { kind: 'an unknown ksmdStart', mutate: { spec: (s) => (s.timeline = { ksmdStart: 'later' }) }, file: 'spec', key: 'timeline.ksmdStart', why: /step.*all-registered|all-registered.*step/ },
  { kind: 'a NaN merge wait (.nan)', mutate: { spec: (s) => (s.timeline = { mergeWait: { fixedS: NaN } }) }, file: 'spec', key: 'timeline.mergeWait.fixedS', why: /finite|number/ },
  { kind: 'an enormous converged merge wait', mutate: { spec: (s) => (s.timeline = { mergeWait: { converged: { maxS: 1e12 } } }) }, file: 'spec', key: 'timeline.mergeWait.converged.maxS', why: /at most/ },
  { kind: 'an enormous stagger', mutate: { spec: (s) => (s.timeline = { staggerS: 1e10 }) }, file: 'spec', key: 'timeline.staggerS', why: /at most/ },
  { kind: 'an infinite memory-hog period', mutate: { spec: (s) => (s.configurations[0].memoryHog = { node: 0, stepGiB: 1, everyS: Infinity, maxGiB: 4 }) }, file: 'spec', key: 'configurations[0].memoryHog.everyS', why: /finite/ },
  { kind: 'a boot timeout beyond the longest Node timer', mutate: { testbed: (t) => (t.timeouts = { bootS: 1e9 }) }, file: 'testbed', key: 'timeouts.bootS', why: /at most/ },
  { kind: 'an infinite command timeout', mutate: { testbed: (t) => (t.timeouts = { commandS: Infinity }) }, file: 'testbed', key: 'timeouts.commandS', why: /finite/ },
  // Numbers the kernel or memory cannot take.
  { kind: 'a huge iteration count', mutate: { spec: (s) => (s.iterations = 1e9) }, file: 'spec', key: 'iterations', why: /at most 1000/ },
  { kind: 'pagesToScan beyond the knob\'s unsigned int', mutate: { spec: (s) => (s.ksm = { pagesToScan: 2 ** 32 }) }, file: 'spec', key: 'ksm.pagesToScan', why: /unsigned int.*4294967295/ },
  { kind: 'sleepMillisecs beyond the knob\'s unsigned int', mutate: { spec: (s) => (s.ksm = { sleepMillisecs: 1e12 }) }, file: 'spec', key: 'ksm.sleepMillisecs', why: /unsigned int/ },
  { kind: 'maxPageSharing beyond the knob\'s int', mutate: { spec: (s) => (s.ksm = { maxPageSharing: 2 ** 31 }) }, file: 'spec', key: 'ksm.maxPageSharing', why: /int in the kernel/ },
  { kind: 'memory that rounds to 0 MiB', mutate: { spec: (s) => (s.instances[0].memoryGiB = 0.0001) }, file: 'spec', key: 'instances[0].memoryGiB', why: /rounds to 0 MiB/ },
  // Timeline contradictions.
  { kind: 'a stagger past the step\'s limit', mutate: { spec: (s) => (s.timeline = { staggerS: 600, maxDurationS: 600 }) }, file: 'spec', key: 'timeline.staggerS', why: /start at 600 s.*maxDurationS 600 s/ },
  { kind: 'the default stagger past a short limit', mutate: { spec: (s) => (s.timeline = { maxDurationS: 30 }) }, file: 'spec', key: 'follows', why: /start at 60 s \(60 s apart\)/ },
  { kind: 'a memory hog starting after the step\'s limit', mutate: { spec: (s) => ((s.timeline = { maxDurationS: 600 }), (s.configurations[0].memoryHog = { node: 0, stepGiB: 1, everyS: 5, maxGiB: 4, startAtS: 900 })) }, file: 'spec', key: 'configurations[0].memoryHog.startAtS', why: /at or after the step's limit/ },
  // vCPU overcommit of a node.
  { kind: 'VMs with more vCPUs than their node has CPUs', mutate: { spec: (s) => ((s.instances[0].vcpus = 3), (s.instances[1] = { ...s.instances[1], node: 0 })) }, file: 'spec', key: 'instances[1].vcpus', why: /node 0 would run 5 vCPUs on its 4 CPUs.*allowVcpuOvercommit/ },
  { kind: 'a node override that overcommits a node', mutate: { spec: (s) => ((s.instances[0].vcpus = 3), (s.instances[1].vcpus = 3), (s.configurations[0].instances = { vm1: { node: 0 } })) }, file: 'spec', key: 'configurations[0].instances.vm1.node', why: /configuration 'xsbench': node 0 would run 6 vCPUs/ },
  // Workload parameters against the workload's schema, at plan time.
  { kind: 'an unknown workload parameter', mutate: { spec: (s) => (s.configurations[0].params = { footprintGiB: 1, treads: 4 }) }, file: 'spec', key: 'configurations[0].params.treads', why: /treads|unrecognized|unknown/i },
  { kind: 'a workload parameter with a unit', mutate: { spec: (s) => (s.configurations[0].params = { footprintGiB: '4GiB' }) }, file: 'spec', key: 'configurations[0].params.footprintGiB', why: /number/ },
  { kind: 'a footprint larger than its instance', mutate: { spec: (s) => (s.configurations[0].params = { footprintGiB: 8 }) }, file: 'spec', key: 'configurations[0].params.footprintGiB', why: /8 GiB does not fit instance 'vm0' \(memoryGiB 4\)/ },
  { kind: 'an unknown parameter variant', mutate: { spec: (s) => (s.configurations[0].params = { variant: 'huge' }) }, file: 'spec', key: 'configurations[0].params.variant', why: /small \| paper/ },
  // KSM knob names that are not plain sysfs file names.
  { kind: 'a KSM knob name that is a path', mutate: { spec: (s) => (s.ksm = { extraKnobs: { '../../../proc/sys/kernel/x': 1 } }) }, file: 'spec', key: 'ksm.extraKnobs.../../../proc/sys/kernel/x', why: /plain file name/ },
  { kind: 'a kernel KSM knob name with a space', mutate: { testbed: (t) => (t.kernels.v54.ksmKnobs = { 'smart ksm': 1 }) }, file: 'testbed', key: 'kernels.v54.ksmKnobs.smart ksm', why: /plain file name/ },
  { kind: 'a mode KSM knob value with a newline', mutate: { testbed: (t) => (t.modes.ksm.ksmKnobs = { run: '1\n2' }) }, file: 'testbed', key: 'modes.ksm.ksmKnobs.run', why: /one word/ },
  // Kernel releases no `uname -r` prints.
  { kind: 'a kernel release with a space', mutate: { testbed: (t) => (t.kernels.v54.release = '5.4.0 nuKSM') }, file: 'testbed', key: 'kernels.v54.release', why: /uname -r/ },
  { kind: 'a kernel release longer than utsname holds', mutate: { testbed: (t) => (t.kernels.v54.release = `5.4.0-${'x'.repeat(70)}`) }, file: 'testbed', key: 'kernels.v54.release', why: /1–64/ },
  { kind: 'a kernel release that is not a version on a booting testbed', mutate: { testbed: (t) => (physicalWithGuests(t), (t.kernels.v54.release = 'linux-5.4')) }, file: 'testbed', key: 'kernels.v54.release', why: /starts with the version number/ },
];

describe('bad spec and testbed files are rejected before anything runs', () => {
  it('covers at least 15 kinds of bad file', () => {
    expect(new Set(CASES.map((c) => c.kind)).size).toBeGreaterThanOrEqual(15);
  });

  for (const c of CASES) {
    it(`${c.kind}: names the file and ${c.key}`, () => {
      const spec = validSpec();
      const testbed = validTestbed();
      c.mutate.spec?.(spec);
      c.mutate.testbed?.(testbed);
      const err = rejection(spec, testbed);
      expect(err.file).toBe(c.file === 'spec' ? err.details.specFile : err.details.testbedFile);
      expect(err.keyPath).toBe(c.key);
      expect(err.message).toContain(err.file);
      expect(err.message).toMatch(c.why);
    });
  }

  it('a YAML syntax error names the file', () => {
    const err = rejection('kind: experiment\nname: [unclosed\n');
    expect(err.message).toMatch(/YAML syntax error/);
    expect(err.file).toBe(err.details.specFile);
  });

  it('a duplicate YAML key names the file', () => {
    const err = rejection('kind: experiment\nname: a\nname: b\n');
    expect(err.message).toMatch(/YAML/);
  });

  it('a campaign naming a missing experiment names the campaign key', () => {
    const campaign = write({ kind: 'campaign', name: 'c', experiments: ['does-not-exist'] });
    const tb = write(validTestbed());
    expect(() => planCampaign({ spec: campaign, testbedFile: tb })).toThrowError(ConfigError);
    try {
      planCampaign({ spec: campaign, testbedFile: tb });
    } catch (err) {
      expect((err as ConfigError).keyPath).toBe('experiments[0]');
      expect((err as ConfigError).file).toBe(campaign);
    }
  });

  it('overcommitting a node is accepted when the spec allows it explicitly', () => {
    const spec = validSpec();
    spec.instances[0].vcpus = 3;
    spec.instances[1] = { ...spec.instances[1], node: 0 };
    spec.allowVcpuOvercommit = true;
    expect(planCampaign({ spec: write(spec), testbedFile: write(validTestbed()) }).plan.steps).toHaveLength(2);
  });

  it('command-line values that are not numbers, and a --results-dir that is a file, are exit 2 naming the flag; nothing is written', async () => {
    const spec = write(validSpec());
    const tb = write(validTestbed());
    const results = join(tmp, 'cli-results');
    const aFile = join(tmp, 'not-a-dir');
    writeFileSync(aFile, 'x');
    const cases: [string[], RegExp][] = [
      [['plan', spec, '--testbed', tb, '--iterations', 'three'], /--iterations: must be an integer from 1 to 1000, got NaN/],
      [['run', spec, '--testbed', tb, '--results-dir', results, '--iterations', 'abc'], /--iterations: must be an integer/],
      [['run', spec, '--testbed', tb, '--results-dir', results, '--iterations', '1e9'], /--iterations: must be an integer from 1 to 1000/],
      [['run', spec, '--testbed', tb, '--results-dir', results, '--max-steps', 'abc'], /--max-steps: must be a whole number ≥ 0, got NaN/],
      [['run', spec, '--testbed', tb, '--results-dir', results, '--max-steps', '1.5'], /--max-steps: must be a whole number/],
      [['run', spec, '--testbed', tb, '--results-dir', aFile], /--results-dir: .*not-a-dir exists and is not a directory/],
      [['resume', 'c1', '--results-dir', aFile], /--results-dir: .*not a directory/],
      [['status', '--results-dir', aFile], /--results-dir: .*not a directory/],
    ];
    for (const [argv, why] of cases) {
      const errs: string[] = [];
      const spy = vi.spyOn(process.stderr, 'write').mockImplementation((c: string | Uint8Array) => (errs.push(String(c)), true));
      try {
        expect(await main(argv), argv.join(' ')).toBe(EXIT.config);
      } finally {
        spy.mockRestore();
      }
      expect(errs.join(''), argv.join(' ')).toMatch(why);
      expect(existsSync(results), argv.join(' ')).toBe(false);
    }
    expect(readFileSync(aFile, 'utf8')).toBe('x');
  });

  it('the CLI exits 2 and creates no campaign directory', async () => {
    const spec = validSpec();
    spec.instances[0].memoryGiB = 64;
    const resultsDir = join(tmp, 'results');
    const code = await main(['run', write(spec), '--testbed', write(validTestbed()), '--results-dir', resultsDir, '--campaign-id', 'never']);
    expect(code).toBe(EXIT.config);
    expect(existsSync(join(resultsDir, 'never'))).toBe(false);
  });

  it('the shipped specs plan on the model and physical testbed files; the tiny emulated machine rejects the paper-sized VMs', () => {
    for (const tb of ['model', 'physical-skylake']) {
      const { plan } = planCampaign({ spec: 'paper', testbedFile: join('experiments', 'testbeds', `${tb}.yaml`), experimentsDir: 'experiments' });
      expect(plan.steps.length).toBeGreaterThan(30);
    }
    expect(() => planCampaign({ spec: 'paper', testbedFile: join('experiments', 'testbeds', 'emulated.yaml'), experimentsDir: 'experiments' })).toThrowError(
      /fig3\.yaml: instances\[0\]\.memoryGiB: 30 GiB is more than node 0 has \(2 GiB/,
    );
    // The emulated file runs stock KSM on both of its kernels: one more step.
    for (const [tb, steps] of [['model', 2], ['physical-skylake', 2], ['emulated', 3]] as const) {
      const { plan } = planCampaign({ spec: 'smoke', testbedFile: join('experiments', 'testbeds', `${tb}.yaml`), experimentsDir: 'experiments' });
      expect(plan.steps, tb).toHaveLength(steps);
    }
  });
});

describe('guest networking and guest paths in testbed files', () => {
  it('user networking, a plain libvirt name and { libvirt } load; relative guest paths resolve against the file', () => {
    const dir = join(tmp, 'tree', 'experiments', 'testbeds');
    mkdirSync(dir, { recursive: true });
    const user = validTestbed();
    physicalWithGuests(user, { identityFile: '../../keys/id', knownHostsFile: guestKnownHosts, baseImage: 'base.qcow2', overlayDir: '~/overlays', network: { user: null } });
    mkdirSync(join(tmp, 'tree', 'keys'), { recursive: true });
    writeFileSync(join(tmp, 'tree', 'keys', 'id'), 'k');
    writeFileSync(join(dir, 'user.yaml'), stringify(user));
    const tb = loadTestbedFile(join(dir, 'user.yaml'));
    expect(tb.guests).toMatchObject({
      identityFile: join(tmp, 'tree', 'keys', 'id'),
      knownHostsFile: guestKnownHosts,
      baseImage: join(dir, 'base.qcow2'),
      overlayDir: '~/overlays',
      networking: { kind: 'user', sshHost: '127.0.0.1' },
      network: '',
    });
    for (const network of ['nuksm-net', { libvirt: 'nuksm-net' }]) {
      const lv = validTestbed();
      physicalWithGuests(lv, { network });
      const g = loadTestbedFile(write(lv)).guests!;
      expect(g.networking).toEqual({ kind: 'libvirt', name: 'nuksm-net' });
      expect(g.network).toBe('nuksm-net');
    }
    const v6 = validTestbed();
    physicalWithGuests(v6, { network: { user: { sshHost: '::1' } } });
    expect(loadTestbedFile(write(v6)).guests!.networking).toEqual({ kind: 'user', sshHost: '::1' });
  });

  it('the CLI exits 2 on a non-loopback forward, naming the file and key', async () => {
    const tb = validTestbed();
    physicalWithGuests(tb, { network: { user: { sshHost: '10.0.0.1' } } });
    const file = write(tb);
    const errs: string[] = [];
    const spy = vi.spyOn(process.stderr, 'write').mockImplementation((c: string | Uint8Array) => (errs.push(String(c)), true));
    try {
      expect(await main(['plan', write(validSpec()), '--testbed', file])).toBe(EXIT.config);
    } finally {
      spy.mockRestore();
    }
    expect(errs.join('')).toContain(`${file}: guests.network.user.sshHost: '10.0.0.1' is not a loopback address`);
  });

  it('the shipped this-host-vms.yaml loads once the guest image files exist where it points', () => {
    const root = join(tmp, 'checkout');
    mkdirSync(join(root, 'experiments', 'testbeds'), { recursive: true });
    mkdirSync(join(root, '.cache', 'guest', 'current'), { recursive: true });
    const shipped = join(root, 'experiments', 'testbeds', 'this-host-vms.yaml');
    copyFileSync(join('experiments', 'testbeds', 'this-host-vms.yaml'), shipped);
    expect(() => loadTestbedFile(shipped)).toThrowError(/guests\.identityFile: .*id_ed25519 does not exist/);
    for (const f of ['id_ed25519', 'known_hosts', 'disk.qcow2']) writeFileSync(join(root, '.cache', 'guest', 'current', f), 'stand-in');
    const tb = loadTestbedFile(shipped);
    expect(tb.guests).toMatchObject({
      identityFile: join(root, '.cache', 'guest', 'current', 'id_ed25519'),
      knownHostsFile: join(root, '.cache', 'guest', 'current', 'known_hosts'),
      baseImage: join(root, '.cache', 'guest', 'current', 'disk.qcow2'),
      overlayDir: '/var/lib/nuksm/overlays',
      networking: { kind: 'user', sshHost: '127.0.0.1' },
    });
    expect(tb).toMatchObject({ kind: 'physical', host: { kind: 'local' }, perfEventSet: 'none', resume: 'none', timeouts: { bootS: 300, commandS: 900 } });
    expect(Object.keys(tb.modes).sort()).toEqual(['ksm', 'ksm-off']);
  });
});
