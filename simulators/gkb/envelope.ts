/**
 * The shape of GKB's answers as the document's example responses show it (§4.1.1–§4.1.3):
 *
 *   <soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/">
 *     <SOAP-ENV:Header xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/">
 *       <userId>…</userId><creditorId>…</creditorId><timestamp>1581502678429</timestamp>
 *     </SOAP-ENV:Header>
 *     <soap:Body><ns2:uploadFileResponse xmlns:ns2="http://data.chdb.scb.kz">…
 *
 * node-soap writes <soap:Header> and a tns prefix declared on the envelope; toDocumentShape rewrites that.
 */
const SOAP_ENV_NS = 'http://schemas.xmlsoap.org/soap/envelope/';
const GKB_NS = 'http://data.chdb.scb.kz';

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** The inner XML of the answer header: the caller's userId, the provider's creditorId, GKB's clock in ms. */
export function responseHeaderXml(userId: string, creditorId: string, timestampMs: number): string {
  return `<userId>${esc(userId)}</userId><creditorId>${esc(creditorId)}</creditorId><timestamp>${Math.trunc(timestampMs)}</timestamp>`;
}

/** node-soap's answer rewritten to the document's shape; text it does not recognise is left as it is. */
export function toDocumentShape(xml: string): string {
  let out = xml.replace(
    /<soap:Header>([\s\S]*?)<\/soap:Header>/,
    (_m, inner: string) => `<SOAP-ENV:Header xmlns:SOAP-ENV="${SOAP_ENV_NS}">${inner}</SOAP-ENV:Header>`,
  );
  out = out
    .replace(/<tns:(\w+Response)>/, (_m, name: string) => `<ns2:${name} xmlns:ns2="${GKB_NS}">`)
    .replace(/<\/tns:(\w+Response)>/, (_m, name: string) => `</ns2:${name}>`);
  // The envelope's tns declaration goes only when nothing else uses the prefix.
  const withoutDeclaration = out.replace(/\s+xmlns:tns="http:\/\/data\.chdb\.scb\.kz"/, '');
  return withoutDeclaration.includes('tns:') ? out : withoutDeclaration;
}
