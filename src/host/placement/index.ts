export { PlacementEngine, ACCESS_SIGNAL_CODE, parseSharersOutput, parseMoveOutput, niceFromStat, type AccessSignal, type PlacementEngineOptions, type PlacementRound, type PlannedMove } from './engine.ts';
export { DamonSignal, detectDamon, accessedAt, type DamonRegion } from './damon.ts';
export { ensureMovePagesHelper, buildMovePagesHelper, movePagesVersion, MOVE_PAGES_BINARY } from './helper.ts';
export { resolvePlacementTargets } from './targets.ts';
