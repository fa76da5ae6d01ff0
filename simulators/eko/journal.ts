/**
 * The EKO simulator's own record of every payment demand POST it received (GET /_sim/journal), so a
 * test can judge K2 by what EKO saw rather than by what K2 says it sent: two references for one
 * contract and episode, a repeat taken for a new demand, a demand K2 thinks it sent that EKO never
 * accepted. No personal data: references, contract numbers (bank references), keys, times, outcomes.
 */
import { isDemandReference } from '../../domain/demand-status';

/** What EKO did with one demand POST. */
export type DemandOutcome =
  /** A new demand, stored; its statuses will follow. */
  | 'accepted'
  /** A new demand, stored, then answered 503 (the http5xxAfterAccept fault: K2 never heard the yes). */
  | 'accepted-then-5xx'
  /** The same demand again under a known reference: answered 0, nothing new stored. */
  | 'repeat'
  /** Refused with error_code 2 by the reject fault. */
  | 'refused-by-fault'
  /** Answered 503 by the http5xx fault before the demand was looked at. */
  | '5xx'
  | 'invalid'
  /** A known reference with a different demand: 409. */
  | 'conflict'
  | 'unauthorized';

export interface DemandJournalEntry {
  /** Absent when the body carried no well-formed reference (an invalid demand). */
  reference?: string;
  contract_number?: string;
  /** The demand's episode key, when the demand carries one (K2's PaymentDemand has none today). */
  episode?: string;
  /** The Idempotency-Key header as received. */
  idempotency_key?: string;
  received_at: string;
  outcome: DemandOutcome;
}

/** Outcomes after which EKO holds the demand as new (each should happen once per reference). */
export const NEW_DEMAND_OUTCOMES: readonly DemandOutcome[] = ['accepted', 'accepted-then-5xx'];

/** The journal keeps at most this many entries (the oldest go first): memory stays bounded in a long demo. */
export const DEMAND_JOURNAL_LIMIT = 200_000;

export interface DemandJournal {
  record(body: unknown, idempotencyKey: string | undefined, outcome: DemandOutcome, at: Date): void;
  entries(): DemandJournalEntry[];
  /** Entries dropped because the journal was full. */
  dropped(): number;
}

/** Reads the identifying fields of a demand body as far as they are well-formed; never its personal data. */
export function journalEntryOf(body: unknown, idempotencyKey: string | undefined, outcome: DemandOutcome, at: Date): DemandJournalEntry {
  const b = body !== null && typeof body === 'object' && !Array.isArray(body) ? (body as Record<string, unknown>) : {};
  const entry: DemandJournalEntry = { received_at: at.toISOString(), outcome };
  if (isDemandReference(b.reference)) entry.reference = b.reference;
  if (typeof b.contract_number === 'string' && b.contract_number.length > 0 && b.contract_number.length <= 64) entry.contract_number = b.contract_number;
  if ((typeof b.episode === 'string' && b.episode.length <= 200) || typeof b.episode === 'number') entry.episode = String(b.episode);
  if (idempotencyKey !== undefined) entry.idempotency_key = idempotencyKey.slice(0, 64);
  return entry;
}

export function createDemandJournal(limit = DEMAND_JOURNAL_LIMIT): DemandJournal {
  let entries: DemandJournalEntry[] = [];
  let dropped = 0;
  return {
    record(body, idempotencyKey, outcome, at) {
      entries.push(journalEntryOf(body, idempotencyKey, outcome, at));
      if (entries.length > limit) {
        const over = entries.length - limit;
        entries = entries.slice(over);
        dropped += over;
      }
    },
    entries: () => [...entries],
    dropped: () => dropped,
  };
}
