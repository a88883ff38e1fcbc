/**
 * Answers server→client requests from codex app-server (approvals, user input, elicitation,
 * dynamic tool calls) according to the group's approval policy. The Polyclaw sandbox is the
 * security boundary, so the default is to accept. Invariant: every request gets an answer —
 * a known method gets a decision, an unknown one is refused with an error (the transport
 * turns a throw into an error reply), so codex is never left waiting on us.
 */
export type ApprovalMode = 'auto' | 'deny';

export class UnsupportedRequestError extends Error {
  constructor(method: string) {
    super(`Polyclaw does not handle the codex request "${method}"`);
    this.name = 'UnsupportedRequestError';
  }
}

export function answerServerRequest(method: string, params: unknown, mode: ApprovalMode): unknown {
  const ok = mode === 'auto';
  switch (method) {
    case 'item/commandExecution/requestApproval':
    case 'item/fileChange/requestApproval':
      return { decision: ok ? 'accept' : 'decline' };
    case 'execCommandApproval':
    case 'applyPatchApproval':
      return { decision: ok ? 'approved' : 'denied' };
    case 'item/permissions/requestApproval': {
      const asked = (params as { permissions?: unknown } | null)?.permissions ?? {};
      return { permissions: ok ? asked : {}, scope: 'turn' };
    }
    case 'item/tool/requestUserInput':
      // No person is on the other end of a codex turn; answer every question empty.
      return { answers: {} };
    case 'mcpServer/elicitation/request':
      return { action: ok ? 'accept' : 'decline', content: ok ? {} : null, _meta: null };
    case 'item/tool/call':
      return {
        success: false,
        contentItems: [{ type: 'inputText', text: 'Polyclaw registers no dynamic tools.' }],
      };
    default:
      throw new UnsupportedRequestError(method);
  }
}
