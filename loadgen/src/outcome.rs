//! How a request ended, as a type. Its label (`ok`, `http_503`,
//! `grpc_unavailable`, `error_timeout`, `task_timeout`...) is what
//! `results.json` and the `outcome` label of `q2o_loadgen_requests_total`
//! carry; whether an outcome is the server's fault is decided here, once, for
//! the gate's availability and for the PromQL selector of the same SLI.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A transport failure: the request got no answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Transport {
    /// No connection could be made.
    Connect,
    /// The connection failed or closed mid-exchange.
    Io,
    /// No answer within the request timeout.
    Timeout,
    /// The request could not even be built.
    Request,
    /// The mix named a step no target of this run serves.
    NoTarget,
}

impl Transport {
    const ALL: [Transport; 5] =
        [Transport::Connect, Transport::Io, Transport::Timeout, Transport::Request, Transport::NoTarget];

    fn label(self) -> &'static str {
        match self {
            Transport::Connect => "error_connect",
            Transport::Io => "error_io",
            Transport::Timeout => "error_timeout",
            Transport::Request => "error_request",
            Transport::NoTarget => "error_no_target",
        }
    }
}

/// How a request (or a task's wait) ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Outcome {
    /// Answered with success.
    Ok,
    /// Turned away by the system's admission control, which said when to
    /// come back: a 503 with `Retry-After`, or `UNAVAILABLE` with
    /// `grpc-retry-pushback-ms`. Counted apart from faults: the system
    /// chose not to serve, quickly, instead of failing.
    Shed,
    /// Answered with this non-2xx HTTP status.
    Http(u16),
    /// Answered with this gRPC status code (never `OK`).
    Grpc(GrpcCode),
    /// The task-update stream could not be opened.
    StreamRefused,
    /// The task-update stream ended before the task did.
    StreamEnded,
    /// The task-update stream failed.
    StreamError,
    /// The task ended in the `failed` state.
    TaskFailed,
    /// The task did not end within the users' deadline.
    TaskTimeout,
    /// No answer.
    Transport(Transport),
}

/// A gRPC status code, ordered and hashed by its number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GrpcCode(i32);

impl GrpcCode {
    /// The tonic code.
    pub fn code(self) -> tonic::Code {
        tonic::Code::from_i32(self.0)
    }
}

impl From<tonic::Code> for GrpcCode {
    fn from(code: tonic::Code) -> GrpcCode {
        GrpcCode(code as i32)
    }
}

/// The gRPC codes a server answers when it cannot serve.
const SERVER_FAULT_CODES: [tonic::Code; 4] =
    [tonic::Code::Unavailable, tonic::Code::Internal, tonic::Code::Unknown, tonic::Code::DeadlineExceeded];

fn grpc_label(code: tonic::Code) -> String {
    format!("grpc_{code:?}").to_lowercase()
}

impl Outcome {
    /// The outcome of a gRPC call.
    pub fn of_grpc<T>(result: &Result<T, tonic::Status>) -> Outcome {
        match result {
            Ok(_) => Outcome::Ok,
            Err(status) if status.code() == tonic::Code::Unavailable && pushback(status).is_some() => Outcome::Shed,
            Err(status) => Outcome::Grpc(status.code().into()),
        }
    }

    /// The outcome of an HTTP answer with `status`; `retry_after` is whether
    /// it carried a `Retry-After` header.
    pub fn of_http(status: u16, retry_after: bool) -> Outcome {
        match status {
            200..300 => Outcome::Ok,
            503 if retry_after => Outcome::Shed,
            _ => Outcome::Http(status),
        }
    }

    /// Whether the system turned the request away (and said when to retry).
    pub fn is_shed(self) -> bool {
        self == Outcome::Shed
    }

    /// Whether the request succeeded.
    pub fn is_ok(self) -> bool {
        self == Outcome::Ok
    }

    /// Whether the server failed (not a refusal of bad input, nor a task the
    /// agents reported as failed, nor a request shed by admission control): a
    /// 5xx, a transport failure, or one of the gRPC codes a server answers
    /// when it cannot serve.
    pub fn is_server_fault(self) -> bool {
        match self {
            Outcome::Http(status) => (500..600).contains(&status),
            Outcome::Transport(_) => true,
            Outcome::Grpc(code) => SERVER_FAULT_CODES.contains(&code.code()),
            _ => false,
        }
    }

    /// Whether the request went unserved: a server fault or shed. What
    /// availability counts against: a shed request was not served either.
    pub fn is_unserved(self) -> bool {
        self.is_shed() || self.is_server_fault()
    }

    /// The label.
    pub fn as_label(self) -> std::borrow::Cow<'static, str> {
        match self {
            Outcome::Ok => "ok".into(),
            Outcome::Shed => "shed".into(),
            Outcome::Http(status) => format!("http_{status}").into(),
            Outcome::Grpc(code) => grpc_label(code.code()).into(),
            Outcome::StreamRefused => "grpc_stream_refused".into(),
            Outcome::StreamEnded => "grpc_stream_ended".into(),
            Outcome::StreamError => "grpc_stream_error".into(),
            Outcome::TaskFailed => "task_failed".into(),
            Outcome::TaskTimeout => "task_timeout".into(),
            Outcome::Transport(t) => t.label().into(),
        }
    }

    /// A PromQL regular expression matching the labels of unserved requests
    /// (server faults and shed ones), from [`Outcome::is_unserved`].
    pub fn unserved_regex() -> String {
        format!("{}|{}", Outcome::Shed.as_label(), Outcome::server_fault_regex())
    }

    /// A PromQL regular expression matching the labels of server faults
    /// (`outcome=~"..."`), from the same definition as [`Outcome::is_server_fault`].
    pub fn server_fault_regex() -> String {
        let mut parts = vec!["http_5..".to_owned(), "error_.*".to_owned()];
        parts.extend(SERVER_FAULT_CODES.map(grpc_label));
        parts.join("|")
    }
}

/// How long a gRPC status's retry pushback asks the client to wait, if it has one.
pub fn pushback(status: &tonic::Status) -> Option<std::time::Duration> {
    let millis = status.metadata().get("grpc-retry-pushback-ms")?.to_str().ok()?.parse::<u64>().ok()?;
    Some(std::time::Duration::from_millis(millis))
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.as_label())
    }
}

impl FromStr for Outcome {
    type Err = String;

    fn from_str(s: &str) -> Result<Outcome, String> {
        let fixed = [
            Outcome::Ok,
            Outcome::Shed,
            Outcome::StreamRefused,
            Outcome::StreamEnded,
            Outcome::StreamError,
            Outcome::TaskFailed,
            Outcome::TaskTimeout,
        ];
        if let Some(outcome) =
            fixed.into_iter().chain(Transport::ALL.map(Outcome::Transport)).find(|o| o.as_label() == s)
        {
            return Ok(outcome);
        }
        if let Some(status) = s.strip_prefix("http_").and_then(|n| n.parse::<u16>().ok()) {
            return Ok(Outcome::Http(status));
        }
        (1..=16)
            .map(|code| Outcome::Grpc(GrpcCode(code)))
            .find(|o| o.as_label() == s)
            .ok_or_else(|| format!("unknown outcome `{s}`"))
    }
}

impl Serialize for Outcome {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.as_label())
    }
}

impl<'de> Deserialize<'de> for Outcome {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Outcome, D::Error> {
        let label = std::borrow::Cow::<'de, str>::deserialize(deserializer)?;
        label.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_round_trip_and_server_faults_are_the_servers() {
        let outcomes = [
            Outcome::Ok,
            Outcome::Shed,
            Outcome::Http(503),
            Outcome::Http(404),
            Outcome::Grpc(tonic::Code::Unavailable.into()),
            Outcome::Grpc(tonic::Code::NotFound.into()),
            Outcome::Grpc(tonic::Code::DeadlineExceeded.into()),
            Outcome::StreamRefused,
            Outcome::TaskTimeout,
            Outcome::Transport(Transport::Timeout),
        ];
        for outcome in outcomes {
            assert_eq!(outcome.as_label().parse::<Outcome>().unwrap(), outcome, "{outcome}");
        }
        let faults: Vec<String> =
            outcomes.iter().filter(|o| o.is_server_fault()).map(|o| o.as_label().into_owned()).collect();
        assert_eq!(faults, ["http_503", "grpc_unavailable", "grpc_deadlineexceeded", "error_timeout"]);
        assert!("sparkles".parse::<Outcome>().is_err());
        assert_eq!(Outcome::of_http(503, true), Outcome::Shed);
        assert_eq!(Outcome::of_http(503, false), Outcome::Http(503));
        assert!(Outcome::Shed.is_unserved() && !Outcome::Shed.is_server_fault());
        let mut refused = tonic::Status::unavailable("at the limit");
        assert_eq!(Outcome::of_grpc::<()>(&Err(refused.clone())), Outcome::Grpc(tonic::Code::Unavailable.into()));
        refused.metadata_mut().insert("grpc-retry-pushback-ms", 250u64.into());
        assert_eq!(Outcome::of_grpc::<()>(&Err(refused.clone())), Outcome::Shed);
        assert_eq!(pushback(&refused), Some(std::time::Duration::from_millis(250)));
        assert_eq!(
            Outcome::server_fault_regex(),
            "http_5..|error_.*|grpc_unavailable|grpc_internal|grpc_unknown|grpc_deadlineexceeded"
        );
    }
}
