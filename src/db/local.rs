//! The embedded SQLite database's file on this machine: one process at a
//! time, readable by its owner only.
//!
//! Two processes serving the same SQLite file would both connect the same
//! Telegram sessions, and Telegram answers a session used twice with
//! AUTH_KEY_DUPLICATED and revokes it. So `serve` takes an exclusive lock
//! (`flock`) on `<database file>.lock` before it opens the database and
//! holds it until it exits; a second process finds it taken and refuses to
//! start. The kernel drops the lock with the process, however it ends, so
//! a crash never leaves a stale lock behind. PostgreSQL deployments are not
//! covered here: their processes share no file.
//!
//! The database file (and the `-wal` and `-shm` files SQLite makes with the
//! same mode) holds encrypted sessions, users and audit rows: it is created
//! 0600 like the development secrets, and an existing one is narrowed to
//! 0600 at start.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read as _, Seek as _, Write as _};
use std::path::{Path, PathBuf};

/// Why the database file could not be claimed.
#[derive(Debug, thiserror::Error)]
pub enum LocalDbError {
    #[error(
        "another tgvisor{holder} is already serving the database {db} (it holds {lock}); \
         stop it first, or give this one a data_dir of its own"
    )]
    InUse {
        db: String,
        lock: String,
        holder: String,
    },
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// The exclusive claim on one SQLite database file; released when dropped.
#[derive(Debug)]
pub struct DbFileLock {
    _file: File,
    path: PathBuf,
}

impl DbFileLock {
    /// The lock file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// The file behind a SQLite URL (`sqlite://path?…`, `sqlite:path`), or
/// `None` for another database or an in-memory one.
pub fn sqlite_file(url: &str) -> Option<PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or_default();
    if path.is_empty() || path == ":memory:" {
        return None;
    }
    Some(PathBuf::from(path))
}

/// Claims `db` for this process and makes sure the file is private: takes
/// the lock on `<db>.lock`, then creates `db` with mode 0600 or narrows an
/// existing one to it.
pub fn claim(db: &Path) -> Result<DbFileLock, LocalDbError> {
    let io = |what, path: &Path| {
        let path = path.display().to_string();
        move |source| LocalDbError::Io { what, path, source }
    };
    let mut lock_path = db.as_os_str().to_owned();
    lock_path.push(".lock");
    let lock_path = PathBuf::from(lock_path);
    let mut file = private(OpenOptions::new().read(true).write(true).create(true))
        .open(&lock_path)
        .map_err(io("opening the lock file", &lock_path))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => {
            let mut pid = String::new();
            let _ = file.read_to_string(&mut pid);
            let pid = pid.trim();
            let holder = if !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit()) {
                format!(" (pid {pid})")
            } else {
                String::new()
            };
            return Err(LocalDbError::InUse {
                db: db.display().to_string(),
                lock: lock_path.display().to_string(),
                holder,
            });
        }
        Err(TryLockError::Error(e)) => return Err(io("locking", &lock_path)(e)),
    }
    // The holder's pid, for the message a second process prints.
    let _ = file
        .set_len(0)
        .and_then(|()| file.rewind())
        .and_then(|()| writeln!(file, "{}", std::process::id()));
    private(OpenOptions::new().write(true).create(true))
        .open(db)
        .map_err(io("creating the database file", db))?;
    narrow(db).map_err(io("restricting the database file to its owner", db))?;
    Ok(DbFileLock {
        _file: file,
        path: lock_path,
    })
}

#[cfg(unix)]
fn private(options: &mut OpenOptions) -> &mut OpenOptions {
    use std::os::unix::fs::OpenOptionsExt as _;
    options.mode(0o600)
}

#[cfg(not(unix))]
fn private(options: &mut OpenOptions) -> &mut OpenOptions {
    options
}

/// Narrows an existing file (created before tgvisor made it 0600) to its
/// owner, and the WAL files beside it.
#[cfg(unix)]
fn narrow(db: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    for suffix in ["", "-wal", "-shm"] {
        let mut path = db.as_os_str().to_owned();
        path.push(suffix);
        match std::fs::metadata(&path) {
            Ok(meta) if meta.permissions().mode() & 0o077 != 0 => {
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
            }
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !suffix.is_empty() => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(not(unix))]
fn narrow(_db: &Path) -> std::io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_urls_name_their_file() {
        assert_eq!(
            sqlite_file("sqlite:///var/lib/tgvisor/tgvisor.db?mode=rwc"),
            Some(PathBuf::from("/var/lib/tgvisor/tgvisor.db"))
        );
        assert_eq!(
            sqlite_file("sqlite:./data/t.db"),
            Some(PathBuf::from("./data/t.db"))
        );
        assert_eq!(sqlite_file("sqlite::memory:"), None);
        assert_eq!(sqlite_file("postgres://u@h/db"), None);
    }

    #[test]
    fn a_second_claim_is_refused_until_the_first_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("tgvisor.db");
        let first = claim(&db).unwrap();
        let err = claim(&db).unwrap_err().to_string();
        assert!(err.contains("already serving"), "{err}");
        assert!(
            err.contains(&format!("pid {}", std::process::id())),
            "{err}"
        );
        drop(first);
        claim(&db).unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn the_database_file_is_private() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("tgvisor.db");
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        let lock = claim(&db).unwrap();
        assert_eq!(mode(&db), 0o600);
        assert_eq!(mode(lock.path()), 0o600);
        drop(lock);
        // A file an older version left world-readable is narrowed.
        std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).unwrap();
        let wal = dir.path().join("tgvisor.db-wal");
        std::fs::write(&wal, b"").unwrap();
        std::fs::set_permissions(&wal, std::fs::Permissions::from_mode(0o644)).unwrap();
        let _lock = claim(&db).unwrap();
        assert_eq!(mode(&db), 0o600);
        assert_eq!(mode(&wal), 0o600);
    }
}
