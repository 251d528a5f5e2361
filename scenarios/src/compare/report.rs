//! What a comparison measured, as `comparison.json`, `report.md` and
//! `report.html`: per operation the percentiles of each protocol and their
//! ratio with a bootstrap 95 % interval, throughput at saturation, CPU per
//! 1,000 requests, payload bytes, and the one-line verdict on "50x".

use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::Path;

use hdrhistogram::Histogram;
use q2o_env::topology::Topology;
use q2o_loadgen::recorder::Protocol;
use q2o_loadgen::step::Step;
use serde::Serialize;

use super::file::ComparisonFile;
use super::measure::PayloadRow;
use super::rounds::{Measured, Round};
use crate::capacity::stats::{RatioCi, ratio_ci, samples};
use q2o_report::charts::Chart;
use q2o_report::junit::{self, Case};
use q2o_report::summary::{LoadFigures, Machine};
use q2o_report::xml::escape;

/// The version of `comparison.json`.
pub const SCHEMA_VERSION: u32 = 1;

/// Bootstrap resamples per interval.
const RESAMPLES: usize = 1000;

/// The roadmap's claim, as a REST/gRPC latency ratio.
const CLAIMED_RATIO: f64 = 50.0;

/// `comparison.json`.
#[derive(Clone, Debug, Serialize)]
pub struct ComparisonReport {
    /// [`SCHEMA_VERSION`].
    pub schema_version: u32,
    /// The file's name.
    pub name: String,
    /// The file's description.
    pub description: String,
    /// The run folder's name.
    pub run_id: String,
    /// RFC 3339.
    pub started_at: String,
    /// RFC 3339.
    pub finished_at: String,
    /// Every measured round was clean enough to compare.
    pub valid: bool,
    /// Why not, round by round.
    pub reasons: Vec<String>,
    /// The one line on the roadmap's "gRPC is 50x faster".
    pub verdict: String,
    /// Where it ran.
    pub environment: Machine,
    /// What ran.
    pub topology: Topology,
    /// Requests per second offered in every round.
    pub rate: f64,
    /// Rounds per protocol.
    pub rounds: usize,
    /// Seconds per round.
    pub round_seconds: f64,
    /// Per operation, and `all` for every operation together.
    pub operations: Vec<OperationFigures>,
    /// The saturation rounds.
    pub saturation: Vec<Saturation>,
    /// CPU per protocol over the measured rounds.
    pub cpu: Vec<CpuFigures>,
    /// Payload bytes per operation.
    pub payloads: Vec<PayloadRow>,
    /// Each measured round, in the order run.
    pub round_figures: Vec<RoundFigures>,
}

/// Percentiles of one protocol's requests of one operation, over every round.
#[derive(Clone, Debug, Serialize)]
pub struct Percentiles {
    /// Requests.
    pub count: u64,
    /// Median, ms.
    pub p50_ms: f64,
    /// 95th percentile, ms.
    pub p95_ms: f64,
    /// 99th percentile, ms.
    pub p99_ms: f64,
}

/// One operation over both protocols.
#[derive(Clone, Debug, Serialize)]
pub struct OperationFigures {
    /// The operation (`all` for every operation together).
    pub operation: String,
    /// Over REST.
    pub rest: Percentiles,
    /// Over gRPC.
    pub grpc: Percentiles,
    /// REST p50 / gRPC p50 (above 1: gRPC is faster).
    pub ratio_p50: Option<RatioCi>,
    /// REST p95 / gRPC p95.
    pub ratio_p95: Option<RatioCi>,
    /// REST p99 / gRPC p99.
    pub ratio_p99: Option<RatioCi>,
    /// The p50 ratio of each pair of rounds alone: smallest and largest (how
    /// much the ratio moved from round to round).
    pub round_ratio_p50: Option<(f64, f64)>,
    /// (percentile, ms) of REST and of gRPC, for the chart.
    #[serde(skip)]
    spectra: [Vec<(f64, f64)>; 2],
}

/// The most one protocol carried.
#[derive(Clone, Debug, Serialize)]
pub struct Saturation {
    /// `rest` or `grpc`.
    pub protocol: Protocol,
    /// Requests per second offered.
    pub offered_rate: f64,
    /// Requests per second answered `ok`.
    pub ok_rate: f64,
    /// Starts dropped because `saturation_in_flight` requests were outstanding.
    pub dropped_starts: u64,
    /// Requests that failed.
    pub failed: u64,
    /// Median latency from the planned start, ms.
    pub p50_ms: f64,
    /// Loadgen CPU seconds per 1,000 requests at saturation.
    pub client_cpu_per_1k: f64,
    /// Every service's CPU seconds per 1,000 requests at saturation (idle
    /// costs, such as the broker's polling, weigh least here).
    pub server_cpu_per_1k: f64,
}

/// CPU time per 1,000 requests of one protocol.
#[derive(Clone, Debug, Serialize)]
pub struct CpuFigures {
    /// `rest` or `grpc`.
    pub protocol: Protocol,
    /// Requests over the measured rounds.
    pub requests: u64,
    /// Loadgen CPU seconds per 1,000 requests.
    pub client_per_1k: f64,
    /// Every service's CPU seconds per 1,000 requests.
    pub server_per_1k: f64,
    /// By service.
    pub server_per_1k_by_service: BTreeMap<String, f64>,
}

/// One round's totals.
#[derive(Clone, Debug, Serialize)]
pub struct RoundFigures {
    /// Position in the run (warm-up not counted).
    pub round: usize,
    /// `rest` or `grpc`.
    pub protocol: Protocol,
    /// Requests per second offered.
    pub offered_rate: f64,
    /// Requests per second finished.
    pub achieved_rate: f64,
    /// Requests finished.
    pub requests: u64,
    /// Of which not ok.
    pub failed: u64,
    /// Starts that could not be made on time.
    pub dropped_starts: u64,
    /// Loadgen CPU seconds.
    pub client_cpu_seconds: f64,
    /// Every service's CPU seconds.
    pub server_cpu_seconds: f64,
}

/// A measured round's latency histograms by operation, decoded once.
struct Decoded {
    protocol: Protocol,
    steps: Vec<(Step, Histogram<u64>)>,
}

impl Decoded {
    fn of(round: &Round) -> Decoded {
        let steps = round
            .results
            .steps
            .iter()
            .filter_map(|s| round.results.latency_where(|x| x.step == s.step).ok().map(|h| (s.step, h)))
            .collect();
        Decoded { protocol: round.protocol, steps }
    }
}

/// `operation`'s requests (every operation's for `None`) over `rounds`, in one histogram.
fn merged<'a>(rounds: impl IntoIterator<Item = &'a Decoded>, operation: Option<Step>) -> Histogram<u64> {
    let mut all = q2o_loadgen::recorder::latency_histogram();
    for round in rounds {
        for (_, h) in round.steps.iter().filter(|(step, _)| operation.is_none_or(|op| op == *step)) {
            let _ = all.add(h);
        }
    }
    all
}

fn percentiles(h: &Histogram<u64>) -> Percentiles {
    let ms = |q: f64| if h.is_empty() { 0.0 } else { h.value_at_quantile(q) as f64 / 1e3 };
    Percentiles { count: h.len(), p50_ms: ms(0.5), p95_ms: ms(0.95), p99_ms: ms(0.99) }
}

/// The percentiles the charts draw.
const SPECTRUM: [f64; 7] = [50.0, 75.0, 90.0, 95.0, 99.0, 99.5, 99.9];

fn spectrum(h: &Histogram<u64>) -> Vec<(f64, f64)> {
    if h.is_empty() {
        return Vec::new();
    }
    SPECTRUM.iter().map(|&q| (q, h.value_at_quantile(q / 100.0) as f64 / 1e3)).collect()
}

/// One operation's figures; `None` is every operation together (`all`).
fn operation(name: Option<Step>, rounds: &[Decoded]) -> OperationFigures {
    let of = |p: Protocol| rounds.iter().filter(move |r| r.protocol == p);
    let (rest, grpc) = (merged(of(Protocol::Rest), name), merged(of(Protocol::Grpc), name));
    let (a, b) = (samples(&rest), samples(&grpc));
    let ci = |q: f64| ratio_ci(&a, &b, q, RESAMPLES, 0x510e_2026);
    let pair_ratios: Vec<f64> = of(Protocol::Rest)
        .zip(of(Protocol::Grpc))
        .filter_map(|(r, g)| {
            let (r, g) = (merged([r], name), merged([g], name));
            (!r.is_empty() && !g.is_empty()).then(|| r.value_at_quantile(0.5) as f64 / g.value_at_quantile(0.5) as f64)
        })
        .collect();
    let round_ratio_p50 = (!pair_ratios.is_empty()).then(|| {
        (pair_ratios.iter().copied().fold(f64::INFINITY, f64::min), pair_ratios.iter().copied().fold(0.0, f64::max))
    });
    OperationFigures {
        operation: name.map_or("all", Step::as_label).to_owned(),
        rest: percentiles(&rest),
        grpc: percentiles(&grpc),
        ratio_p50: ci(0.5),
        ratio_p95: ci(0.95),
        ratio_p99: ci(0.99),
        round_ratio_p50,
        spectra: [spectrum(&rest), spectrum(&grpc)],
    }
}

impl ComparisonReport {
    /// The report of what was measured.
    pub(crate) fn new(comparison: &ComparisonFile, measured: &Measured, run_id: &str, environment: Machine) -> Self {
        let c = &comparison.compare;
        let decoded: Vec<Decoded> = measured.rounds.iter().map(Decoded::of).collect();
        let mut operations: Vec<OperationFigures> =
            c.operations.iter().filter(|(_, w)| **w > 0).map(|(op, _)| operation(Some(*op), &decoded)).collect();
        operations.push(operation(None, &decoded));
        let round_figures: Vec<RoundFigures> = measured.rounds.iter().enumerate().map(|(i, r)| figures(r, i)).collect();
        let mut reasons = Vec::new();
        for f in &round_figures {
            let planned = (f.offered_rate * c.round.as_secs_f64()).max(1.0);
            let (failed, late) = (f.failed as f64 / f.requests.max(1) as f64, f.dropped_starts as f64 / planned);
            if failed > c.max_error_ratio || late > c.max_error_ratio || f.requests == 0 {
                reasons.push(format!(
                    "round {} ({}): {} of {} requests failed and {} starts were late; the bound is {:.1} %",
                    f.round,
                    f.protocol.as_str(),
                    f.failed,
                    f.requests,
                    f.dropped_starts,
                    c.max_error_ratio * 100.0
                ));
            }
        }
        let saturation = measured
            .saturation
            .iter()
            .map(|r| {
                let f = figures(r, 0);
                let all = r.results.overall_latency().ok();
                Saturation {
                    protocol: r.protocol,
                    offered_rate: f.offered_rate,
                    ok_rate: (f.requests - f.failed) as f64 / r.results.duration_seconds.max(1e-9),
                    dropped_starts: f.dropped_starts,
                    failed: f.failed,
                    p50_ms: all.filter(|h| !h.is_empty()).map_or(0.0, |h| h.value_at_quantile(0.5) as f64 / 1e3),
                    client_cpu_per_1k: f.client_cpu_seconds / f.requests.max(1) as f64 * 1000.0,
                    server_cpu_per_1k: f.server_cpu_seconds / f.requests.max(1) as f64 * 1000.0,
                }
            })
            .collect();
        let cpu = [Protocol::Rest, Protocol::Grpc]
            .into_iter()
            .map(|p| {
                let rounds: Vec<&Round> = measured.rounds.iter().filter(|r| r.protocol == p).collect();
                let requests: u64 = rounds.iter().map(|r| figures(r, 0).requests).sum();
                let per_1k = |seconds: f64| seconds / requests.max(1) as f64 * 1000.0;
                let mut by_service = BTreeMap::new();
                for (service, seconds) in rounds.iter().flat_map(|r| &r.server_cpu_seconds) {
                    *by_service.entry(service.clone()).or_insert(0.0) += seconds;
                }
                CpuFigures {
                    protocol: p,
                    requests,
                    client_per_1k: per_1k(rounds.iter().map(|r| r.client_cpu_seconds).sum()),
                    server_per_1k: per_1k(by_service.values().sum()),
                    server_per_1k_by_service: by_service.into_iter().map(|(k, v)| (k, per_1k(v))).collect(),
                }
            })
            .collect();
        let mut report = ComparisonReport {
            schema_version: SCHEMA_VERSION,
            name: comparison.name.clone(),
            description: comparison.description.clone(),
            run_id: run_id.to_owned(),
            started_at: String::new(),
            finished_at: String::new(),
            valid: reasons.is_empty(),
            reasons,
            verdict: String::new(),
            environment,
            topology: comparison.topology.clone(),
            rate: c.rate,
            rounds: c.rounds,
            round_seconds: c.round.as_secs_f64(),
            operations,
            saturation,
            cpu,
            payloads: measured.payloads.clone(),
            round_figures,
        };
        report.verdict = report.fifty_x_verdict();
        report
    }

    /// "gRPC is 50x faster", held against the p50 ratio over every operation
    /// and the throughput ratio at saturation.
    fn fifty_x_verdict(&self) -> String {
        let Some(all) = self.operations.iter().find(|o| o.operation == "all") else {
            return "no requests were measured".into();
        };
        let Some(p50) = all.ratio_p50 else { return "no requests were measured".into() };
        let throughput = match (self.saturation_of(Protocol::Grpc), self.saturation_of(Protocol::Rest)) {
            (Some(g), Some(r)) if r.ok_rate > 0.0 => {
                format!("; at saturation gRPC carried {:.2}x REST's throughput", g.ok_rate / r.ok_rate)
            }
            _ => String::new(),
        };
        let widest = self
            .operations
            .iter()
            .filter(|o| o.operation != "all")
            .filter_map(|o| o.ratio_p50.map(|r| (o.operation.as_str(), r.ratio)))
            .max_by(|a, b| a.1.total_cmp(&b.1));
        let widest =
            widest.map_or(String::new(), |(op, r)| format!("; the largest per-operation ratio is {op}'s, {r:.2}"));
        let holds = if p50.low >= CLAIMED_RATIO {
            "holds"
        } else if p50.high < CLAIMED_RATIO {
            "does not hold"
        } else {
            "cannot be decided"
        };
        let plain = if p50.ratio >= 1.0 {
            format!("gRPC is {:.2}x faster at the median", p50.ratio)
        } else {
            format!("gRPC is {:.2}x slower at the median", 1.0 / p50.ratio)
        };
        format!(
            "The roadmap's \"gRPC is 50x faster\" {holds} here: over every operation at {} req/s the median latency ratio REST/gRPC is {:.2} (95 % CI {:.2}–{:.2}), so {plain}{throughput}{widest}.",
            self.rate, p50.ratio, p50.low, p50.high
        )
    }

    fn saturation_of(&self, protocol: Protocol) -> Option<&Saturation> {
        self.saturation.iter().find(|s| s.protocol == protocol)
    }
}

/// Latency by percentile, one chart per operation, both protocols.
fn charts(operations: &[OperationFigures]) -> Vec<Chart> {
    operations
        .iter()
        .map(|o| Chart {
            title: format!("{}: latency by percentile", o.operation),
            x_label: "percentile".into(),
            y_label: "ms".into(),
            lines: vec![("REST".into(), o.spectra[0].clone()), ("gRPC".into(), o.spectra[1].clone())],
            dots: Vec::new(),
        })
        .collect()
}

/// Writes `comparison.json`, `report.md`, `report.html` and `junit.xml` into `dir`.
pub(crate) fn write_all(dir: &Path, report: &ComparisonReport) -> std::io::Result<()> {
    let json = serde_json::to_string_pretty(report).expect("reports serialize") + "\n";
    std::fs::write(dir.join("comparison.json"), json)?;
    std::fs::write(dir.join("report.md"), markdown(report))?;
    std::fs::write(dir.join("junit.xml"), junit(report))?;
    std::fs::write(dir.join("report.html"), html(report, &charts(&report.operations)))
}

/// One test case per measured round: clean enough to compare, or not.
fn junit(r: &ComparisonReport) -> String {
    let cases: Vec<Case> = r
        .round_figures
        .iter()
        .map(|f| {
            let name = format!("round {} {}", f.round, f.protocol.as_str());
            let output = format!(
                "{} requests at {:.1} req/s, {} failed, {} late starts",
                f.requests, f.achieved_rate, f.failed, f.dropped_starts
            );
            let failure = r.reasons.iter().find(|reason| reason.starts_with(&format!("round {} (", f.round))).cloned();
            Case { name, failure, output }
        })
        .collect();
    junit::suite(&r.name, &r.started_at, &cases)
}

fn ci(r: Option<RatioCi>) -> String {
    r.map_or("-".into(), |r| format!("{:.2} ({:.2}–{:.2})", r.ratio, r.low, r.high))
}

fn markdown(r: &ComparisonReport) -> String {
    let mut m = String::new();
    let _ = writeln!(m, "# {}: {}\n\n{}\n", r.name, if r.valid { "VALID" } else { "INVALID" }, r.description);
    let _ = writeln!(m, "**{}**\n", r.verdict);
    let _ = writeln!(
        m,
        "Run {} from {} to {} on {} CPUs. {} rounds per protocol of {:.0} s at {} req/s (open model, latency from the planned start), alternating REST and gRPC.\n",
        r.run_id, r.started_at, r.finished_at, r.environment.cpus, r.rounds, r.round_seconds, r.rate
    );
    if !r.reasons.is_empty() {
        m.push_str("## Why the rounds do not compare\n\n");
        for reason in &r.reasons {
            let _ = writeln!(m, "- {reason}");
        }
        m.push('\n');
    }
    m.push_str("## Latency (ms) and REST/gRPC ratio with bootstrap 95 % CI\n\n");
    m.push_str("| operation | REST p50 | gRPC p50 | p50 ratio | REST p95 | gRPC p95 | p95 ratio | REST p99 | gRPC p99 | p99 ratio | p50 ratio by round | requests REST/gRPC |\n");
    m.push_str("|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    for o in &r.operations {
        let rounds = o.round_ratio_p50.map_or("-".into(), |(lo, hi)| format!("{lo:.2}–{hi:.2}"));
        let _ = writeln!(
            m,
            "| {} | {:.2} | {:.2} | {} | {:.2} | {:.2} | {} | {:.2} | {:.2} | {} | {rounds} | {}/{} |",
            o.operation,
            o.rest.p50_ms,
            o.grpc.p50_ms,
            ci(o.ratio_p50),
            o.rest.p95_ms,
            o.grpc.p95_ms,
            ci(o.ratio_p95),
            o.rest.p99_ms,
            o.grpc.p99_ms,
            ci(o.ratio_p99),
            o.rest.count,
            o.grpc.count
        );
    }
    m.push_str("\n## Throughput at saturation\n\n| protocol | offered req/s | ok req/s | p50 ms | failed | dropped starts | client CPU s per 1k | server CPU s per 1k |\n|---|---|---|---|---|---|---|---|\n");
    for s in &r.saturation {
        let _ = writeln!(
            m,
            "| {} | {:.0} | {:.0} | {:.1} | {} | {} | {:.3} | {:.3} |",
            s.protocol.as_str(),
            s.offered_rate,
            s.ok_rate,
            s.p50_ms,
            s.failed,
            s.dropped_starts,
            s.client_cpu_per_1k,
            s.server_cpu_per_1k
        );
    }
    m.push_str("\nThe offered rate is far above what either carries; starts beyond the cap on requests in flight are dropped, so the ok rate is the throughput.\n");
    m.push_str("\n## CPU seconds per 1,000 requests (measured rounds)\n\n| protocol | requests | client (loadgen) | server (all services) | by service |\n|---|---|---|---|---|\n");
    for c in &r.cpu {
        let by: Vec<String> = c.server_per_1k_by_service.iter().map(|(s, v)| format!("{s} {v:.3}")).collect();
        let _ = writeln!(
            m,
            "| {} | {} | {:.3} | {:.3} | {} |",
            c.protocol.as_str(),
            c.requests,
            c.client_per_1k,
            c.server_per_1k,
            by.join(", ")
        );
    }
    let _ = writeln!(
        m,
        "\nAt {} req/s the services' idle work (the broker's polling, timers) is a large share; the saturation rounds above give the cost per request under load.",
        r.rate
    );
    m.push_str("\n## Payload bytes per request (bodies only: JSON over REST, encoded protobuf over gRPC)\n\n| operation | REST request | REST answer | gRPC request | gRPC answer |\n|---|---|---|---|---|\n");
    for p in &r.payloads {
        let _ = writeln!(
            m,
            "| {} | {} | {} | {} | {} |",
            p.operation, p.rest.request, p.rest.response, p.grpc.request, p.grpc.response
        );
    }
    m.push_str("\n## Rounds\n\n| round | protocol | offered | achieved req/s | requests | failed | late starts | client CPU s | server CPU s |\n|---|---|---|---|---|---|---|---|---|\n");
    for f in &r.round_figures {
        let _ = writeln!(
            m,
            "| {} | {} | {:.0} | {:.1} | {} | {} | {} | {:.2} | {:.2} |",
            f.round,
            f.protocol.as_str(),
            f.offered_rate,
            f.achieved_rate,
            f.requests,
            f.failed,
            f.dropped_starts,
            f.client_cpu_seconds,
            f.server_cpu_seconds
        );
    }
    m.push_str("\nThe loadgen and the services share this machine's CPUs; the CPU figures say which side paid for each request.\n");
    m
}

fn html(r: &ComparisonReport, charts: &[Chart]) -> String {
    let status = if r.valid { "VALID" } else { "INVALID" };
    let body = format!(
        "<p id=\"fifty-x\"><strong>{}</strong></p>\n{}",
        escape(&r.verdict),
        q2o_report::html::markdown_tables(&markdown(r))
    );
    q2o_report::html::page(&r.name, status, r.valid, &body, "Latency by percentile", charts)
}

/// One round's line of the report.
fn figures(round: &Round, index: usize) -> RoundFigures {
    let r = &round.results;
    let load = LoadFigures::of(r);
    RoundFigures {
        round: index,
        protocol: round.protocol,
        offered_rate: r.target_rate.start,
        achieved_rate: r.achieved_rate,
        requests: load.requests,
        failed: load.failed,
        dropped_starts: r.dropped_starts,
        client_cpu_seconds: round.client_cpu_seconds,
        server_cpu_seconds: round.server_cpu_seconds.iter().map(|(_, s)| s).sum(),
    }
}
