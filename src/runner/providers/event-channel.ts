/**
 * A single-consumer async channel: producers push values from callbacks (notification
 * handlers, timers), one `for await` consumes them in order. close() ends the iteration after
 * the buffered values; fail() ends it with a throw after them.
 */
export class EventChannel<T> implements AsyncIterable<T> {
  private readonly buf: T[] = [];
  private wake: (() => void) | null = null;
  private done = false;
  private error: unknown = null;

  push(v: T): void {
    if (this.done) return;
    this.buf.push(v);
    this.poke();
  }

  close(): void {
    this.done = true;
    this.poke();
  }

  fail(err: unknown): void {
    if (this.done) return;
    this.error = err ?? new Error('channel failed');
    this.close();
  }

  private poke(): void {
    const w = this.wake;
    this.wake = null;
    w?.();
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<T> {
    for (;;) {
      while (this.buf.length) yield this.buf.shift()!;
      if (this.done) {
        if (this.error) throw this.error;
        return;
      }
      await new Promise<void>((r) => (this.wake = r));
    }
  }
}
