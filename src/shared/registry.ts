/**
 * A named registry for pluggable implementations (providers, channels, sandbox runtimes).
 * Registering a name twice throws (two modules claiming one name is a bug); asking for an
 * unknown name throws an error that lists the known ones.
 */
import { PolyclawError } from './errors.js';

export class Registry<T> {
  private items = new Map<string, T>();
  constructor(private readonly kind: string) {}

  register(name: string, item: T): void {
    if (this.items.has(name))
      throw new PolyclawError('conflict', `${this.kind} "${name}" is already registered`);
    this.items.set(name, item);
  }

  get(name: string): T {
    const item = this.items.get(name);
    if (item === undefined) {
      throw new PolyclawError(
        'not_found',
        `unknown ${this.kind} "${name}" (known: ${this.names().join(', ') || 'none'})`,
      );
    }
    return item;
  }

  has(name: string): boolean {
    return this.items.has(name);
  }

  names(): string[] {
    return [...this.items.keys()].sort();
  }
}
