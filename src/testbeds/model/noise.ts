/**
 * Seeded run-to-run noise of the model testbed (profiles.ts RUN_TO_RUN_NOISE, docs/model.md). Every draw is a
 * pure function of the step's seed (the planner's seedFor(campaign seed, step key, iteration)) and a name, never
 * of execution order: a step gives the same numbers whether it runs first, last, alone or in a shard.
 */
import { mix32, SplitMix32 } from '../../policy/index.ts';

/** FNV-1a of a string (an instance name) to salt its draws. */
function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

/** One standard normal draw for (seed, salt): Box–Muller on two uniforms of a SplitMix32 stream. */
export function standardNormal(seed: number, salt: string): number {
  const rng = new SplitMix32(mix32((seed ^ fnv1a(salt)) >>> 0));
  const u1 = 1 - rng.next(); // (0, 1]
  const u2 = rng.next();
  return Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
}

/** A log-normal factor with mean 1 and coefficient of variation `cv` (1 when cv = 0). */
export function lognormalFactor(cv: number, z: number): number {
  if (cv === 0) return 1;
  const s2 = Math.log(1 + cv * cv);
  return Math.exp(Math.sqrt(s2) * z - s2 / 2);
}
