/**
 * `nuksm doctor --testbed <file>`: generic checks (the file validates, the driver loads, the
 * results directory is writable), then the testbed's own checks: for a physical testbed the
 * driver's deep checks (NUMA layout, KSM files, GRUB entries, libvirt, guest keys, perf events);
 * for an emulated one what building and running the machine needs (root, QEMU, debootstrap, gcc,
 * the image cache, a free SSH port).
 */
import { accessSync, constants, mkdirSync } from 'node:fs';
import type { Argv, CommandModule } from 'yargs';
import { loadTestbedFile, resultsRoot } from '../../campaign/campaign.ts';
import type { TestbedFile } from '../../core/testbed-file.ts';
import { loadTestbedDriver } from '../../testbeds/index.ts';
import { EXIT } from '../exit-codes.ts';
import { textTable } from '../format.ts';
import { withJson, withResultsDir } from '../options.ts';

export interface DoctorArgs {
  testbed: string;
  resultsDir?: string;
  json: boolean;
}

export interface Finding {
  check: string;
  status: 'ok' | 'warn' | 'fail';
  detail: string;
}

export async function genericChecks(tb: TestbedFile, resultsDir: string): Promise<Finding[]> {
  const out: Finding[] = [{ check: 'testbed file', status: 'ok', detail: `${tb.file}: ${tb.kind}, ${tb.nodes.length} node(s), modes ${Object.keys(tb.modes).join(', ') || 'none'}` }];
  try {
    const driver = await loadTestbedDriver(tb.kind, tb.file);
    out.push({ check: 'testbed driver', status: 'ok', detail: `${driver.path} loads` });
  } catch (err) {
    out.push({ check: 'testbed driver', status: 'fail', detail: (err as Error).message });
  }
  try {
    mkdirSync(resultsDir, { recursive: true });
    accessSync(resultsDir, constants.W_OK);
    out.push({ check: 'results directory', status: 'ok', detail: `${resultsDir} is writable` });
  } catch (err) {
    out.push({ check: 'results directory', status: 'fail', detail: `${resultsDir}: ${(err as Error).message}` });
  }
  if (tb.kind === 'physical') {
    const { doctorChecks } = await import('../../testbeds/physical/doctor.ts');
    for (const f of await doctorChecks(tb)) out.push({ check: f.check, status: f.status, detail: f.fix ? `${f.message} — fix: ${f.fix}` : f.message });
  } else if (tb.kind === 'emulated') {
    const { emulatedDoctorChecks } = await import('../../testbeds/emulated/doctor.ts');
    for (const f of await emulatedDoctorChecks(tb)) out.push({ check: f.check, status: f.status, detail: f.fix ? `${f.message} — fix: ${f.fix}` : f.message });
  }
  return out;
}

export const doctorCommand: CommandModule<object, DoctorArgs> = {
  command: 'doctor',
  describe: 'Check a testbed file and what the harness needs on this machine',
  builder: (y: Argv<object>) =>
    withJson(withResultsDir(y)).option('testbed', { type: 'string', demandOption: true, describe: 'testbed file to check' }) as unknown as Argv<DoctorArgs>,
  handler: async (args) => {
    const tb = loadTestbedFile(args.testbed);
    const findings = await genericChecks(tb, resultsRoot(args.resultsDir));
    process.stdout.write(args.json ? `${JSON.stringify(findings, null, 2)}\n` : textTable(['check', 'status', 'detail'], findings.map((f) => [f.check, f.status, f.detail])));
    if (findings.some((f) => f.status === 'fail')) process.exitCode = EXIT.doctorFailed;
  },
};
