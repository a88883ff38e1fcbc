/**
 * Newline-delimited streams (the admin socket, the runner's stdin, the tool server's stdio, a
 * sandbox's stderr): chunks in, whole lines out, in order. Blank lines are skipped and a
 * trailing '\r' is dropped. A line still unterminated past `limit.maxChars` goes, as far as it
 * came, to `limit.onOverflow`, and the rest of that line is discarded up to its newline, so a
 * peer cannot grow the buffer without bound nor have the tail of a cut line taken for a line.
 * Feeding a final '\n' flushes an unterminated last line.
 */
export function lineSplitter(
  onLine: (line: string) => void,
  limit?: { maxChars: number; onOverflow: (head: string) => void },
): (chunk: Buffer | string) => void {
  let buf = '';
  let skipping = false;
  return (chunk) => {
    let text = String(chunk);
    if (skipping) {
      const nl = text.indexOf('\n');
      if (nl < 0) return;
      text = text.slice(nl + 1);
      skipping = false;
    }
    buf += text;
    for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
      const line = buf.slice(0, nl).replace(/\r$/, '');
      buf = buf.slice(nl + 1);
      if (line.trim()) onLine(line);
    }
    if (limit && buf.length > limit.maxChars) {
      const head = buf;
      buf = '';
      skipping = true;
      limit.onOverflow(head);
    }
  };
}
