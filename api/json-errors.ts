/**
 * Why a body is not JSON, in words that quote none of it. V8's JSON.parse messages carry up to ten
 * characters either side of the fault (`Unexpected token 'И', ..."x": Иванов Ива"... is not valid
 * JSON`), and a loan's body is names, IINs and IBANs: error_text must not hand them back or into a log.
 */

/** V8's message without the excerpt of the body: the position, or the one unexpected character, stays. */
export function jsonSyntaxReason(message: string): string {
  // Forms with an excerpt all end so: "Unexpected token 'x', "…" is not valid JSON", ""…" is not valid JSON".
  if (!/ is not valid JSON$/.test(message)) return message;
  const token = /^Unexpected token '([^]{1,2}?)', /.exec(message);
  return token ? `Unexpected token ${JSON.stringify(token[1])}` : 'not valid JSON';
}
