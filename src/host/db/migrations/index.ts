/** Ordered list of migrations. Append only: a shipped migration is never edited. */
import * as m001 from './001-initial.js';
import * as m002 from './002-delivery.js';
import * as m003 from './003-tasks.js';
import * as m004 from './004-questions.js';
import * as m005 from './005-vault.js';
import * as m006 from './006-approval.js';
import * as m007 from './007-task-ids-per-group.js';
import * as m008 from './008-notice-payload.js';
import * as m009 from './009-answer-message.js';
import * as m010 from './010-question-shown.js';
import * as m011 from './011-first-run.js';

export interface Migration {
  name: string;
  sql: string;
}

export const migrations: Migration[] = [m001, m002, m003, m004, m005, m006, m007, m008, m009, m010, m011];
