/**
 * Newline-delimited streams (the admin socket, the runner's stdin, the tool server's stdio):
 * chunks in, whole lines out, in order. Blank lines are skipped and a trailing '\r' is
 * dropped. A line still unterminated past `limit.maxChars` goes to `limit.onOverflow` and is
 * discarded, so a peer cannot grow the buffer without bound.
 */
export function lineSplitter(
  onLine: (line: string) => void,
  limit?: { maxChars: number; onOverflow: () => void },
): (chunk: Buffer | string) => void {
  let buf = '';
  return (chunk) => {
    buf += String(chunk);
    for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
      const line = buf.slice(0, nl).replace(/\r$/, '');
      buf = buf.slice(nl + 1);
      if (line.trim()) onLine(line);
    }
    if (limit && buf.length > limit.maxChars) {
      buf = '';
      limit.onOverflow();
    }
  };
}
