/**
 * The doctor's agent checks: each provider's agent binary (HostProvider.check), and each agent
 * group's provider and endpoint secret. A provider that cannot run fails the doctor only when
 * a group uses it. The central DB is opened read-only (a running host keeps writing it; WAL
 * lets both read) and only secret names are looked up, never a value.
 */
import Database from 'better-sqlite3';
import fs from 'node:fs';
import { secretExists } from '../../gateway/vault.js';
import { listGroups } from '../../host/store/groups.js';
import type { ProviderCheck } from '../../providers/contribution.js';
import { hostProviderRegistry } from '../../providers/index.js';

export interface DoctorCheck {
  name: string;
  ok: boolean;
  detail: string;
  fix?: string;
}

interface GroupInfo {
  name: string;
  provider: string;
  endpoint: string | null;
  endpointMissing: boolean;
}

/** The groups in the central DB, and whether each one's endpoint secret is in the vault. */
function readGroups(dbFile: string): GroupInfo[] {
  if (!fs.existsSync(dbFile)) return [];
  const db = new Database(dbFile, { readonly: true, fileMustExist: true });
  try {
    return listGroups(db).map((g) => ({
      name: g.name,
      provider: g.provider,
      endpoint: g.endpoint,
      endpointMissing: !!g.endpoint && !secretExists(db, g.endpoint),
    }));
  } finally {
    db.close();
  }
}

export async function agentChecks(dbFile: string): Promise<DoctorCheck[]> {
  const groups = readGroups(dbFile);
  const providers = hostProviderRegistry.names();
  const results = new Map<string, ProviderCheck>(
    await Promise.all(
      providers.map(async (name) => {
        const check = hostProviderRegistry.get(name).check;
        return [name, check ? await check() : { ok: true, detail: 'built in' }] as const;
      }),
    ),
  );
  const out: DoctorCheck[] = [];
  for (const name of providers) {
    const r = results.get(name)!;
    const used = groups.filter((g) => g.provider === name).map((g) => g.name);
    out.push({
      name: `provider ${name}`,
      ok: r.ok || used.length === 0,
      detail: r.ok
        ? r.detail
        : `${r.detail}${used.length ? ` (used by ${used.join(', ')})` : ' (no group uses it)'}`,
      fix: r.fix,
    });
  }
  for (const g of groups) {
    const problems: string[] = [];
    const fixes: string[] = [];
    if (!providers.includes(g.provider)) {
      problems.push(`unknown provider "${g.provider}"`);
      fixes.push(`polyclaw groups update ${g.name} --provider ${providers.join('|')}`);
    } else if (!results.get(g.provider)!.ok) problems.push(`provider ${g.provider} cannot run`);
    if (g.endpointMissing) {
      problems.push(`its endpoint secret "${g.endpoint}" is not in the vault`);
      fixes.push(`polyclaw secrets set ${g.endpoint} --kind … --value-stdin`);
    }
    out.push({
      name: `group ${g.name}`,
      ok: problems.length === 0,
      detail: problems.length
        ? problems.join('; ')
        : `${g.provider}${g.endpoint ? `, endpoint ${g.endpoint}` : ''}`,
      ...(fixes.length ? { fix: fixes.join('; ') } : {}),
    });
  }
  return out;
}
