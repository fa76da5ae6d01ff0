/**
 * The failure converter of every K2 process (and of the workflow bundle: Temporal loads it by path,
 * `failureConverterPath`). Failure messages and stack traces travel as an encoded payload, so the
 * payload codec encrypts them: an activity failing with an IIN in its message leaves no IIN in clear.
 * Only @temporalio/common here: this module runs inside the workflow sandbox too.
 */
import { DefaultFailureConverter } from '@temporalio/common';

export const failureConverter = new DefaultFailureConverter({ encodeCommonAttributes: true });
