import type { KsmSettings } from '../../core/scenario.ts';

/**
 * The knobs written for one step: the scenario's generic settings, then the kernel's and mode's
 * knobs (e.g. nuKSM's smart_ksm=1), then the scenario's extra knobs, later entries winning; `run`
 * last, so ksmd starts only once everything else is set (KsmControl writes in this order).
 */
export function stepKsmKnobs(settings: KsmSettings, kernelKnobs: Record<string, string>): Record<string, string> {
  return {
    pages_to_scan: String(settings.pagesToScan),
    sleep_millisecs: String(settings.sleepMillisecs),
    merge_across_nodes: settings.mergeAcrossNodes ? '1' : '0',
    max_page_sharing: String(settings.maxPageSharing),
    ...kernelKnobs,
    ...settings.extraKnobs,
    run: settings.run ? '1' : '0',
  };
}
