/**
 * Where tests find the paper artifact's snapshot (the offline cache directory holding
 * nuKSM-pact21-artifact-5403aa1.tar, optionally with SHA256SUMS): $NUKSM_ARTIFACT_DIR, else
 * <repo root>/../shared/artifacts. Suites that need it declare the 'artifact' component
 * (test/support/components.ts), so under CI=true a missing snapshot fails instead of skipping.
 */
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { ARTIFACT_SNAPSHOT } from '../../src/workloads/cache.ts';

export function artifactDir(): string {
  const fromEnv = process.env.NUKSM_ARTIFACT_DIR;
  return fromEnv !== undefined && fromEnv !== '' ? resolve(fromEnv) : resolve(import.meta.dirname, '..', '..', '..', 'shared', 'artifacts');
}

export function artifactPresent(): boolean {
  return existsSync(join(artifactDir(), ARTIFACT_SNAPSHOT.file));
}
