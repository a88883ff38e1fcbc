/**
 * The rows of a session directory as the host reads them. inbound.db is the host's own file;
 * outbound.db is written inside the sandbox, so its rows are untrusted: a row that does not
 * parse is returned marked invalid (delivery skips it), never thrown on.
 */
import { safeJson } from '../shared/safe-json.js';
import {
  AckErrorSchema,
  AckStatus,
  InboundContentSchema,
  OutboundContentSchema,
  OutboundKind,
  RoutingSchema,
  type AckError,
  type InboundContent,
  type InboundKind,
  type OutboundContent,
  type Routing,
} from '../shared/messages.js';

export interface InboundRow {
  id: string;
  seq: number;
  kind: InboundKind;
  timestamp: number;
  status: 'pending' | 'completed' | 'failed';
  processAfter: number;
  tries: number;
  trigger: boolean;
  routing: Routing;
  content: InboundContent;
}

export interface OutboundRow {
  id: string;
  seq: number;
  inReplyTo: string | null;
  kind: OutboundKind;
  routing: Routing;
  content: OutboundContent;
  /** Set when the sandbox wrote a row that does not parse: it is skipped, never delivered. */
  invalid?: string;
}

export interface AckRow {
  messageId: string;
  tryNo: number;
  status: AckStatus;
  error: AckError | null;
}

export interface RawIn {
  id: string;
  seq: number;
  kind: string;
  timestamp: number;
  status: string;
  process_after: number;
  tries: number;
  trigger: number;
  routing: string;
  content: string;
}
export interface RawOut {
  id: string;
  seq: number;
  in_reply_to: string | null;
  kind: string;
  routing: string;
  content: string;
}
export interface RawAck {
  message_id: string;
  try: number;
  status: string;
  error: string | null;
}

export function inRow(r: RawIn): InboundRow {
  return {
    id: r.id,
    seq: r.seq,
    kind: r.kind as InboundRow['kind'],
    timestamp: r.timestamp,
    status: r.status as InboundRow['status'],
    processAfter: r.process_after,
    tries: r.tries,
    trigger: r.trigger === 1,
    routing: RoutingSchema.parse(JSON.parse(r.routing)),
    content: InboundContentSchema.parse(JSON.parse(r.content)),
  };
}

/** Rows written by the sandbox are untrusted: anything that does not parse is marked invalid. */
export function outRow(r: RawOut): OutboundRow {
  const kind = OutboundKind.safeParse(r.kind);
  const routing = RoutingSchema.safeParse(safeJson(r.routing));
  const content = OutboundContentSchema.safeParse(safeJson(r.content));
  if (!kind.success || !routing.success || !content.success) {
    return {
      id: r.id,
      seq: r.seq,
      inReplyTo: r.in_reply_to,
      kind: 'system',
      routing: { channelType: '', platformId: '', threadId: null },
      content: { text: '', files: [] },
      invalid: 'unparsable kind, routing or content',
    };
  }
  return {
    id: r.id,
    seq: r.seq,
    inReplyTo: r.in_reply_to,
    kind: kind.data,
    routing: routing.data,
    content: content.data,
  };
}

/** An ack whose status does not parse is dropped; an unparsable error reads as none. */
export function ackRow(r: RawAck): AckRow[] {
  const status = AckStatus.safeParse(r.status);
  if (!status.success) return [];
  const err = r.error ? AckErrorSchema.safeParse(safeJson(r.error)) : null;
  return [
    { messageId: r.message_id, tryNo: r.try, status: status.data, error: err?.success ? err.data : null },
  ];
}
