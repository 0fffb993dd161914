/**
 * Samples monitors on a fixed period. Ticks are scheduled against the step start (no drift), a
 * slow sample never overlaps the next one of the same monitor (that tick is skipped and counted),
 * and one monitor failing is reported through onError without stopping the others.
 */
import type { Sample, SampleSink } from '../../core/sample.ts';
import type { Monitor } from './types.ts';

export interface SamplingOptions {
  periodMs: number;
  /** Date.now() at the step start; t = (now − stepStartMs) / 1000. */
  stepStartMs: number;
  emit: SampleSink;
  onError?: (monitor: string, err: unknown) => void;
  /** Sample once immediately after start (t ≈ 0). Default true. */
  sampleAtStart?: boolean;
}

export interface Sampling {
  /** Stop the ticks, wait for in-flight samples, run every monitor's stop() and emit its samples. */
  stop(): Promise<Sample[]>;
  readonly skippedTicks: number;
}

export async function startSampling(monitors: readonly Monitor[], opts: SamplingOptions): Promise<Sampling> {
  const onError = opts.onError ?? (() => undefined);
  await Promise.all(monitors.map((m) => m.start()));
  const busy = new Map<Monitor, Promise<void>>();
  let skipped = 0;
  let stopped = false;

  const tick = () => {
    const t = (Date.now() - opts.stepStartMs) / 1000;
    for (const m of monitors) {
      if (busy.has(m)) {
        skipped++;
        continue;
      }
      const p = m
        .sample(t)
        .then((samples) => {
          if (samples.length > 0 && !stopped) opts.emit(samples);
        })
        .catch((err: unknown) => onError(m.name, err))
        .finally(() => busy.delete(m));
      busy.set(m, p);
    }
  };

  let timer: NodeJS.Timeout | null = null;
  let n = 0;
  const schedule = () => {
    n++;
    const due = opts.stepStartMs + n * opts.periodMs;
    timer = setTimeout(
      () => {
        if (stopped) return;
        tick();
        schedule();
      },
      Math.max(0, due - Date.now()),
    );
  };
  if (opts.sampleAtStart ?? true) tick();
  // Align later ticks to multiples of the period after the step start.
  n = Math.max(0, Math.floor((Date.now() - opts.stepStartMs) / opts.periodMs));
  schedule();

  return {
    get skippedTicks() {
      return skipped;
    },
    async stop() {
      if (timer) clearTimeout(timer);
      await Promise.all(busy.values());
      stopped = true;
      const finals: Sample[] = [];
      for (const m of monitors) {
        try {
          finals.push(...(await m.stop()));
        } catch (err) {
          onError(m.name, err);
        }
      }
      if (finals.length > 0) opts.emit(finals);
      return finals;
    },
  };
}
