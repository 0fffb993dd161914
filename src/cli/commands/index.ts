/** Every `nuksm` command; commands written elsewhere (parse, testbed checks, builds) are registered here too. */
import type { CommandModule } from 'yargs';
import { bootResumeCommand } from './boot-resume.ts';
import { compareCommand } from './compare.ts';
import { doctorCommand } from './doctor.ts';
import { exportCommand } from './export.ts';
import { parseCommand } from './parse.ts';
import { mergeCommand } from './merge.ts';
import { placeCommand } from './place.ts';
import { predictCommand } from './predict.ts';
import { planCommand } from './plan.ts';
import { reportCommand } from './report.ts';
import { resumeCommand } from './resume.ts';
import { runCommand } from './run.ts';
import { slurmCommand } from './slurm.ts';
import { startCommand } from './start.ts';
import { statusCommand } from './status.ts';
import { testbedBuildCommand } from './testbed-build.ts';
import { testbedCommand } from './testbed-init.ts';
import { traceCommand } from './trace.ts';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export const COMMANDS: CommandModule<object, any>[] = [planCommand, runCommand, resumeCommand, statusCommand, exportCommand, doctorCommand, startCommand, parseCommand, testbedCommand(testbedBuildCommand), bootResumeCommand, reportCommand, compareCommand, predictCommand, mergeCommand, slurmCommand, placeCommand, traceCommand];
