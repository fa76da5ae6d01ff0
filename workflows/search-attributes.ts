/**
 * The case's custom search attributes (registered on the server at start-up, see scripts/system.ts).
 * In their own module, free of workflow APIs, because the API's dispatcher sets them when it
 * starts a case. No personal data in any of them.
 */
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';

export const SEARCH_ATTRIBUTES = {
  stage: defineSearchAttributeKey('K2Stage', SearchAttributeType.KEYWORD),
  needsAttention: defineSearchAttributeKey('K2NeedsAttention', SearchAttributeType.BOOL),
  attentionReason: defineSearchAttributeKey('K2AttentionReason', SearchAttributeType.KEYWORD),
  /** When the case entered its current stage (patch 'case-stage-since'; absent on runs from before it): `k2 case list --stuck-for`. */
  stageSince: defineSearchAttributeKey('K2StageSince', SearchAttributeType.DATETIME),
  /** The loan's ABS system code (way4, colvir, …; a bank's system name, not personal data); patch 'case-stage-since'. */
  absSystem: defineSearchAttributeKey('K2AbsSystem', SearchAttributeType.KEYWORD),
} as const;
