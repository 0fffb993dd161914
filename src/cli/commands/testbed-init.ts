/**
 * `nuksm testbed init --out FILE [--guest-image-dir DIR] [--ssh-host 127.0.0.1] [--name NAME] [--force]`:
 * writes a testbed file for "libvirt TCG guests on this machine" from what it reads here — NUMA
 * nodes, their CPUs and memory (sysfs), the running kernel (`uname -r`), the guest image files
 * (`disk.qcow2`, `id_ed25519`, `known_hosts` in the guest image directory, default
 * `<repo>/.cache/guest/current`) — with QEMU user networking on a loopback address. The file is
 * validated with the loader before it replaces anything (a missing image file is refused, exit 2).
 *
 * Also `testbedCommand(build)`: the `nuksm testbed <build|init>` parent command (yargs cannot
 * register two commands both named `testbed`).
 */
import { existsSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import type { Argv, CommandModule } from 'yargs';
import { stringify } from 'yaml';
import { loadTestbedFile } from '../../campaign/testbed-file.ts';
import { ConfigError } from '../../core/errors.ts';
import { LocalExecutor } from '../../host/exec/index.ts';
import { formatCpuList } from '../../host/libvirt/domain-xml.ts';
import { readHostNodes } from '../../testbeds/physical/topology.ts';

export const DEFAULT_GUEST_IMAGE_DIR = join(import.meta.dirname, '..', '..', '..', '.cache', 'guest', 'current');

export interface TestbedInitArgs {
  out: string;
  guestImageDir: string;
  sshHost: string;
  name: string;
  force: boolean;
}

/** The testbed file's text for this machine (absolute paths; the caller validates it). */
export async function thisHostVmsTestbed(opts: { guestImageDir: string; sshHost: string; name: string }): Promise<string> {
  const exec = new LocalExecutor();
  const nodes = await readHostNodes(exec);
  if (nodes.length === 0) throw new ConfigError('/sys/devices/system/node', 'nodes', 'no NUMA node found in sysfs (kernel without CONFIG_NUMA?)');
  const release = (await exec.run(['uname', '-r'], { timeoutMs: 10_000 })).stdout.trim();
  const img = resolve(opts.guestImageDir);
  const data = {
    name: opts.name,
    kind: 'physical',
    host: { kind: 'local' },
    nodes: nodes.map((n) => ({ id: n.id, cpus: n.cpus, memoryGiB: n.memoryGiB })),
    kernels: { running: { bootEntry: 'current', release } },
    modes: { 'ksm-off': { kernel: 'running' }, ksm: { kernel: 'running' } },
    perfEventSet: 'none',
    guests: {
      user: 'root',
      identityFile: join(img, 'id_ed25519'),
      knownHostsFile: join(img, 'known_hosts'),
      network: { user: { sshHost: opts.sshHost } },
      baseImage: join(img, 'disk.qcow2'),
      overlayDir: '/var/lib/nuksm/overlays',
    },
    libvirtUri: 'qemu:///system',
    timeouts: { bootS: 300, sshConnectS: 60, commandS: 900, vmStartS: 180, vmShutdownS: 120 },
    resume: 'none',
  };
  const header = [
    `# Written by \`nuksm testbed init\` on ${new Date().toISOString()}: libvirt TCG guests on this machine.`,
    `# Read here: ${nodes.map((n) => `node ${n.id} (CPUs ${formatCpuList(n.cpus)}, ${n.memoryGiB} GiB)`).join(', ')}; kernel ${release} (uname -r).`,
    '# The kernel entry is the running one: ensureKernel verifies it and never reboots. Guests use QEMU user',
    `# networking: each VM's sshd is forwarded to its own port on ${opts.sshHost} (loopback only, no bridge).`,
    '# perfEventSet none: `nuksm doctor --testbed FILE` suggests a set when the CPU has a PMU.',
    '',
  ].join('\n');
  return header + stringify(data, { flowCollectionPadding: false });
}

export const testbedInitCommand: CommandModule<object, TestbedInitArgs> = {
  command: 'init',
  describe: 'Write a testbed file for libvirt TCG guests on this machine (nodes, kernel, guest image, loopback user networking)',
  builder: (y: Argv<object>) =>
    y
      .option('out', { type: 'string', demandOption: true, describe: 'testbed file to write' })
      .option('guest-image-dir', { type: 'string', default: DEFAULT_GUEST_IMAGE_DIR, describe: 'directory with the guest image: disk.qcow2, id_ed25519, known_hosts (nuksm testbed build guest)' })
      .option('ssh-host', { type: 'string', default: '127.0.0.1', describe: "loopback address the guests' SSH forwards listen on (127.0.0.0/8 or ::1)" })
      .option('name', { type: 'string', default: 'this-host-vms', describe: 'testbed name' })
      .option('force', { type: 'boolean', default: false, describe: 'overwrite an existing file' }) as unknown as Argv<TestbedInitArgs>,
  handler: async (args) => {
    const out = resolve(args.out);
    if (existsSync(out) && !args.force) throw new ConfigError('command line', '--out', `${out} exists; pass --force to overwrite it`);
    if (!existsSync(dirname(out))) throw new ConfigError('command line', '--out', `directory ${dirname(out)} does not exist`);
    const text = await thisHostVmsTestbed({ guestImageDir: args.guestImageDir, sshHost: args.sshHost, name: args.name });
    // Validated under a temporary name next to the target, so a rejected file replaces nothing.
    const tmp = `${out}.tmp-${process.pid}`;
    writeFileSync(tmp, text);
    try {
      loadTestbedFile(tmp);
    } catch (err) {
      rmSync(tmp, { force: true });
      if (err instanceof ConfigError) {
        const why = String(err.details.why ?? err.message);
        throw new ConfigError(out, err.keyPath, `${why} — nothing written; build the guest image (nuksm testbed build guest) or pass --guest-image-dir`);
      }
      throw err;
    }
    renameSync(tmp, out);
    process.stdout.write(`${out}: ${text.split('\n')[1]!.replace(/^# Read here: /, '')}\n`);
  },
};

/** `nuksm testbed build …` and `nuksm testbed init …` under one `testbed` command. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export function testbedCommand(build: CommandModule<object, any>): CommandModule<object, object> {
  const sub = { ...build, command: String(build.command).replace(/^testbed\s+/, '') };
  return {
    command: 'testbed',
    describe: 'Testbed images and files: build (disk images), init (a testbed file for this machine)',
    builder: (y: Argv<object>) => y.command(sub).command(testbedInitCommand).demandCommand(1, 'give a testbed subcommand: build or init'),
    handler: () => {},
  };
}
