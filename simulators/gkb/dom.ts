/**
 * Reading XML for the GKB sandbox: a generic parse (xmlbuilder2's DOM) and a few helpers over its
 * element nodes. Nothing here knows K2's files; the sandbox's own rules (rules.ts) walk this DOM.
 */
import { createHash } from 'node:crypto';
import { create } from 'xmlbuilder2';

/** The part of xmlbuilder2's DOM the sandbox uses. */
export interface El {
  nodeType: number;
  nodeName: string;
  childNodes: ArrayLike<El>;
  textContent: string | null;
  attributes?: ArrayLike<{ name: string; value: string }>;
  getAttribute(name: string): string | null;
}

const ELEMENT_NODE = 1;

/** The root element of an XML text; throws with the parser's message when it is not well-formed. */
export function parseXml(xml: string): El {
  return create(xml).root().node as unknown as El;
}

export function elements(el: El | undefined): El[] {
  if (!el) return [];
  return Array.from(el.childNodes).filter((n) => n.nodeType === ELEMENT_NODE);
}

export function kids(el: El | undefined, name: string): El[] {
  return elements(el).filter((n) => n.nodeName === name);
}

/** The first element down a path of names, e.g. kid(contract, 'Type', 'Credit'). */
export function kid(el: El | undefined, ...names: string[]): El | undefined {
  let cur = el;
  for (const n of names) cur = kids(cur, n)[0];
  return cur;
}

/** Trimmed text; undefined when empty. */
export function textOf(el: El | undefined): string | undefined {
  const t = el?.textContent?.trim();
  return t ? t : undefined;
}

/** An attribute; undefined when absent or blank. */
export function attr(el: El | undefined, name: string): string | undefined {
  const v = el?.getAttribute(name)?.trim();
  return v ? v : undefined;
}

/** The ru-RU text of a multi-language name, else the first one. */
export function nameText(el: El | undefined): string | undefined {
  const texts = kids(el, 'Text');
  return textOf(texts.find((t) => t.getAttribute('language') === 'ru-RU') ?? texts[0]);
}

/**
 * A canonical form of an element: names, sorted attributes and trimmed texts, without the layout
 * (indentation, line breaks). Two records with the same content have the same canonical form.
 */
export function canonical(el: El): string {
  const attrs = Array.from(el.attributes ?? [])
    .map((a) => `${a.name}=${JSON.stringify(a.value)}`)
    .sort()
    .join(' ');
  const children = elements(el);
  const body = children.length > 0 ? children.map(canonical).join('') : JSON.stringify(el.textContent?.trim() ?? '');
  return `<${el.nodeName}${attrs ? ' ' + attrs : ''}>${body}</>`;
}

/** sha256 of the canonical form: what the sandbox keeps to recognise a re-sent record. */
export function fingerprint(el: El): string {
  return createHash('sha256').update(canonical(el)).digest('hex');
}
