import type { Sample } from '../../src/core/sample.ts';
import type { Scenario } from '../../src/core/scenario.ts';
import { simulateScenario } from '../../src/testbeds/model/index.ts';

export const PAPER_HOST = { memoryGiBPerNode: [192, 192] };

export async function run(scenario: Scenario): Promise<Sample[]> {
  const out: Sample[] = [];
  await simulateScenario(scenario, PAPER_HOST, (s) => out.push(...s));
  return out;
}

/** The once-per-run value of a metric for an instance (and node). */
export function result(samples: Sample[], instance: string, metric: string, node: number | null = null): number {
  const found = samples.filter((s) => s.t === null && s.instance === instance && s.metric === metric && s.node === node);
  if (found.length !== 1) throw new Error(`expected one ${instance}/${metric}/${node} result, found ${found.length}`);
  return found[0].value;
}

export function series(samples: Sample[], instance: string, metric: string, node: number | null = null): Sample[] {
  return samples.filter((s) => s.t !== null && s.instance === instance && s.metric === metric && s.node === node);
}
