//! A session's folder under the temporary folder (`TMPDIR`): its scratch views
//! ([`super::scratch`]), the computed outputs waiting for the commit ([`super::row_files`]) and
//! DataFusion's spill files (sorts, aggregations, grace buckets), all in one place, removed when
//! the session ends.
//!
//! A run killed with SIGKILL (the out-of-memory killer, a cancelled task) cannot remove its
//! folder. So each folder holds a lock (an advisory `flock` on its `lock` file) for as long as
//! its session lives, and every new session first removes the folders whose lock nobody holds,
//! logging what that freed. Two runs at once each hold their own lock, so neither removes the
//! other's folder; a folder without a lock file (still being made, or left by a release before
//! locks) is only removed once a day old.

use std::fs::File;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use deltalake::datafusion::prelude::SessionContext;

use crate::error::{Error, Result};

/// The prefix of the folders' names.
pub const FOLDER_PREFIX: &str = "gateway-analytics-";

/// The lock file's name inside a folder.
const LOCK: &str = "lock";

/// How old an unlocked entry without a lock file must be before a sweep removes it.
const UNLOCKED_AGE: Duration = Duration::from_secs(24 * 60 * 60);

/// A session's locked folder under the temporary folder, removed when dropped.
#[derive(Debug)]
pub struct WorkFolder {
    // Dropped in this order: the folder is removed while its lock is still held.
    folder: tempfile::TempDir,
    _lock: File,
}

impl WorkFolder {
    /// Removes the folders runs that are gone left in the temporary folder, then creates and
    /// locks a new one.
    pub fn create() -> Result<Arc<WorkFolder>> {
        Self::create_in(&std::env::temp_dir())
    }

    /// [`WorkFolder::create`] under `parent` instead of the temporary folder.
    pub fn create_in(parent: &Path) -> Result<Arc<WorkFolder>> {
        remove_stale(parent);
        let io = |source| Error::Io { context: format!("creating a work folder in {}", parent.display()), source };
        let folder = tempfile::Builder::new().prefix(FOLDER_PREFIX).tempdir_in(parent).map_err(io)?;
        // Locked under another name, then renamed: a sweep that finds `lock` finds it held.
        let pending = folder.path().join("lock.pending");
        let lock = File::create(&pending).map_err(io)?;
        lock.try_lock().map_err(|e| io(e.into()))?;
        std::fs::rename(&pending, folder.path().join(LOCK)).map_err(io)?;
        Ok(Arc::new(WorkFolder { folder, _lock: lock }))
    }

    /// The folder.
    pub fn path(&self) -> &Path {
        self.folder.path()
    }

    /// The folder of `ctx`'s session (every session the engine makes has one).
    pub fn of(ctx: &SessionContext) -> Result<Arc<WorkFolder>> {
        ctx.state().config().get_extension::<WorkFolder>().ok_or_else(|| Error::Io {
            context: "finding the session's work folder".into(),
            source: std::io::Error::other("the session was not made by gateway_analytics::engine"),
        })
    }
}

/// Removes the entries named [`FOLDER_PREFIX`]`*` under `parent` that no live session owns:
/// folders whose lock is free, and entries without a lock file a day old. Never fails the run:
/// what cannot be removed is logged and left.
fn remove_stale(parent: &Path) {
    let Ok(entries) = std::fs::read_dir(parent) else { return };
    let (mut removed, mut bytes) = (0usize, 0u64);
    for entry in entries.flatten() {
        if !entry.file_name().to_string_lossy().starts_with(FOLDER_PREFIX) {
            continue;
        }
        let path = entry.path();
        // Held while removing, so a sweep of another run skips the folder meanwhile.
        let lock = match stale_lock(&path) {
            Staleness::Live => continue,
            Staleness::Stale(lock) => lock,
        };
        let size = size_of(&path);
        let result = if path.is_dir() { std::fs::remove_dir_all(&path) } else { std::fs::remove_file(&path) };
        drop(lock);
        match result {
            Ok(()) => {
                removed += 1;
                bytes += size;
            }
            Err(e) => tracing::warn!("could not remove {} (left by an earlier run): {e}", path.display()),
        }
    }
    if removed > 0 {
        tracing::info!(
            "removed {removed} temporary folder(s) of {bytes} bytes in {} left by runs that did not finish",
            parent.display()
        );
    }
}

/// Whether a session still owns `path`.
enum Staleness {
    Live,
    /// No session owns it; the lock (when it has one), held by this sweep.
    Stale(Option<File>),
}

fn stale_lock(path: &Path) -> Staleness {
    let lock_path = path.join(LOCK);
    if path.is_dir()
        && let Ok(lock) = File::open(&lock_path)
    {
        return match lock.try_lock() {
            Ok(()) => Staleness::Stale(Some(lock)),
            Err(_) => Staleness::Live,
        };
    }
    let modified = std::fs::symlink_metadata(path).and_then(|m| m.modified());
    let old = modified.is_ok_and(|at| SystemTime::now().duration_since(at).is_ok_and(|age| age > UNLOCKED_AGE));
    if old { Staleness::Stale(None) } else { Staleness::Live }
}

/// The bytes of the files under `path` (a file or a folder).
fn size_of(path: &Path) -> u64 {
    let Ok(metadata) = std::fs::symlink_metadata(path) else { return 0 };
    if !metadata.is_dir() {
        return metadata.len();
    }
    let Ok(entries) = std::fs::read_dir(path) else { return 0 };
    entries.flatten().map(|entry| size_of(&entry.path())).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(parent: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(parent)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn a_new_folder_removes_unlocked_ones_and_keeps_live_ones() {
        let parent = tempfile::tempdir().unwrap();
        let live = WorkFolder::create_in(parent.path()).unwrap();
        std::fs::write(live.path().join("rows.arrow"), b"live rows").unwrap();
        // A run killed half-way: its folder and lock file stay, nobody holds the lock.
        let killed = parent.path().join(format!("{FOLDER_PREFIX}killed"));
        std::fs::create_dir_all(killed.join("spill")).unwrap();
        std::fs::write(killed.join(LOCK), b"").unwrap();
        std::fs::write(killed.join("spill/part.arrow"), vec![0u8; 1000]).unwrap();
        // Being made right now (no lock file yet), and someone else's entry.
        let young = parent.path().join(format!("{FOLDER_PREFIX}young"));
        std::fs::create_dir(&young).unwrap();
        std::fs::write(parent.path().join("other.txt"), b"not ours").unwrap();
        // A row file of the release before locks, two days old.
        let old = parent.path().join(format!("{FOLDER_PREFIX}old.arrow"));
        File::create(&old).unwrap().set_modified(SystemTime::now() - 2 * UNLOCKED_AGE).unwrap();

        let second = WorkFolder::create_in(parent.path()).unwrap();

        let left = names(parent.path());
        assert!(!left.contains(&format!("{FOLDER_PREFIX}killed")), "{left:?}");
        assert!(!left.contains(&format!("{FOLDER_PREFIX}old.arrow")), "{left:?}");
        assert!(left.contains(&format!("{FOLDER_PREFIX}young")), "{left:?}");
        assert!(left.contains(&"other.txt".to_string()), "{left:?}");
        assert!(live.path().join("rows.arrow").exists());
        assert_eq!(names(live.path()), ["lock", "rows.arrow"]);
        assert_eq!(left.len(), 4, "two live folders, the young one, other.txt and nothing else: {left:?}");

        let (first_path, second_path) = (live.path().to_path_buf(), second.path().to_path_buf());
        drop(live);
        drop(second);
        assert!(!first_path.exists() && !second_path.exists());
    }
}
