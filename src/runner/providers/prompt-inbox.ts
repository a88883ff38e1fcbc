/**
 * The input side of a query for providers that take one prompt at a time: follow-ups are
 * queued in order, end() lets the queue drain, abort() stops at once. next() resolves with the
 * next prompt, or null when the query is over.
 */
export class PromptInbox {
  private prompts: string[];
  private ended = false;
  private wake: (() => void) | null = null;
  readonly abort = new AbortController();

  constructor(first: string) {
    this.prompts = [first];
  }

  push(text: string): void {
    this.prompts.push(text);
    this.poke();
  }

  end(): void {
    this.ended = true;
    this.poke();
  }

  stop(): void {
    this.ended = true;
    this.abort.abort();
    this.poke();
  }

  get aborted(): boolean {
    return this.abort.signal.aborted;
  }

  async next(): Promise<string | null> {
    for (;;) {
      if (this.aborted) return null;
      const p = this.prompts.shift();
      if (p !== undefined) return p;
      if (this.ended) return null;
      await new Promise<void>((r) => (this.wake = r));
    }
  }

  private poke(): void {
    const w = this.wake;
    this.wake = null;
    w?.();
  }
}
