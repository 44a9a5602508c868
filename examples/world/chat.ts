/** Chat vetting: what the server lets through of what a player typed. */

/** Longest chat line, in characters (code points); longer lines are cut. */
export const MAX_CHAT_CHARS = 200;

/** Control characters (C0, DEL, C1): line breaks, tabs, escapes that could mess up a chat box. */
const CONTROL = /\p{Cc}/gu;
/** Invisible formatting characters that can reorder or hide text (bidi overrides, zero-width joiners). */
const FORMAT = /\p{Cf}/gu;

/**
 * The chat line to show for `raw`, or null when nothing is left: unwanted characters removed,
 * runs of whitespace made one space, ends trimmed, cut to {@link MAX_CHAT_CHARS}.
 */
export function vetChat(raw: string): string | null {
  const clean = raw.replace(FORMAT, "").replace(CONTROL, " ").replace(/\s+/gu, " ").trim();
  if (clean.length === 0) return null;
  const chars = Array.from(clean);
  return chars.length <= MAX_CHAT_CHARS ? clean : chars.slice(0, MAX_CHAT_CHARS).join("").trimEnd();
}
