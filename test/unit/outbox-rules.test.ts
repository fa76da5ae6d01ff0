/**
 * The dispatcher's pure rules: whose fault a failed hand-over is (Temporal away, or Temporal
 * refusing this item), how long a refused row waits, which item its closed case already had,
 * and that an error text keeps no personal data.
 */
import { ServiceError } from '@temporalio/client';
import { staleReason } from '../../activities/episodes';
import { classifyDispatchFailure, redactedErrorText, retryDelayMs } from '../../api/dispatcher';

/** A gRPC error as @grpc/grpc-js gives it, wrapped as the Temporal client rethrows it. */
function temporalError(code: number, details: string): ServiceError {
  const grpc = Object.assign(new Error(`${code} ${details}`), { code, details, metadata: {} });
  return new ServiceError('Failed to signalWithStart Workflow', { cause: grpc });
}

describe('classifyDispatchFailure', () => {
  it.each([
    ['UNAVAILABLE', 14],
    ['DEADLINE_EXCEEDED', 4],
    ['RESOURCE_EXHAUSTED', 8],
    ['CANCELLED', 1],
    ['ABORTED', 10],
    ['UNKNOWN', 2],
    ['INTERNAL', 13],
  ])('%s: Temporal unavailable, not the item', (_name, code) => {
    expect(classifyDispatchFailure(temporalError(code, 'trouble'))).toEqual({ kind: 'temporal-unavailable' });
  });

  it('connection errors without a gRPC status are Temporal unavailable', () => {
    expect(classifyDispatchFailure(Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:7233'), { code: 'ECONNREFUSED' }))).toEqual({
      kind: 'temporal-unavailable',
    });
    expect(classifyDispatchFailure(new ServiceError('Failed to connect to Temporal server', { cause: new Error('timeout') }))).toEqual({
      kind: 'temporal-unavailable',
    });
    expect(classifyDispatchFailure(Object.assign(new Error('tcp connect error'), { name: 'TransportError' }))).toEqual({ kind: 'temporal-unavailable' });
  });

  it.each([
    ['INVALID_ARGUMENT', 3, 'WorkflowId length exceeds limit.'],
    ['FAILED_PRECONDITION', 9, 'Namespace is not active'],
    ['PERMISSION_DENIED', 7, 'Request unauthorized.'],
    ['ALREADY_EXISTS', 6, 'exists'],
    ['OUT_OF_RANGE', 11, 'too far'],
  ])('%s: Temporal refuses this item; the text names the status', (name, code, details) => {
    expect(classifyDispatchFailure(temporalError(code, details))).toEqual({ kind: 'item-refused', error: `${name}: ${details}` });
  });

  it("an error of another kind (e.g. a payload the converter cannot take) is the item's", () => {
    const failure = classifyDispatchFailure(Object.assign(new Error('Unable to convert value of type bigint'), { name: 'PayloadConverterError' }));
    expect(failure).toEqual({ kind: 'item-refused', error: 'PayloadConverterError: Unable to convert value of type bigint' });
  });

  it('keeps no IIN or IBAN from the error text', () => {
    const failure = classifyDispatchFailure(temporalError(3, 'bad value 890101402471 for KZ86125KZT5004100100'));
    expect(failure).toEqual({ kind: 'item-refused', error: 'INVALID_ARGUMENT: bad value [number] for [iban]' });
  });
});

describe('redactedErrorText', () => {
  it('cuts long texts and folds whitespace', () => {
    const text = redactedErrorText(`a\n\nb ${'x'.repeat(1000)}`, 50);
    expect(text).toHaveLength(50);
    expect(text.startsWith('a b x')).toBe(true);
    expect(text.endsWith('…')).toBe(true);
  });
});

describe('retryDelayMs', () => {
  it('doubles per attempt from the base and stops growing at 10 minutes', () => {
    expect([1, 2, 3, 4].map((a) => retryDelayMs(a, 1000))).toEqual([1000, 2000, 4000, 8000]);
    expect(retryDelayMs(30, 1000)).toBe(600_000);
    expect(retryDelayMs(0, 50)).toBe(50);
  });
});

describe('staleReason', () => {
  const row = { id: 10, payload_sha256: 'a'.repeat(64) };

  it('no closed episode: never stale', () => {
    expect(staleReason({ ...row, episode: undefined })).toBeUndefined();
  });

  it('an item the closed case applied, or an older one, is stale', () => {
    expect(staleReason({ ...row, episode: { closedSeq: 10 } })).toBe('applied-before-close');
    expect(staleReason({ ...row, episode: { closedSeq: 12, lastOverdueSha256: 'b'.repeat(64) } })).toBe('applied-before-close');
  });

  it('a newer item identical to the last overdue item the closed case applied is a late re-send', () => {
    expect(staleReason({ ...row, episode: { closedSeq: 9, lastOverdueSha256: 'a'.repeat(64) } })).toBe('resent-after-close');
    expect(staleReason({ ...row, episode: { lastOverdueSha256: 'a'.repeat(64) } })).toBe('resent-after-close');
  });

  it('a newer item with other data is a new episode', () => {
    expect(staleReason({ ...row, episode: { closedSeq: 9, lastOverdueSha256: 'b'.repeat(64) } })).toBeUndefined();
    expect(staleReason({ ...row, episode: {} })).toBeUndefined();
  });
});
