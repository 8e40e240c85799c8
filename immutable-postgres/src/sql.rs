//! Every statement the store sends, written once for its schema. Each one reads or writes
//! through a key or an index with a limit (but `list` and `services`' listing of all, for
//! tools), so a deployment's statements cost the same whatever the history behind it.

/// The statements of one schema.
#[derive(Debug)]
pub(crate) struct Sql {
    pub(crate) insert_record: String,
    pub(crate) update_record: String,
    pub(crate) record_state: String,
    pub(crate) load: String,
    pub(crate) list_all: String,
    pub(crate) list_service: String,
    pub(crate) unfinished_all: String,
    pub(crate) unfinished_service: String,
    pub(crate) latest: String,
    pub(crate) history_first: String,
    pub(crate) history_before: String,
    pub(crate) services_first: String,
    pub(crate) services_after: String,
    pub(crate) trim: String,
    pub(crate) import: String,
    pub(crate) recount: String,
    pub(crate) acquire_lease: String,
    pub(crate) renew_lease: String,
    pub(crate) release_lease: String,
    pub(crate) read_lease: String,
    pub(crate) add_command: String,
    pub(crate) command_state: String,
    pub(crate) commands: String,
    pub(crate) set_halt: String,
    pub(crate) lift_halt: String,
    pub(crate) halts_of: String,
    pub(crate) halts_all: String,
    pub(crate) insert_wave: String,
    pub(crate) update_wave: String,
    pub(crate) wave_state: String,
    pub(crate) load_wave: String,
    pub(crate) unfinished_waves: String,
}

impl Sql {
    /// The statements for the schema `s` (quoted).
    pub(crate) fn new(s: &str) -> Sql {
        let d = format!("{s}.deployments");
        Sql {
            // The record and its service's count in one statement, so neither is written
            // without the other.
            insert_record: format!(
                "WITH ins AS (
                     INSERT INTO {d} (id, service, version, finished, body)
                     VALUES ($1, $2, $3, $4, $5)
                     ON CONFLICT (id) DO NOTHING
                     RETURNING service
                 ), counted AS (
                     INSERT INTO {s}.services AS c (name, records)
                     SELECT service, 1 FROM ins
                     ON CONFLICT (name) DO UPDATE SET records = c.records + 1
                 )
                 SELECT count(*) FROM ins"
            ),
            update_record: format!(
                "UPDATE {d} SET version = $3, finished = $4, body = $5
                 WHERE id = $1 AND version = $2"
            ),
            record_state: format!("SELECT version, body = $2 FROM {d} WHERE id = $1"),
            load: format!("SELECT body FROM {d} WHERE id = $1"),
            list_all: format!("SELECT body FROM {d} ORDER BY id"),
            list_service: format!("SELECT body FROM {d} WHERE service = $1 ORDER BY id"),
            unfinished_all: format!("SELECT body FROM {d} WHERE NOT finished ORDER BY id"),
            unfinished_service: format!(
                "SELECT body FROM {d} WHERE service = $1 AND NOT finished ORDER BY id"
            ),
            latest: format!("SELECT body FROM {d} WHERE service = $1 ORDER BY id DESC LIMIT 1"),
            history_first: format!(
                "SELECT body FROM {d} WHERE service = $1 ORDER BY id DESC LIMIT $2"
            ),
            history_before: format!(
                "SELECT body FROM {d} WHERE service = $1 AND id < $2 ORDER BY id DESC LIMIT $3"
            ),
            services_first: format!(
                "SELECT name FROM {s}.services WHERE records > 0 ORDER BY name LIMIT $1"
            ),
            services_after: format!(
                "SELECT name FROM {s}.services WHERE records > 0 AND name > $1
                 ORDER BY name LIMIT $2"
            ),
            // The service's oldest `$3` records (its count above what is kept, at most a
            // batch), of which the finished ones older than the success `$2` go, with their
            // commands, and the count follows.
            trim: format!(
                "WITH doomed AS (
                     SELECT id FROM {d} WHERE service = $1 ORDER BY id LIMIT $3
                 ), gone AS (
                     DELETE FROM {d} r USING doomed
                     WHERE r.id = doomed.id AND r.finished AND r.id < $2
                     RETURNING r.id
                 ), commands AS (
                     DELETE FROM {s}.commands c USING gone WHERE c.deployment = gone.id
                 ), counted AS (
                     UPDATE {s}.services SET records = records - (SELECT count(*) FROM gone)
                     WHERE name = $1
                 )
                 SELECT count(*) FROM gone"
            ),
            import: format!(
                "WITH rows AS (
                     SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bool[],
                                          $5::jsonb[]) AS t(id, service, version, finished, body)
                 ), ins AS (
                     INSERT INTO {d} (id, service, version, finished, body)
                     SELECT * FROM rows
                     ON CONFLICT (id) DO UPDATE SET version = EXCLUDED.version,
                         finished = EXCLUDED.finished, body = EXCLUDED.body
                     RETURNING service
                 )
                 SELECT count(*) FROM ins"
            ),
            recount: format!(
                "INSERT INTO {s}.services (name, records)
                 SELECT $1, count(*) FROM {d} WHERE service = $1
                 ON CONFLICT (name) DO UPDATE SET records = EXCLUDED.records"
            ),
            // Taken when free, expired at the caller's `now`, or already the taker's; the
            // lease it replaces (another holder's) is kept beside it, read from the row
            // locked by the update, so a takeover names exactly the lease it took.
            acquire_lease: format!(
                "INSERT INTO {s}.leases AS l (service, deployment, holder, expires_at)
                 VALUES ($1, $2, $3, $4)
                 ON CONFLICT (service) DO UPDATE SET
                     deployment = EXCLUDED.deployment,
                     holder = EXCLUDED.holder,
                     expires_at = EXCLUDED.expires_at,
                     replaced_deployment = CASE WHEN l.holder = EXCLUDED.holder
                         THEN NULL ELSE l.deployment END,
                     replaced_holder = CASE WHEN l.holder = EXCLUDED.holder
                         THEN NULL ELSE l.holder END,
                     replaced_expires_at = CASE WHEN l.holder = EXCLUDED.holder
                         THEN NULL ELSE l.expires_at END
                 WHERE l.holder = EXCLUDED.holder OR l.expires_at <= $5
                 RETURNING replaced_deployment, replaced_holder, replaced_expires_at"
            ),
            renew_lease: format!(
                "UPDATE {s}.leases SET expires_at = $3 WHERE service = $1 AND holder = $2
                 RETURNING deployment"
            ),
            release_lease: format!("DELETE FROM {s}.leases WHERE service = $1 AND holder = $2"),
            read_lease: format!(
                "SELECT deployment, holder, expires_at FROM {s}.leases WHERE service = $1"
            ),
            add_command: format!(
                "INSERT INTO {s}.commands (deployment, id, body) VALUES ($1, $2, $3)
                 ON CONFLICT (deployment, id) DO NOTHING"
            ),
            command_state: format!(
                "SELECT body = $3 FROM {s}.commands WHERE deployment = $1 AND id = $2"
            ),
            commands: format!("SELECT body FROM {s}.commands WHERE deployment = $1 ORDER BY id"),
            set_halt: format!(
                "INSERT INTO {s}.halts (scope, body) VALUES ($1, $2)
                 ON CONFLICT (scope) DO UPDATE SET body = EXCLUDED.body"
            ),
            lift_halt: format!("DELETE FROM {s}.halts WHERE scope = $1 RETURNING body"),
            halts_of: format!(
                "SELECT body FROM {s}.halts WHERE scope = 'all' OR scope = $1 ORDER BY scope"
            ),
            halts_all: format!("SELECT body FROM {s}.halts ORDER BY scope"),
            insert_wave: format!(
                "INSERT INTO {s}.waves (id, version, finished, body) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (id) DO NOTHING"
            ),
            update_wave: format!(
                "UPDATE {s}.waves SET version = $3, finished = $4, body = $5
                 WHERE id = $1 AND version = $2"
            ),
            wave_state: format!("SELECT version, body = $2 FROM {s}.waves WHERE id = $1"),
            load_wave: format!("SELECT body FROM {s}.waves WHERE id = $1"),
            unfinished_waves: format!("SELECT body FROM {s}.waves WHERE NOT finished ORDER BY id"),
        }
    }
}
