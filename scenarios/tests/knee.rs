//! The knee search, driving the real loadgen through `OpenStep` and judged by
//! `judge_step`, finds the capacity of a server whose capacity is known.

use std::sync::Arc;
use std::time::Duration;

use q2o_loadgen::command::{Endpoints, RunCommand};
use q2o_scenarios::capacity::knee;
use q2o_scenarios::capacity::search::judge_step;
use q2o_scenarios::error::RunError;
use q2o_scenarios::loadgen::OpenStep;
use q2o_slo::sli::{Criterion, Op, Sli};
use q2o_testkit::ScratchDir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::Mutex;
use tokio::time::Instant;

/// An HTTP/1.1 server that answers exactly `capacity` requests per second:
/// each request takes the next free slot `1/capacity` s after the previous
/// one's and is answered at that slot, so below capacity nothing waits and
/// above it the queue, and the latency, grow without bound.
async fn fixed_rate_server(capacity: f64) -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let next_slot = Arc::new(Mutex::new(Instant::now()));
    let interval = Duration::from_secs_f64(1.0 / capacity);
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let next_slot = next_slot.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                let mut pending = Vec::new();
                loop {
                    let n = match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => n,
                    };
                    pending.extend_from_slice(&buf[..n]);
                    // Bodiless GETs: one request per blank line.
                    while let Some(end) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
                        pending.drain(..end + 4);
                        let slot = {
                            let mut next = next_slot.lock().await;
                            let slot = (*next).max(Instant::now()) + interval;
                            *next = slot;
                            slot
                        };
                        tokio::time::sleep_until(slot).await;
                        let answer = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
                        if stream.write_all(answer).await.is_err() {
                            return;
                        }
                    }
                }
            });
        }
    });
    addr
}

#[test]
fn the_knee_of_a_server_with_a_known_capacity_is_found_within_15_percent() {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let capacity = 400.0;
        let addr = fixed_rate_server(capacity).await;
        let dir = ScratchDir::new("knee").unwrap();
        let criteria = [Criterion {
            name: "p95".into(),
            sli: Sli::ApiLatencyP95,
            op: Op::Lt,
            target: 0.050,
            warning: None,
            record_only: false,
        }];
        let step = |rate: f64| {
            let mut command =
                RunCommand::new(Endpoints::default(), "get".parse().unwrap(), rate, Duration::from_secs(3));
            command.url = Some(format!("http://{addr}/"));
            let out = dir.path().join(format!("rate-{rate:.0}"));
            OpenStep::new(q2o_testkit::bin_dir().join("q2o-loadgen"), command, out)
        };
        let found = knee::search(50.0, 10_000.0, 0.1, 12, |rate| {
            let (run, criteria) = (step(rate), &criteria);
            async move {
                let done = run.run().await?;
                Ok::<_, RunError>(judge_step(&done.results, rate, criteria).held)
            }
        })
        .await
        .expect("the loadgen ran");
        let knee = found.rate.expect("the lowest rates hold");
        assert!(
            (knee - capacity).abs() <= 0.15 * capacity,
            "knee {knee:.0} req/s for a capacity of {capacity} (steps {:?})",
            found.steps
        );
        assert!(found.broke_at.is_some_and(|b| b > knee), "{found:?}");
    });
}
