/**
 * Text for a person's terminal. An agent's reply can carry whatever its inputs did (a web page,
 * a file), and a terminal obeys escape sequences: clear the screen, rewrite lines, set the title,
 * write the clipboard (OSC 52). So every reply, edit and notice is shown with escape sequences
 * and control characters removed, newlines and tabs kept. `--json` output is escaped by JSON and
 * keeps the text as it came.
 */

// Control characters are what these patterns are about.
/* eslint-disable no-control-regex */
/** ESC-introduced sequences: CSI (ESC [ … final), OSC/DCS/SOS/PM/APC strings, and two-byte escapes. */
const ESCAPES =
  /\x1b(?:\[[0-?]*[ -/]*[@-~]|[\]P^_X][^\x07\x1b]*(?:\x07|\x1b\\)?|[ -/]*[0-~])|\x9b[0-?]*[ -/]*[@-~]|[\x90\x98\x9d\x9e\x9f][^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?/g;
/** Other C0 and C1 controls (not tab or newline), and DEL. */
const CONTROLS = /[\x00-\x08\x0b-\x1f\x7f-\x9f]/g;
/* eslint-enable no-control-regex */

export function forTerminal(text: string): string {
  return text.replace(ESCAPES, '').replace(CONTROLS, '');
}

/** Start of line, line cleared: a reply printed while the person types does not mix with their line. */
export const FRESH_LINE = '\r\x1b[2K';
