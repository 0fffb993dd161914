// One bench scenario in its own process, so that peak RSS is per scenario. Prints one JSON line.
import { simulateScenario, fairnessScenario, fig8Scenario, simulatedHostOf, paperModelTestbedFile } from '../src/testbeds/model/index.ts';
import type { KernelMode } from '../src/core/scenario.ts';
import type { Sample } from '../src/core/sample.ts';

const [kind, workload, mode] = process.argv.slice(2) as [string, string, KernelMode];
const scenario = kind === 'fig8' ? fig8Scenario(mode) : fairnessScenario(workload, mode);
const samples: Sample[] = [];
const t0 = process.hrtime.bigint();
const cpu0 = process.cpuUsage();
const summary = await simulateScenario(scenario, simulatedHostOf(paperModelTestbedFile()), (s) => samples.push(...s));
const wallS = Number(process.hrtime.bigint() - t0) / 1e9;
const simCpu = process.cpuUsage(cpu0); // the simulation only (model + testbed), without loading the modules
const cpu = process.cpuUsage();
const once = (instance: string, metric: string, node: number | null = null) =>
  samples.find((s) => s.t === null && s.instance === instance && s.metric === metric && s.node === node)?.value ?? null;
const free0 = samples.filter((s) => s.metric === 'mem_free_gib' && s.node === 0).map((s) => s.value);
process.stdout.write(JSON.stringify({
  kind, workload, mode, wallS, cpuS: (cpu.user + cpu.system) / 1e6, simCpuS: (simCpu.user + simCpu.system) / 1e6, maxRssMiB: process.resourceUsage().maxRSS / 1024, ...summary,
  runtimes: [once('vm0', 'runtime_s'), once('vm1', 'runtime_s')],
  savedGiB: once('host', 'memory_saved_gib'),
  comparisonsPerMerge: once('host', 'ksm_comparisons_per_merge'),
  oomFlag: once('host', 'oom'),
  minFreeNode0GiB: free0.length > 0 ? Math.min(...free0) : null,
  savedAt900: samples.find((s) => s.metric === 'memory_saved_gib' && s.t === 900)?.value ?? null,
}) + '\n');
