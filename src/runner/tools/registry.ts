/** Tools register here through src/runner/tools/index.ts (one import line each). */
import { Registry } from '../../shared/registry.js';
import type { ToolDefinition } from './tool.js';

export const toolRegistry = new Registry<ToolDefinition>('tool');
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export const registerTool = (def: ToolDefinition<any>) =>
  toolRegistry.register(def.name, def as ToolDefinition);
