//! Where the harness reaches a running topology: what Prometheus scrapes,
//! where the users connect, where Redis and each agents process answer.
//! Made from the plan and the host-side address of each service's ports, so
//! both backends give the same endpoints.

use std::net::SocketAddr;

use crate::plan::{PortKind, ServiceKind, ServicePlan};

/// A Prometheus scrape target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScrapeTarget {
    /// The job label (`gateway`, `agents`, `search`, `loadgen`).
    pub job: String,
    /// host:port of `/metrics`.
    pub addr: SocketAddr,
}

/// One agents process's APIs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AgentUrls {
    /// REST base URL.
    pub rest: String,
    /// gRPC URL.
    pub grpc: String,
}

/// The running topology, from the host.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Endpoints {
    /// What Prometheus scrapes.
    pub targets: Vec<ScrapeTarget>,
    /// REST base URLs the users connect to: the load balancer's, or each gateway replica's.
    pub rest_urls: Vec<String>,
    /// gRPC URLs the users connect to, likewise (none for the monolith).
    pub grpc_urls: Vec<String>,
    /// Redis, which holds the tasks (none for the monolith).
    pub redis_url: Option<String>,
    /// The broker's bootstrap address, where the host can use it (a broker
    /// that advertises a container's name cannot be: none in docker).
    pub kafka: Option<String>,
    /// Each agents process's APIs.
    pub agents: Vec<AgentUrls>,
}

impl Endpoints {
    /// The endpoints of `plans`, whose ports the host reaches at `host(service, port)`.
    pub fn of(plans: &[ServicePlan], host: impl Fn(&str, PortKind) -> SocketAddr) -> Endpoints {
        let mut endpoints = Endpoints::default();
        let http = |s: &ServicePlan, port| format!("http://{}", host(&s.name, port));
        for service in plans {
            for (job, port) in &service.scrape {
                endpoints.targets.push(ScrapeTarget { job: (*job).to_owned(), addr: host(&service.name, *port) });
            }
            match service.kind {
                ServiceKind::Redis => {
                    endpoints.redis_url = Some(format!("redis://{}", host(&service.name, PortKind::Redis)))
                }
                ServiceKind::Agents => endpoints
                    .agents
                    .push(AgentUrls { rest: http(service, PortKind::Http), grpc: http(service, PortKind::Grpc) }),
                ServiceKind::Gateway => {
                    endpoints.rest_urls.push(http(service, PortKind::Http));
                    endpoints.grpc_urls.push(http(service, PortKind::Grpc));
                }
                ServiceKind::Monolith => endpoints.rest_urls.push(http(service, PortKind::Http)),
                // The users go through the balancer, not to the replicas.
                ServiceKind::LoadBalancer => {
                    endpoints.rest_urls = vec![http(service, PortKind::Http)];
                    endpoints.grpc_urls = vec![http(service, PortKind::Grpc)];
                }
                ServiceKind::Broker => endpoints.kafka = Some(host(&service.name, PortKind::Kafka).to_string()),
                ServiceKind::Search => {}
            }
        }
        endpoints
    }
}
