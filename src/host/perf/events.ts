/** Perf event sets per CPU model, loaded from event-sets.yaml, and selection from /proc/cpuinfo. */
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { ConfigError } from '../../core/errors.ts';

const EVENT = z.object({ name: z.string().regex(/^[A-Za-z0-9_.:-]+$/), event: z.string().min(1) });
const SET = z.object({
  description: z.string(),
  match: z
    .object({
      vendor: z.string(),
      family: z.number().int(),
      models: z.array(z.number().int()).optional(),
      modelRanges: z.array(z.tuple([z.number().int(), z.number().int()])).optional(),
    })
    .nullable(),
  local: z.array(EVENT),
  remote: z.array(EVENT),
  extra: z.array(EVENT).optional(),
});

export type PerfEvent = z.infer<typeof EVENT>;
export type PerfEventSet = z.infer<typeof SET> & { id: string };

export const EVENT_SETS_FILE = new URL('./event-sets.yaml', import.meta.url);

export function loadEventSets(file: URL | string = EVENT_SETS_FILE): Map<string, PerfEventSet> {
  const text = readFileSync(file, 'utf8');
  const raw = parseYaml(text) as Record<string, unknown>;
  const sets = new Map<string, PerfEventSet>();
  for (const [id, value] of Object.entries(raw)) {
    const parsed = SET.safeParse(value);
    if (!parsed.success) throw new ConfigError(String(file), id, parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; '));
    sets.set(id, { ...parsed.data, id });
  }
  return sets;
}

export function eventSet(id: string, sets = loadEventSets()): PerfEventSet {
  const set = sets.get(id);
  if (!set) throw new ConfigError(String(EVENT_SETS_FILE), id, `unknown perf event set (known: ${[...sets.keys()].join(', ')})`);
  return set;
}

export interface CpuIdentity {
  vendor: string;
  family: number;
  model: number;
  modelName: string;
}

/** The first processor block of /proc/cpuinfo. */
export function parseCpuinfo(text: string): CpuIdentity {
  const field = (name: string) => new RegExp(`^${name}\\s*:\\s*(.*)$`, 'm').exec(text)?.[1]?.trim() ?? '';
  return { vendor: field('vendor_id'), family: Number(field('cpu family')), model: Number(field('model')), modelName: field('model name') };
}

/** The event set for a CPU, or 'none' when no set matches. */
export function selectEventSet(cpu: CpuIdentity, sets = loadEventSets()): PerfEventSet {
  for (const set of sets.values()) {
    const m = set.match;
    if (!m || m.vendor !== cpu.vendor || m.family !== cpu.family) continue;
    if (m.models?.includes(cpu.model) || m.modelRanges?.some(([lo, hi]) => cpu.model >= lo && cpu.model <= hi)) return set;
  }
  return eventSet('none', sets);
}

/** `-e` arguments for perf stat. */
export function perfEventArgs(set: PerfEventSet, modifier = ''): string[] {
  return [...set.local, ...set.remote, ...(set.extra ?? [])].flatMap((e) => ['-e', applyModifier(e.event, modifier)]);
}

/** Append a modifier such as ':G' (guest-only) to a named or raw event. */
function applyModifier(event: string, modifier: string): string {
  if (!modifier) return event;
  return event.endsWith('/') ? `${event}${modifier.replace(/^:/, '')}` : `${event}${modifier}`;
}
