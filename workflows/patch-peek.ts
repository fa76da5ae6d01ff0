/**
 * Whether patched(id) would take the patch now, without recording its marker. Needed where a wait
 * must know the decision BEFORE it wakes while the marker must be recorded AFTER the wake, in the
 * order the old code recorded it (the wake cancels the wait's timer first, then the old code
 * called patched(); a marker recorded before that cancel is a non-determinism error on replay).
 *
 * This SDK (1.24) has no public API for it: live, a patch is always taken; on replay only when its
 * marker is in the workflow task being replayed, which core announces with notifyHasPatch into the
 * activator's knownPresentPatches. The replay tests (test/replay) hold histories of both kinds;
 * if an SDK upgrade moves that field, they fail rather than a running case.
 */
import { workflowInfo } from '@temporalio/workflow';
import { getActivator } from '@temporalio/workflow/lib/global-attributes';

export function patchWouldApply(patchId: string): boolean {
  if (!workflowInfo().unsafe.isReplaying) return true;
  const known = (getActivator() as unknown as { knownPresentPatches?: ReadonlySet<string> }).knownPresentPatches;
  if (!known) throw new Error('this Temporal SDK does not expose knownPresentPatches: workflows/patch-peek.ts must follow the SDK');
  return known.has(patchId);
}
