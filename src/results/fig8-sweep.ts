/**
 * The Fig. 8 sensitivity sweep file (docs/fig8-sweep.json, written by bench/fig8-sweep.ts on the model testbed):
 * KSM's and nuKSM's OOM outcome over VM-1 start x host reserve x comparison cost. Model output, never a
 * measurement. The report shows it next to a campaign's Fig. 8, so a reader sees how much the one-run outcome
 * depends on the model's estimates. Validated on read; a missing or invalid file is reported, never thrown.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';

export const FIG8_SWEEP_FILE = fileURLToPath(new URL('../../docs/fig8-sweep.json', import.meta.url));

const outcome = z.object({
  oom: z.boolean(),
  oomAtS: z.number().nullable(),
  minFreeNode0GiB: z.number().nullable(),
  savedAt900GiB: z.number().nullable(),
  derivedFromReserveGiB: z.number().nullable(),
});

const sweepFile = z.object({
  format: z.literal('nuksm-fig8-sweep'),
  version: z.literal(1),
  source: z.string(),
  date: z.string(),
  host: z.string(),
  wallS: z.number(),
  simulated: z.number().int(),
  rows: z.array(z.object({
    vm1StartS: z.number(),
    hogStartS: z.number(),
    reserveGiB: z.number(),
    comparisonCostFactor: z.number(),
    ksm: outcome,
    nuksm: outcome,
  })).min(1),
});

export type Fig8SweepFile = z.infer<typeof sweepFile>;

/** The sweep, or why there is none to show. */
export function readFig8Sweep(path = FIG8_SWEEP_FILE): { sweep: Fig8SweepFile } | { error: string } {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    return { error: `${path}: cannot read it (${(e as Error).message}); bench/fig8-sweep.ts writes it` };
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    return { error: `${path}: not JSON (${(e as Error).message})` };
  }
  const r = sweepFile.safeParse(json);
  if (!r.success) {
    const i = r.error.issues[0]!;
    return { error: `${path}: ${i.path.join('.') || '(top level)'}: ${i.message}` };
  }
  return { sweep: r.data };
}

/** One table cell of the sweep, in words. */
export function sweepCell(o: z.infer<typeof outcome>): string {
  return o.oom ? `OOM at ${o.oomAtS === null ? '?' : o.oomAtS.toFixed(0)} s` : `no OOM (min free ${o.minFreeNode0GiB?.toFixed(1) ?? '?'} GiB, ${o.savedAt900GiB?.toFixed(1) ?? '?'} GiB saved by 900 s)`;
}
