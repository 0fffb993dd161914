/**
 * Progress of a campaign on the terminal. On a TTY: one live bar (cli-progress) with done/total,
 * the current step, its phase (the runner's latest log message for it) and the ETA from the
 * plan's estimates (runner.ts Progress.etaS, not cli-progress's own rate-based guess). Not a TTY
 * (a log file, CI): one plain line per step on stderr. `--json` runs show neither (quiet).
 * NUKSM_PROGRESS=1 forces the plain lines (tests read them).
 */
import { SingleBar } from 'cli-progress';
import type { Progress } from '../campaign/runner.ts';
import { duration } from './format.ts';

export interface ProgressReporter {
  onProgress(p: Progress): void;
  /** A log message of the runner or testbed: shown as the current step's phase. */
  onLog(msg: string): void;
  /** Ends the bar at `done` finished steps (a no-op for plain lines). */
  stop(done?: number): void;
}

/** The plain line of a step start (kill-resume tests wait for it: `[done/total] stepId`). */
export const progressLine = (p: Progress): string =>
  `[${finishedOf(p)}/${p.total}${p.failed ? `, ${p.failed} failed` : ''}${p.notNeeded ? `, ${p.notNeeded} not needed` : ''}] ${p.step.stepId}  ETA ${duration(p.etaS)}\n`;

/** Finished steps: done, failed and adaptive iterations decided away (not needed). */
const finishedOf = (p: Progress) => p.done + p.failed + p.notNeeded;

export function progressReporter(stream: NodeJS.WriteStream = process.stderr): ProgressReporter {
  if (!stream.isTTY || process.env.NUKSM_PROGRESS === '1') {
    return { onProgress: (p) => void stream.write(progressLine(p)), onLog: () => {}, stop: () => {} };
  }
  const bar = new SingleBar(
    {
      stream,
      format: ' {bar} {value}/{total}{failed} | {step} | {phase} | ETA {eta_plan}',
      barsize: 24,
      hideCursor: true,
      clearOnComplete: false,
      linewrap: false,
      fps: 4,
      // The phase text is cut to the terminal's width rather than wrapped over the line.
      autopadding: true,
    },
    { barCompleteChar: '█', barIncompleteChar: '░', format: '' },
  );
  let started = false;
  const width = () => Math.max(20, (stream.columns ?? 100) - 70);
  const cut = (s: string) => (s.length > width() ? `${s.slice(0, width() - 1)}…` : s);
  return {
    onProgress(p) {
      const notes = [p.failed ? `${p.failed} failed` : '', p.notNeeded ? `${p.notNeeded} not needed` : ''].filter(Boolean).join(', ');
      const payload = { step: p.step.stepId, phase: 'starting', eta_plan: duration(p.etaS), failed: notes ? ` (${notes})` : '' };
      if (!started) {
        bar.start(p.total, finishedOf(p), payload);
        started = true;
      } else bar.update(finishedOf(p), payload);
    },
    onLog(msg) {
      if (started) bar.update({ phase: cut(msg) });
    },
    stop(done) {
      if (!started) return;
      if (done !== undefined) bar.update(done, { step: 'finished', phase: '-' });
      bar.stop();
      started = false;
    },
  };
}
