/** Ordered list of migrations. Append only: a shipped migration is never edited. */
import * as m001 from './001-initial.js';
import * as m002 from './002-delivery.js';

export interface Migration {
  name: string;
  sql: string;
}

export const migrations: Migration[] = [m001, m002];
