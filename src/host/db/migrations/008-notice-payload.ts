/**
 * A host notice ("your message failed") is kept with what it says, where it goes and which
 * message it is about, so a notice whose send failed, or was cut off by a crash, is sent
 * again later instead of being lost: the user hears of every failure.
 */
export const name = '008-notice-payload';
export const sql = `
ALTER TABLE deliveries ADD COLUMN notice TEXT;
CREATE INDEX deliveries_open_notices ON deliveries(session_id)
  WHERE notice IS NOT NULL AND status IN ('sending', 'retry');
`;
