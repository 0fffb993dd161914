/**
 * Fleet files (experiments/fleets/*.yaml): the machines a sharded campaign runs on, one testbed
 * file per machine, the kernel each one is booted into now, and its Slurm node name. Validated at
 * plan time against the campaign's testbed file: a shard routed to a machine runs that machine's
 * testbed file, so its kernels and modes must be the ones the plan was made with.
 */
import { dirname, isAbsolute, resolve } from 'node:path';
import { z } from 'zod';
import { ConfigError } from '../core/errors.ts';
import type { TestbedFile } from '../core/testbed-file.ts';
import { parseWith, readYaml } from './config-error.ts';
import { loadTestbedFile } from './testbed-file.ts';

/** Slurm node names and features: letters, digits, _ . - (what sbatch --nodelist/--constraint take unquoted). */
const SLURM_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

const machineSchema = z
  .object({
    name: z.string().regex(SLURM_NAME, 'letters, digits and _ . - (a machine name is also its default Slurm node name)'),
    /** Testbed file of this machine (relative to the fleet file). */
    testbed: z.string().min(1),
    /** The `kernels` key of the testbed file the machine is booted into now (null: unknown, the first boot is counted). */
    running: z.string().min(1).nullable().default(null),
    slurmNode: z.string().regex(SLURM_NAME, 'a Slurm node name: letters, digits and _ . -').optional(),
  })
  .strict();

const fleetSchema = z
  .object({
    kind: z.literal('fleet'),
    name: z.string().min(1),
    machines: z.array(machineSchema).min(1),
  })
  .strict();

export interface FleetMachine {
  name: string;
  testbedFile: string;
  testbed: TestbedFile;
  running: string | null;
  slurmNode: string;
}

export interface Fleet {
  file: string;
  name: string;
  machines: FleetMachine[];
}

/** The Slurm node feature that says "booted into this kernel" (docs/slurm.md). */
export function kernelFeature(kernel: string): string {
  return `nuksm-kernel-${kernel.replace(/[^A-Za-z0-9_.-]/g, '_')}`;
}

/** What a step of the plan depends on in a testbed file: its kind, kernels (release) and which kernels each mode runs on. */
function kernelView(tb: TestbedFile): string {
  const kernels = Object.fromEntries(Object.entries(tb.kernels).map(([k, v]) => [k, v.release]).sort());
  const modes = Object.fromEntries(Object.entries(tb.modes).map(([m, v]) => [m, v?.kernels ?? []]).sort());
  return JSON.stringify({ kind: tb.kind, kernels, modes });
}

export function loadFleet(file: string, planned: TestbedFile): Fleet {
  const raw = parseWith(file, fleetSchema, readYaml(file));
  const names = new Set<string>();
  const nodes = new Set<string>();
  const machines = raw.machines.map((m, i): FleetMachine => {
    if (names.has(m.name)) throw new ConfigError(file, `machines[${i}].name`, `machine '${m.name}' is listed twice`);
    names.add(m.name);
    const slurmNode = m.slurmNode ?? m.name;
    if (nodes.has(slurmNode)) throw new ConfigError(file, `machines[${i}].slurmNode`, `Slurm node '${slurmNode}' is given to two machines`);
    nodes.add(slurmNode);
    const testbedFile = isAbsolute(m.testbed) ? m.testbed : resolve(dirname(file), m.testbed);
    let testbed: TestbedFile;
    try {
      testbed = loadTestbedFile(testbedFile);
    } catch (err) {
      if (err instanceof ConfigError) throw new ConfigError(file, `machines[${i}].testbed`, `${err.message}`);
      throw err;
    }
    if (kernelView(testbed) !== kernelView(planned)) {
      throw new ConfigError(file, `machines[${i}].testbed`, `${testbedFile} has other kernels or modes than the campaign's testbed file ${planned.file} (kind, kernel releases and each mode's kernels must be the same: the plan's steps name those kernels)`);
    }
    if (m.running !== null && !(m.running in testbed.kernels)) {
      throw new ConfigError(file, `machines[${i}].running`, `'${m.running}' is not a kernel of ${testbedFile} (kernels: ${Object.keys(testbed.kernels).join(', ')})`);
    }
    return { name: m.name, testbedFile, testbed, running: m.running, slurmNode };
  });
  return { file, name: raw.name, machines };
}
