//! The services' config files, rendered once a backend knows the addresses:
//! TOML tables for our own binaries, nginx's config for the load balancer.

use std::path::Path;

use q2o_common::domain::AgentType;
use toml::{Table, Value};

use crate::balancer::Balancer;
use crate::plan::{ConfigFile, PortKind, Resolve, ServicePlan};
use crate::topology::AdmissionControl;

/// The gateway's per-tenant token bucket. Without a quota no tenant may be
/// throttled during a load test (all users share one API key), yet the
/// bucket's script still runs on every request; a quota holds one second's worth.
fn bucket(tenant_rate_limit: Option<f64>) -> Value {
    let (capacity, refill) = match tenant_rate_limit {
        Some(rate) => (rate.ceil() as i64, rate),
        None => (100_000_000, 100_000_000.0),
    };
    Value::Table(table([("capacity", Value::Integer(capacity)), ("refill_per_second", Value::Float(refill))]))
}

/// The gateway's `[admission]` table; the gateway's own default when adaptive.
fn admission(control: AdmissionControl) -> Option<Value> {
    let mode = |m: &str| ("mode", Value::String(m.into()));
    match control {
        AdmissionControl::Adaptive => None,
        AdmissionControl::Off => Some(Value::Table(table([mode("off")]))),
        AdmissionControl::Static(limit) => {
            Some(Value::Table(table([mode("static"), ("limit", Value::Integer(limit as i64))])))
        }
    }
}

/// A gateway's own table: its bucket and its admission control.
fn gateway(tenant_rate_limit: Option<f64>, control: AdmissionControl) -> Table {
    let mut gateway = table([("rate_limit", bucket(tenant_rate_limit))]);
    if let Some(admission) = admission(control) {
        gateway.insert("admission".into(), admission);
    }
    gateway
}

fn table(pairs: impl IntoIterator<Item = (&'static str, Value)>) -> Table {
    pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
}

/// The text of `service`'s config file.
pub fn render(config: &ConfigFile, service: &ServicePlan, resolve: &dyn Resolve) -> String {
    let toml = |table: Table| toml::to_string(&table).expect("a TOML table serializes");
    match config {
        ConfigFile::Gateway { tenant_rate_limit, admission } => toml(gateway(*tenant_rate_limit, *admission)),
        ConfigFile::Monolith { tenant_rate_limit, admission } => {
            let grpc = resolve.listen(&service.name, PortKind::Grpc).to_string();
            let mut gateway = gateway(*tenant_rate_limit, *admission);
            gateway.insert("grpc_addr".into(), Value::String(grpc));
            toml(table([("gateway", Value::Table(gateway))]))
        }
        ConfigFile::Agents { inter_agent, kafka, workers_per_type, inter_agent_nice } => {
            let mut agents = table([("inter_agent", Value::String(inter_agent.as_str().into()))]);
            if let Some(nice) = inter_agent_nice {
                agents.insert("inter_agent_nice".into(), Value::Integer(i64::from(*nice)));
            }
            if let Some(broker) = kafka {
                let groups = ["analytics", "audit"].map(|g| Value::String(g.into()));
                agents.insert("consumer_groups".into(), Value::Array(groups.to_vec()));
                let bootstrap = table([("bootstrap_servers", Value::String(resolve.peer(broker)))]);
                agents.insert("kafka".into(), Value::Table(bootstrap));
            }
            if let Some(workers) = workers_per_type {
                let pools = AgentType::ALL
                    .iter()
                    .map(|agent_type| {
                        let large = matches!(agent_type.as_str(), "coder" | "researcher" | "qa" | "security");
                        Value::Table(table([
                            ("agent_type", Value::String(agent_type.as_str().into())),
                            ("workers", Value::Integer(*workers as i64)),
                            ("model", Value::String(if large { "sim-large" } else { "sim-small" }.into())),
                        ]))
                    })
                    .collect();
                agents.insert("pools".into(), Value::Array(pools));
            }
            toml(agents)
        }
        ConfigFile::Balancer { rest, grpc } => {
            let upstreams = |ports: &[crate::plan::PortRef]| ports.iter().map(|p| resolve.peer(p)).collect::<Vec<_>>();
            let (rest_upstreams, grpc_upstreams) = (upstreams(rest), upstreams(grpc));
            let work_dir = resolve.scratch_dir(&service.name);
            Balancer {
                rest: resolve.listen(&service.name, PortKind::Http),
                grpc: resolve.listen(&service.name, PortKind::Grpc),
                rest_upstreams: &rest_upstreams,
                grpc_upstreams: &grpc_upstreams,
                work_dir: Path::new(&work_dir),
            }
            .config()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{TestHost, plan};
    use crate::topology::Topology;

    const FIXED: TestHost = TestHost { sockets: false };

    #[test]
    fn configs_are_the_services_own_schemas() {
        let t: Topology = toml::from_str(
            "redis = true\nkafka = true\ngateways = 2\nload_balancer = true\nworkers_per_type = 3\ninter_agent = \"grpc\"",
        )
        .unwrap();
        let plans = plan(&t);
        let rendered = |name: &str| {
            let service = plans.iter().find(|s| s.name == name).unwrap();
            render(service.config.as_ref().unwrap(), service, &FIXED)
        };
        let agents: Table = toml::from_str(&rendered("agents-0")).unwrap();
        assert_eq!(agents["inter_agent"].as_str(), Some("grpc"));
        assert_eq!(agents["kafka"]["bootstrap_servers"].as_str(), Some("broker:9092"));
        assert_eq!(agents["pools"].as_array().unwrap().len(), AgentType::ALL.len());
        // Tiered, the agents run in the background and their calls to QA with the serving tier.
        assert_eq!(agents["inter_agent_nice"].as_integer(), Some(0));
        let equal = plan(&toml::from_str("redis = true\ncpu_priorities = \"equal\"").unwrap());
        let same = equal.iter().find(|s| s.name == "agents-0").unwrap();
        let same: Table = toml::from_str(&render(same.config.as_ref().unwrap(), same, &FIXED)).unwrap();
        assert!(!same.contains_key("inter_agent_nice"), "at equal priorities the lane is the process's");
        let gateway: Table = toml::from_str(&rendered("gateway-0")).unwrap();
        assert_eq!(gateway["rate_limit"]["capacity"].as_integer(), Some(100_000_000));
        // A quota holds one second's worth of requests.
        let quota = plan(&toml::from_str("redis = true\ntenant_rate_limit = 40.5").unwrap());
        let gateway = quota.iter().find(|s| s.name == "gateway-0").unwrap();
        let gateway: Table = toml::from_str(&render(gateway.config.as_ref().unwrap(), gateway, &FIXED)).unwrap();
        assert_eq!(gateway["rate_limit"]["capacity"].as_integer(), Some(41));
        assert_eq!(gateway["rate_limit"]["refill_per_second"].as_float(), Some(40.5));
        assert!(!gateway.contains_key("admission"), "adaptive is the gateway's own default");
        let fixed = plan(&toml::from_str("redis = true\nadmission = 64").unwrap());
        let gateway = fixed.iter().find(|s| s.name == "gateway-0").unwrap();
        let gateway: Table = toml::from_str(&render(gateway.config.as_ref().unwrap(), gateway, &FIXED)).unwrap();
        assert_eq!(gateway["admission"]["mode"].as_str(), Some("static"));
        assert_eq!(gateway["admission"]["limit"].as_integer(), Some(64));
        let err = toml::from_str::<crate::topology::Topology>("redis = true\nadmission = \"maybe\"").unwrap_err();
        assert!(err.to_string().contains("not an admission control"), "{err}");
        let nginx = rendered("load-balancer");
        assert!(nginx.contains("server gateway-1:9090 max_fails=1"), "{nginx}");
        assert!(nginx.contains("pid /tmp/load-balancer/nginx.pid;"), "{nginx}");
        let monolith = plan(&toml::from_str("monolith = true").unwrap()).remove(0);
        let text = render(monolith.config.as_ref().unwrap(), &monolith, &FIXED);
        let config: Table = toml::from_str(&text).unwrap();
        assert_eq!(config["gateway"]["grpc_addr"].as_str(), Some("127.0.0.1:9090"));
    }
}
