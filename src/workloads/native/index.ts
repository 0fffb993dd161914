export { buildNativeWorkloads, nativeVersion, NATIVE_SOURCE_DIR, NATIVE_BINARY } from './build.ts';
export { xsbenchNative, randomaccessNative, btreeNative, cgNative } from './workloads.ts';
export { parseNativeResult, parseHogSteps, nativeArgv, NATIVE_WORKLOADS, type NativeWorkload, type NativeResult, type HogStep, type NativeArgs } from './parse.ts';
