//! An exclusive, expiring lease on an output location, so that two runs (the nightly job and an
//! analyst's backfill) never interleave their commits.
//!
//! The lease lives in `<output>/_lease/` as numbered epochs. Taking it creates the next epoch's
//! file `<epoch>.json` with a conditional put (create only if absent, the same store capability
//! a Delta commit relies on), holding the run id, host, pid, start time, window and the lease's
//! time to live: of two runs racing for one epoch, exactly one creates it. The holder renews
//! it by writing `<epoch>.renewed` every fifth of its time to live, and releases it by writing
//! `<epoch>.released`. A lease neither renewed within its time to live nor released has
//! expired (its holder was killed): the next run takes the following epoch. Before each commit
//! the holder checks that no later epoch exists and that its renewals kept up, so a run that
//! lost its lease (paused longer than the time to live) stops before writing anything more.
//! Expiry compares the holder's recorded times with the waiting machine's clock: clocks must
//! agree to well within the time to live.

use std::sync::{Arc, Mutex};
use std::time::{Duration as StdDuration, Instant};

use chrono::{DateTime, Duration, Utc};
use deltalake::DeltaTableBuilder;
use deltalake::logstore::object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};
use futures::TryStreamExt;
use serde::{Deserialize, Serialize};

use crate::config::JobConfig;
use crate::error::{Error, Result};
use crate::storage::describe_store_call;

/// The folder under the output location holding the lease.
pub const LEASE_FOLDER: &str = "_lease";

/// Who holds a lease: written into the epoch file, shown to a run that finds it taken.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseHolder {
    /// The run's id.
    pub run_id: String,
    /// The host it runs on.
    pub host: String,
    /// Its process id.
    pub pid: u32,
    /// When it took the lease.
    pub started_at: DateTime<Utc>,
    /// The window it computes.
    pub window: String,
    /// How long the lease lasts without renewal, in seconds.
    pub ttl_seconds: u64,
}

impl LeaseHolder {
    /// The holder description of this process, for `run_id` computing `window`.
    pub fn this_process(run_id: &str, window: &str, ttl_seconds: u64) -> Self {
        LeaseHolder {
            run_id: run_id.to_string(),
            host: crate::plan::host_name(),
            pid: std::process::id(),
            started_at: Utc::now(),
            window: window.to_string(),
            ttl_seconds,
        }
    }
}

impl std::fmt::Display for LeaseHolder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "run {} on {} (pid {}), computing {}, since {}",
            self.run_id,
            self.host,
            self.pid,
            self.window,
            self.started_at.format("%Y-%m-%d %H:%M:%S UTC")
        )
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct Renewal {
    renewed_at: DateTime<Utc>,
}

/// The newest epoch found in the lease folder.
#[derive(Debug)]
struct Epoch {
    number: u64,
    holder: Option<LeaseHolder>,
    renewed_at: Option<DateTime<Utc>>,
    released: bool,
}

impl Epoch {
    /// When the lease lapses without another renewal; `None` when released.
    fn expires_at(&self) -> Option<DateTime<Utc>> {
        if self.released {
            return None;
        }
        let holder = self.holder.as_ref()?;
        let last = self.renewed_at.map_or(holder.started_at, |r| r.max(holder.started_at));
        Some(last + Duration::seconds(i64::try_from(holder.ttl_seconds).unwrap_or(i64::MAX / 1000)))
    }
}

fn epoch_path(number: u64, suffix: &str) -> deltalake::Path {
    deltalake::Path::from(format!("{LEASE_FOLDER}/{number:020}.{suffix}"))
}

/// A held lease; renewed in the background until [`Lease::release`].
#[derive(Debug)]
pub struct Lease {
    store: Arc<dyn ObjectStore>,
    options: std::collections::HashMap<String, String>,
    location: String,
    epoch: u64,
    ttl: StdDuration,
    last_renewal: Arc<Mutex<Instant>>,
    renewer: tokio::task::JoinHandle<()>,
}

impl Lease {
    /// Takes the lease on the job's output location for `holder`, waiting up to `wait` while
    /// another run holds it. A lease still held after the wait is [`Error::LeaseHeld`] (exit
    /// code 4), naming the holder and when its lease expires.
    pub async fn acquire(job: &JobConfig, holder: LeaseHolder, wait: StdDuration) -> Result<Lease> {
        let location = job.output.child(LEASE_FOLDER).to_string();
        let failed = |message: String| Error::Lease { location: location.clone(), message };
        let store = DeltaTableBuilder::from_url(job.output.url().clone())
            .and_then(|b| b.with_storage_options(job.storage_options.clone()).build_storage())
            .map_err(|e| failed(crate::storage::describe_delta_error(&e)))?
            .object_store(None);
        let ttl = StdDuration::from_secs(holder.ttl_seconds);
        let give_up = Instant::now() + wait;
        let body = serde_json::to_vec_pretty(&holder).map_err(|e| failed(e.to_string()))?;
        loop {
            let newest = newest_epoch(store.as_ref(), &job.storage_options).await.map_err(&failed)?;
            let next = match &newest {
                None => 1,
                Some(epoch) => match epoch.expires_at() {
                    Some(expires) if expires > Utc::now() => {
                        if Instant::now() >= give_up {
                            let holder = epoch.holder.as_ref().map_or("an unknown run".into(), ToString::to_string);
                            return Err(Error::LeaseHeld {
                                location,
                                holder,
                                expires_at: expires.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
                            });
                        }
                        let pause = give_up.saturating_duration_since(Instant::now()).min(StdDuration::from_secs(2));
                        tokio::time::sleep(pause.max(StdDuration::from_millis(50))).await;
                        continue;
                    }
                    _ => {
                        if let Some(previous) = epoch.holder.as_ref().filter(|_| !epoch.released) {
                            tracing::warn!("taking over the expired lease of {previous}");
                        }
                        epoch.number + 1
                    }
                },
            };
            let create = PutOptions { mode: PutMode::Create, ..Default::default() };
            match store.put_opts(&epoch_path(next, "json"), PutPayload::from(body.clone()), create).await {
                Ok(_) => {
                    tracing::info!(epoch = next, "took the lease on {location}");
                    remove_old_epochs(store.as_ref(), next).await;
                    let last_renewal = Arc::new(Mutex::new(Instant::now()));
                    let renewer = tokio::spawn(renew(store.clone(), next, ttl, last_renewal.clone()));
                    let options = job.storage_options.clone();
                    return Ok(Lease { store, options, location, epoch: next, ttl, last_renewal, renewer });
                }
                // Another run created this epoch first: look again.
                Err(deltalake::ObjectStoreError::AlreadyExists { .. }) => continue,
                Err(deltalake::ObjectStoreError::NotImplemented { .. }) => {
                    return Err(failed(
                        "the object store does not support conditional writes (create if absent), which the lease \
                         and Delta commits need; for S3-compatible stores set storage_options.aws_conditional_put \
                         = \"etag\""
                            .into(),
                    ));
                }
                Err(e) => return Err(failed(describe_store_call(&e, &job.storage_options))),
            }
        }
    }

    /// Fails unless this run still holds the lease: no later epoch exists and the renewals
    /// kept up. Called before every commit, so a run that lost its lease writes nothing more.
    pub async fn ensure_held(&self) -> Result<()> {
        let lost = |message: String| Error::LeaseLost { location: self.location.clone(), message };
        let since_renewal = self.last_renewal.lock().map(|at| at.elapsed()).unwrap_or(StdDuration::MAX);
        if since_renewal >= self.ttl {
            return Err(lost(format!(
                "it was last renewed {}s ago, more than its time to live ({}s): another run may have taken it",
                since_renewal.as_secs(),
                self.ttl.as_secs()
            )));
        }
        match self.store.head(&epoch_path(self.epoch + 1, "json")).await {
            Ok(_) => Err(lost("another run took it over after it expired".into())),
            Err(deltalake::ObjectStoreError::NotFound { .. }) => Ok(()),
            Err(e) => Err(lost(describe_store_call(&e, &self.options))),
        }
    }

    /// Stops renewing and marks the lease released, so the next run need not wait for it to
    /// expire.
    pub async fn release(self) -> Result<()> {
        self.renewer.abort();
        let marker = PutPayload::from(serde_json::to_vec(&Renewal { renewed_at: Utc::now() }).unwrap_or_default());
        self.store.put(&epoch_path(self.epoch, "released"), marker).await.map(|_| ()).map_err(|e| Error::Lease {
            location: self.location.clone(),
            message: describe_store_call(&e, &self.options),
        })
    }
}

impl Drop for Lease {
    /// A lease dropped without [`Lease::release`] (a run stopped by its deadline) stops being
    /// renewed and expires after its time to live.
    fn drop(&mut self) {
        self.renewer.abort();
    }
}

/// Writes the renewal marker every fifth of the time to live; records each success.
async fn renew(store: Arc<dyn ObjectStore>, epoch: u64, ttl: StdDuration, last: Arc<Mutex<Instant>>) {
    let every = (ttl / 5).max(StdDuration::from_secs(1));
    loop {
        tokio::time::sleep(every).await;
        let body = serde_json::to_vec(&Renewal { renewed_at: Utc::now() }).unwrap_or_default();
        match store.put(&epoch_path(epoch, "renewed"), PutPayload::from(body)).await {
            Ok(_) => {
                if let Ok(mut at) = last.lock() {
                    *at = Instant::now();
                }
            }
            Err(e) => {
                tracing::warn!("could not renew the lease: {}", crate::storage::describe_store_error(&e.to_string()))
            }
        }
    }
}

/// The newest epoch in the lease folder, with its holder, last renewal and release.
async fn newest_epoch(
    store: &dyn ObjectStore,
    options: &std::collections::HashMap<String, String>,
) -> std::result::Result<Option<Epoch>, String> {
    let described = |e: deltalake::ObjectStoreError| describe_store_call(&e, options);
    let listed: Vec<deltalake::ObjectMeta> =
        store.list(Some(&deltalake::Path::from(LEASE_FOLDER))).try_collect().await.map_err(described)?;
    let number = |meta: &deltalake::ObjectMeta, suffix: &str| -> Option<u64> {
        meta.location.filename()?.strip_suffix(suffix)?.parse().ok()
    };
    let Some(newest) = listed.iter().filter_map(|m| number(m, ".json")).max() else {
        return Ok(None);
    };
    let read = |suffix: &'static str| async move {
        match store.get(&epoch_path(newest, suffix)).await {
            Ok(found) => found.bytes().await.map(Some).map_err(described),
            Err(deltalake::ObjectStoreError::NotFound { .. }) => Ok(None),
            Err(e) => Err(described(e)),
        }
    };
    // An unreadable holder file counts as held by an unknown run until it expires by age.
    let holder = read("json").await?.and_then(|bytes| serde_json::from_slice::<LeaseHolder>(&bytes).ok());
    let holder = holder.or_else(|| {
        let created = listed.iter().find(|m| number(m, ".json") == Some(newest)).map(|m| m.last_modified)?;
        Some(LeaseHolder {
            run_id: "unknown".into(),
            host: "unknown".into(),
            pid: 0,
            started_at: created,
            window: "unknown".into(),
            ttl_seconds: 3600,
        })
    });
    let renewed_at =
        read("renewed").await?.and_then(|bytes| serde_json::from_slice::<Renewal>(&bytes).ok()).map(|r| r.renewed_at);
    let released = listed.iter().any(|m| number(m, ".released") == Some(newest));
    Ok(Some(Epoch { number: newest, holder, renewed_at, released }))
}

/// Deletes the files of epochs before the previous one (best effort: the newest epoch decides).
async fn remove_old_epochs(store: &dyn ObjectStore, current: u64) {
    let Ok(listed) =
        store.list(Some(&deltalake::Path::from(LEASE_FOLDER))).try_collect::<Vec<deltalake::ObjectMeta>>().await
    else {
        return;
    };
    for meta in listed {
        let old = meta
            .location
            .filename()
            .and_then(|name| name.split('.').next())
            .and_then(|n| n.parse::<u64>().ok())
            .is_some_and(|n| n + 1 < current);
        if old {
            let _ = store.delete(&meta.location).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn holder(started_at: DateTime<Utc>) -> LeaseHolder {
        LeaseHolder {
            run_id: "r".into(),
            host: "h".into(),
            pid: 1,
            started_at,
            window: "2026-11-01".into(),
            ttl_seconds: 60,
        }
    }

    #[test]
    fn an_epoch_expires_a_time_to_live_after_its_last_renewal_unless_released() {
        let start = DateTime::from_timestamp(1_000_000, 0).unwrap();
        let mut epoch = Epoch { number: 3, holder: Some(holder(start)), renewed_at: None, released: false };
        assert_eq!(epoch.expires_at(), Some(start + Duration::seconds(60)));
        epoch.renewed_at = Some(start + Duration::seconds(50));
        assert_eq!(epoch.expires_at(), Some(start + Duration::seconds(110)));
        epoch.released = true;
        assert_eq!(epoch.expires_at(), None);
    }

    #[test]
    fn the_holder_is_described_for_people() {
        let shown = holder(DateTime::from_timestamp(0, 0).unwrap()).to_string();
        assert_eq!(shown, "run r on h (pid 1), computing 2026-11-01, since 1970-01-01 00:00:00 UTC");
    }
}
