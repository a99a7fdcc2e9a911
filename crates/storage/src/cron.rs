//! The cron guard: one row per (schedule, tick), inserted by whichever node fires that tick.

use chrono::{DateTime, Utc};

use crate::backend::on_writer;
use crate::error::Result;
use crate::store::Store;

impl Store {
    /// Claims `tick` of `schedule` for `worker`. `true` for exactly one caller per (schedule, tick), however
    /// many nodes try at once; the database's primary key decides.
    pub async fn claim_cron_tick(
        &self,
        schedule: &str,
        tick: DateTime<Utc>,
        worker: &str,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let sql =
            "INSERT INTO cron_ticks (schedule, tick, fired_by, fired_at) VALUES ($1, $2, $3, $4) \
                   ON CONFLICT DO NOTHING";
        let inserted = on_writer!(&self.backend, c => sqlx::query(sql)
            .bind(schedule).bind(tick).bind(worker).bind(now)
            .execute(c).await.map(|r| r.rows_affected()))?;
        Ok(inserted == 1)
    }

    /// The latest tick of `schedule` any node has fired.
    pub async fn last_cron_tick(&self, schedule: &str) -> Result<Option<DateTime<Utc>>> {
        let sql = "SELECT tick FROM cron_ticks WHERE schedule = $1 ORDER BY tick DESC LIMIT 1";
        Ok(
            on_writer!(&self.backend, c => sqlx::query_scalar(sql).bind(schedule).fetch_optional(c).await)?,
        )
    }

    /// Every fired tick of `schedule`, oldest first, with the worker that fired it.
    pub async fn cron_ticks(&self, schedule: &str) -> Result<Vec<(DateTime<Utc>, String)>> {
        let sql = "SELECT tick, fired_by FROM cron_ticks WHERE schedule = $1 ORDER BY tick";
        Ok(on_writer!(&self.backend, c => sqlx::query_as(sql).bind(schedule).fetch_all(c).await)?)
    }

    /// How many ticks of `schedule` have fired (tests and the dashboard).
    pub async fn cron_ticks_fired(&self, schedule: &str) -> Result<i64> {
        let sql = "SELECT COUNT(*) FROM cron_ticks WHERE schedule = $1";
        Ok(
            on_writer!(&self.backend, c => sqlx::query_scalar(sql).bind(schedule).fetch_one(c).await)?,
        )
    }

    /// Deletes ticks fired before `before`, keeping each schedule's latest (the guard against re-firing it).
    pub async fn prune_cron_ticks(&self, before: DateTime<Utc>) -> Result<u64> {
        let sql = "DELETE FROM cron_ticks WHERE fired_at < $1 \
                   AND tick < (SELECT MAX(t.tick) FROM cron_ticks t WHERE t.schedule = cron_ticks.schedule)";
        Ok(
            on_writer!(&self.backend, c => sqlx::query(sql).bind(before).execute(c).await.map(|r| r.rows_affected()))?,
        )
    }
}
