//! A run's folder, `reports/<name>/<run-id>/`: made at the start (with its
//! `data/` for configs, databases and indexes), stripped of `data/` at the
//! end so that only logs and reports stay, and linked as `<name>/latest`.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::error::RunError;

/// One run's folder.
#[derive(Clone, Debug)]
pub struct RunFolder {
    /// `reports/<name>/<run-id>`, absolute.
    pub dir: PathBuf,
    /// The run id: the start time, with `-2`, `-3`... when runs start within one second.
    pub id: String,
    /// When the run started.
    pub started: SystemTime,
    base: PathBuf,
}

impl RunFolder {
    /// A new folder for a run of `name` under `reports`.
    pub fn create(reports: &Path, name: &str) -> Result<RunFolder, RunError> {
        let started = SystemTime::now();
        let base = reports.join(name);
        let mut id = run_id(started);
        let mut n = 1;
        while base.join(&id).exists() {
            n += 1;
            id = format!("{}-{n}", run_id(started));
        }
        let dir = base.join(&id);
        std::fs::create_dir_all(dir.join("data")).map_err(RunError::io(&dir))?;
        Ok(RunFolder { dir: dir.canonicalize().unwrap_or(dir), id, started, base })
    }

    /// Removes `data/`: configs, Redis, broker, index and TSDB files.
    pub fn remove_data(&self) {
        let _ = std::fs::remove_dir_all(self.dir.join("data"));
    }

    /// Points `<name>/latest` at this run.
    pub fn link_latest(&self) {
        let latest = self.base.join("latest");
        let _ = std::fs::remove_file(&latest);
        if let Some(name) = self.dir.file_name() {
            let _ = std::os::unix::fs::symlink(name, &latest);
        }
    }
}

/// `t` as RFC 3339.
pub fn rfc3339(t: SystemTime) -> String {
    time::OffsetDateTime::from(t).format(&time::format_description::well_known::Rfc3339).unwrap_or_default()
}

/// The id of a run started at `t`: its start time, to the second.
pub fn run_id(t: SystemTime) -> String {
    let t = time::OffsetDateTime::from(t);
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_in_one_second_get_their_own_folders_and_latest_follows() {
        let reports = q2o_testkit::ScratchDir::new("run-folder").unwrap();
        let first = RunFolder::create(reports.path(), "phase9").unwrap();
        let second = RunFolder::create(reports.path(), "phase9").unwrap();
        assert_ne!(first.dir, second.dir);
        assert!(second.id.ends_with("-2") || first.id[..15] != second.id[..15], "{} {}", first.id, second.id);
        assert!(first.dir.join("data").is_dir());
        first.remove_data();
        assert!(!first.dir.join("data").exists() && first.dir.is_dir(), "only data/ goes");
        second.link_latest();
        assert_eq!(reports.path().join("phase9/latest").canonicalize().unwrap(), second.dir);
    }
}
