/** The `check` of providers that run an installed agent binary (see HostProvider.check). */
import fs from 'node:fs';
import { binaryVersion, installFix, type AgentBinary } from '../shared/agent-binaries.js';
import type { ProviderCheck } from './contribution.js';

export async function binaryCheck(find: () => string | null, agent: AgentBinary): Promise<ProviderCheck> {
  const fix = installFix(agent);
  const bin = find();
  if (!bin || !fs.existsSync(bin)) return { ok: false, detail: 'its binary is not installed', fix };
  const v = await binaryVersion(bin);
  return v.ok ? { ok: true, detail: v.version } : { ok: false, detail: v.reason, fix };
}
