/** Progress lines on a terminal: current step, done / total, ETA. Silent when stderr is not a TTY. */
import type { Progress } from '../campaign/runner.ts';
import { duration } from './format.ts';

export function progressPrinter(stream: NodeJS.WriteStream = process.stderr): ((p: Progress) => void) | undefined {
  if (!stream.isTTY && process.env.NUKSM_PROGRESS !== '1') return undefined;
  return (p) => {
    stream.write(`[${p.done + p.failed}/${p.total}${p.failed ? `, ${p.failed} failed` : ''}] ${p.step.stepId}  ETA ${duration(p.etaS)}\n`);
  };
}
