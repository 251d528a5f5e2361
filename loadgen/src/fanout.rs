//! `--processes N`: one run spread over N child processes of this same
//! program, each with its share of the users or the rate and a results
//! folder of its own (`--out/part-<i>`), merged exactly into `--out` once all
//! have exited. One process may hold at most 20,000 open files here, and an
//! open-model process drives its requests from one core.

use std::path::{Path, PathBuf};

use crate::results::{ResultsError, RunResults};

/// A fan-out that did not produce merged results.
#[derive(Debug, thiserror::Error)]
pub enum FanOutError {
    /// A child could not be started or waited for.
    #[error("cannot run a loadgen process: {0}")]
    Spawn(#[from] std::io::Error),
    /// A child left no readable results.
    #[error("{error}; that process said: {said}")]
    Part {
        /// Why its results could not be read.
        error: ResultsError,
        /// The end of its standard error.
        said: String,
    },
    /// The parts do not merge (different models or schemas).
    #[error("cannot merge the processes' results: {0}")]
    Merge(String),
    /// The merged results could not be written.
    #[error(transparent)]
    Write(ResultsError),
}

/// The folder of child `i` under `out`.
pub fn part_dir(out: &Path, i: usize) -> PathBuf {
    out.join(format!("part-{i}"))
}

/// Runs `program` once per argument list in `children` (each writing into
/// its own [`part_dir`]), waits for all, and merges their results into
/// `out`. `stop` asks every child to stop early and write what it has.
pub async fn run(
    program: &Path,
    out: &Path,
    children: Vec<Vec<String>>,
    stop: impl Future<Output = ()>,
) -> Result<RunResults, FanOutError> {
    let mut running = Vec::new();
    for (i, args) in children.into_iter().enumerate() {
        let dir = part_dir(out, i);
        std::fs::create_dir_all(&dir)?;
        let mut command = tokio::process::Command::new(program);
        command.args(args).kill_on_drop(true);
        command.stdout(std::fs::File::create(dir.join("stdout.log"))?);
        command.stderr(std::fs::File::create(dir.join("stderr.log"))?);
        running.push((dir, command.spawn()?));
    }
    let pids: Vec<u32> = running.iter().filter_map(|(_, child)| child.id()).collect();
    tokio::pin!(stop);
    let mut interrupted = false;
    for (_, child) in &mut running {
        tokio::select! {
            status = child.wait() => { status?; }
            () = &mut stop, if !interrupted => {
                interrupted = true;
                // Ask every child to stop and write its partial results.
                for pid in &pids {
                    // SAFETY: kill(2) on our own children's pids.
                    unsafe { libc::kill(*pid as libc::pid_t, libc::SIGTERM) };
                }
                child.wait().await?;
            }
        }
    }
    let mut parts = Vec::new();
    for (dir, _) in &running {
        match RunResults::read(&dir.join("results.json")) {
            Ok(part) => parts.push(part),
            Err(error) => {
                let said = std::fs::read_to_string(dir.join("stderr.log")).unwrap_or_default().trim().to_owned();
                return Err(FanOutError::Part { error, said });
            }
        }
    }
    let merged = RunResults::merge(&parts).map_err(FanOutError::Merge)?;
    merged.write(out).map_err(FanOutError::Write)?;
    Ok(merged)
}
