/**
 * Failure classes shared by every layer. The campaign journal records the class of a failed
 * step and the retry policy is chosen per class (see src/campaign).
 */
import { redact, redactDeep } from './secrets.ts';

export const FAILURE_CLASSES = [
  'config', // bad spec or testbed file: never retried
  'boot', // kernel did not come up, or came up as the wrong kernel
  'placement', // a VM or process landed off its NUMA node
  'guest-unreachable', // SSH to a guest or host failed
  'timeout', // a phase exceeded its timeout
  'benchmark-error', // the benchmark exited non-zero or failed its own verification
  'parse-error', // the benchmark output could not be parsed
  'oom', // the host ran out of memory (an expected outcome in Fig. 8 under KSM)
  'unsupported', // the testbed cannot do what the step asks (recorded, not retried)
] as const;

export type FailureClass = (typeof FAILURE_CLASSES)[number];

export class HarnessError extends Error {
  readonly failureClass: FailureClass;
  readonly details: Record<string, unknown>;

  constructor(failureClass: FailureClass, message: string, details: Record<string, unknown> = {}, options?: { cause?: unknown }) {
    // Known secrets never reach an error's text (src/core/secrets.ts).
    super(redact(message), options);
    this.name = 'HarnessError';
    this.failureClass = failureClass;
    this.details = redactDeep(details);
  }
}

/** A spec or testbed file problem, always naming the file and the key path. */
export class ConfigError extends HarnessError {
  readonly file: string;
  readonly keyPath: string;

  constructor(file: string, keyPath: string, why: string) {
    super('config', `${file}: ${keyPath || '(top level)'}: ${why}`, { file, keyPath, why });
    this.name = 'ConfigError';
    this.file = file;
    this.keyPath = keyPath;
  }
}

export function failureClassOf(err: unknown): FailureClass {
  return err instanceof HarnessError ? err.failureClass : 'benchmark-error';
}
