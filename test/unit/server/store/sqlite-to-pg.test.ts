import { describe, expect, it } from 'vitest';
import { copyOrder, copyPlan } from '../../../../src/server/store/sqlite-to-pg.js';
import { migrateCommand, sqliteSource } from '../../../../src/cli/migrate-command.js';
import { MIGRATIONS } from '../../../../src/server/store/migrations.js';
import Database from 'better-sqlite3';
import path from 'node:path';
import { tempDir } from '../helpers.js';

describe('what migrate copies from SQLite into PostgreSQL', () => {
  const pgSide = [
    { name: 'pilots', columns: ['id', 'hostname', 'state'] },
    { name: 'payloads', columns: ['id', 'name', 'pilot_id', 'cpu_sec'] },
  ];

  it('copies every table with its columns, and leaves out only the counters SQLite keeps by trigger', () => {
    const plan = copyPlan(
      [
        { name: 'payload_counts', columns: ['state', 'grp', 'n'] },
        { name: 'payloads', columns: ['id', 'name', 'pilot_id'] },
        { name: 'pilots', columns: ['id', 'hostname', 'state'] },
        { name: 'sqlite_sequence', columns: ['name', 'seq'] },
      ],
      pgSide,
    );
    expect(plan).toEqual({ tables: [{ name: 'payloads', columns: ['id', 'name', 'pilot_id'] }, { name: 'pilots', columns: ['id', 'hostname', 'state'] }], derived: ['payload_counts', 'sqlite_sequence'] });
  });

  it('stops before copying anything when the target lacks a table or a column the file has: nothing is left behind silently', () => {
    expect(() => copyPlan([{ name: 'tokens', columns: ['id'] }], pgSide)).toThrow(/the PostgreSQL database has no table tokens, which the SQLite file has: nothing was copied/);
    expect(() => copyPlan([{ name: 'pilots', columns: ['id', 'hostname', 'labels'] }], pgSide)).toThrow(/the PostgreSQL table pilots has no column labels/);
  });

  it('copies a table after the tables it references', () => {
    const t = (name: string) => ({ name, columns: ['id'] });
    const order = copyOrder([t('instance_history'), t('payload_states'), t('instances'), t('payloads'), t('pilots')], [
      { child: 'payload_states', parent: 'payloads' },
      { child: 'payloads', parent: 'pilots' },
      { child: 'instance_history', parent: 'instances' },
    ]);
    expect(order.map((x) => x.name)).toEqual(['instances', 'pilots', 'instance_history', 'payloads', 'payload_states']);
  });

  it('refuses what is not a SQLite file or not a PostgreSQL URL, and a file at another schema version, naming what to do', async () => {
    expect(sqliteSource('sqlite:/var/lib/vmpilot/server.db')).toBe('/var/lib/vmpilot/server.db');
    expect(() => sqliteSource('postgres://db/x')).toThrow(/--from "postgres:\/\/db\/x" is not a SQLite file: give sqlite:/);
    await expect(migrateCommand({ from: 'sqlite:/x.db', to: 'mysql://db/x' })).rejects.toMatchObject({ code: 'VMP_USAGE', message: expect.stringMatching(/--to "mysql:\/\/db\/x" is not a PostgreSQL URL/) });
    const tmp = tempDir();
    try {
      const file = path.join(tmp.dir, 'old.db');
      const db = new Database(file);
      db.pragma(`user_version = ${MIGRATIONS[MIGRATIONS.length - 2]!.version}`);
      db.close();
      // refused before PostgreSQL is asked anything (this URL would not answer)
      await expect(migrateCommand({ from: `sqlite:${file}`, to: 'postgres://nobody@127.0.0.1:1/none' })).rejects.toMatchObject({
        code: 'VMP_DATABASE',
        message: expect.stringMatching(/is at schema version \d+, this vmpilot at \d+: start this version of vmpilot-server serve on it once/),
      });
      await expect(migrateCommand({ from: `sqlite:${path.join(tmp.dir, 'none.db')}`, to: 'postgres://nobody@127.0.0.1:1/none' })).rejects.toMatchObject({
        code: 'VMP_DATABASE',
        message: expect.stringMatching(/cannot open the SQLite file .*none\.db/),
      });
    } finally {
      tmp.remove();
    }
  });
});
