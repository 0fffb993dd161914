/**
 * A KSM scenario file (`nuksm trace record <scenario file>`; docs/trace.md): JSON or YAML of the scenario
 * type of src/policy/scenario.ts, validated here before anything is created. Bad input is a
 * ConfigError(file, keyPath, why). Limits are the scenario driver's (src/host/ksm/scenario-driver/ksm-scenario.c:
 * 16 instances, 4096 pages each, 256 events), so a file that validates also runs there.
 */
import { z } from 'zod';
import { ConfigError } from '../core/errors.ts';
import type { KsmScenario } from '../policy/scenario.ts';
import { NOT_PRESENT } from '../policy/types.ts';
import { keyPathOf, parseWith, readYaml } from './config-error.ts';

export const SCENARIO_LIMITS = { instances: 16, pagesPerInstance: 4096, events: 256 } as const;

const nat = z.number().int().nonnegative();
const bit = z.union([z.literal(0), z.literal(1)]);
const contentId = z.number().int().min(1).max(NOT_PRESENT - 1, { message: `a content id is at most ${NOT_PRESENT - 1} (2^32 - 2)` });

const knobsSchema = z
  .object({
    pages_to_scan: z.number().int().positive(),
    // Written by the driver whatever the target had: the defaults are the kernel's, stated so the model gets them.
    merge_across_nodes: bit.default(1),
    max_page_sharing: z.number().int().min(2).default(256),
    // 0 unless asked: 6.7+ kernels start with smart scan on, and the model must know which it is.
    smart_scan: bit.default(0),
    stable_node_chains_prune_millisecs: nat.optional(),
  })
  .strict();

// Pass 0 has no stop to act at (ksmd starts right after `initial` registered): use `initial` or a batch.
const triggerSchema = z.union([z.object({ pass: z.number().int().min(1, { message: 'pass triggers start at 1 (before ksmd starts, list the instance in initial; inside pass 1, use a batch trigger)' }) }).strict(), z.object({ batch: z.number().int().min(1) }).strict()]);
const actionSchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('register'), proc: nat }).strict(),
  z.object({ kind: z.literal('write'), proc: nat, page: nat, content: contentId }).strict(),
  z.object({ kind: z.literal('exit'), proc: nat }).strict(),
]);

export const scenarioFileSchema = z
  .object({
    name: z.string().min(1),
    /** Scenario family of issue 13; 0 for a scenario of no family. */
    family: nat.default(0),
    knobs: knobsSchema,
    procs: z.array(z.object({ node: nat, contents: z.array(contentId).min(1).max(SCENARIO_LIMITS.pagesPerInstance) }).strict()).min(1).max(SCENARIO_LIMITS.instances),
    initial: z.array(nat).min(1, { message: 'at least one instance must be registered before ksmd starts' }),
    events: z.array(z.object({ at: triggerSchema, action: actionSchema }).strict()).max(SCENARIO_LIMITS.events).default([]),
    endPass: z.number().int().min(1),
  })
  .strict();

/** Checks zod cannot express: indices in range, each instance registered once, writes and exits of registered ones. */
export function checkScenario(file: string, s: KsmScenario): void {
  const n = s.procs.length;
  const registered = new Set<number>();
  s.initial.forEach((i, k) => {
    if (i >= n) throw new ConfigError(file, `initial[${k}]`, `instance ${i} does not exist (procs has ${n})`);
    if (registered.has(i)) throw new ConfigError(file, `initial[${k}]`, `instance ${i} is registered twice`);
    registered.add(i);
  });
  s.events.forEach((e, k) => {
    if (e.action.kind === 'register') {
      const at = keyPathOf(['events', k, 'action', 'proc']);
      if (e.action.proc >= n) throw new ConfigError(file, at, `instance ${e.action.proc} does not exist (procs has ${n})`);
      if (registered.has(e.action.proc)) throw new ConfigError(file, at, `instance ${e.action.proc} is registered twice`);
      registered.add(e.action.proc);
    }
  });
  const exited = new Set<number>();
  s.events.forEach((e, k) => {
    const a = e.action;
    if ('pass' in e.at && e.at.pass >= s.endPass) throw new ConfigError(file, keyPathOf(['events', k, 'at', 'pass']), `pass ${e.at.pass} is not before endPass ${s.endPass}: the recording stops at the end of pass ${s.endPass}`);
    if (a.kind === 'register') return;
    const at = keyPathOf(['events', k, 'action', 'proc']);
    if (a.proc >= n) throw new ConfigError(file, at, `instance ${a.proc} does not exist (procs has ${n})`);
    if (!registered.has(a.proc)) throw new ConfigError(file, at, `instance ${a.proc} is never registered (initial or a register event)`);
    if (a.kind === 'exit') {
      if (exited.has(a.proc)) throw new ConfigError(file, at, `instance ${a.proc} exits twice`);
      exited.add(a.proc);
    } else if (a.page >= s.procs[a.proc]!.contents.length) {
      throw new ConfigError(file, keyPathOf(['events', k, 'action', 'page']), `instance ${a.proc} has ${s.procs[a.proc]!.contents.length} pages (0..${s.procs[a.proc]!.contents.length - 1})`);
    }
  });
}

/** Validates parsed data as a scenario; throws ConfigError(file, keyPath, why). */
export function parseScenarioFile(file: string, data: unknown): KsmScenario {
  const s = parseWith(file, scenarioFileSchema, data) as KsmScenario;
  checkScenario(file, s);
  return s;
}

/** Reads a scenario file (JSON is YAML too, so one parser reads both). */
export function loadScenarioFile(file: string): KsmScenario {
  return parseScenarioFile(file, readYaml(file));
}
