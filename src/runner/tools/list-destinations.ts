/** list_destinations: the names the agent may address besides the current chat. */
import { registerTool } from './registry.js';
import { defineTool } from './tool.js';

registerTool(
  defineTool({
    name: 'list_destinations',
    description:
      'List where you can send messages: "origin" (the chat you are answering) and the other chats and agents you may address with `to`.',
    input: {},
    run(_args, ctx) {
      const lines = ['origin — the chat you are answering now'];
      for (const d of ctx.destinations())
        lines.push(`${d.name} — ${d.kind === 'agent' ? 'agent group' : `${d.routing.channelType} chat`}`);
      return lines.join('\n');
    },
  }),
);
