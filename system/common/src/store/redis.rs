//! [`Store`] on Redis: what the replicated stack (phase1 and later) runs on.
//!
//! Queues are Redis Streams, one per agent type, read by the consumer group
//! `q2o-agents`: an entry stays pending until a worker acknowledges it, and
//! `XAUTOCLAIM` hands a dead worker's entries to a live one. Task state lives in a
//! hash whose status transitions run as Lua scripts, so a task is finished at most
//! once however often it is delivered.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;
use redis::aio::{ConnectionManager, ConnectionManagerConfig, MultiplexedConnection};
use redis::streams::{StreamAutoClaimOptions, StreamAutoClaimReply, StreamId, StreamReadOptions, StreamReadReply};
use redis::{AsyncCommands, AsyncConnectionConfig, Client, Script};
use time::format_description::well_known::Rfc3339;
use tokio::sync::{OnceCell, broadcast};
use tokio::task::JoinHandle;

use super::project_channels::ProjectChannels;
use super::task_hash;
use super::{CacheType, Claim, NotificationHub, RateDecision, Started, Starter, Store, StoreError, TokenBucket, keys};
use crate::domain::{
    AgentEvent, AgentEventType, AgentType, Notification, Page, Project, ProjectId, ProjectStatusSummary, Published,
    Task, TaskId, TaskStatus, TaskUpdate, TenantId, now, rfc3339,
};

/// Marks a task running unless it is gone or finished, and announces it: the
/// task's update (ARGV[3] on channel ARGV[2]) and its `task_started` event
/// (on channel ARGV[4]), whose JSON is ARGV[5], the attempt's number, ARGV[6]:
/// only the script knows the number, and the event carries it. Returns the
/// updated hash (as a flat field/value list) and the project's document
/// (KEYS[3]) when it started the task, nil when it did not.
const START_TASK: &str = r"
local status = redis.call('HGET', KEYS[1], 'status')
if not status or status == 'completed' or status == 'failed' then return false end
redis.call('HSET', KEYS[1], 'status', 'running', 'updated_at', ARGV[1])
local attempt = redis.call('HINCRBY', KEYS[1], 'attempts', 1)
if status == 'queued' and redis.call('EXISTS', KEYS[2]) == 1 then
  redis.call('HINCRBY', KEYS[2], 'queued', -1)
  redis.call('HINCRBY', KEYS[2], 'running', 1)
end
redis.call('PUBLISH', ARGV[2], ARGV[3])
redis.call('PUBLISH', ARGV[4], ARGV[5] .. attempt .. ARGV[6])
return {redis.call('HGETALL', KEYS[1]), redis.call('GET', KEYS[3])}
";

/// Finishes a task unless it is gone or already finished, publishing the
/// channel/message pairs from ARGV[7] on when it did, and acknowledges queue
/// entry ARGV[6] of KEYS[3] for group ARGV[5] either way. Returns 1 when it
/// finished the task, 0 when it did not. Not the hash: the caller has what it
/// holds, and a completed task's result is kilobytes to send back and parse.
const FINISH_TASK: &str = r"
local status = redis.call('HGET', KEYS[1], 'status')
local finished = 0
if status and status ~= 'completed' and status ~= 'failed' then
  redis.call('HSET', KEYS[1], 'status', ARGV[1], 'updated_at', ARGV[2], 'result', ARGV[3], 'error', ARGV[4])
  if redis.call('EXISTS', KEYS[2]) == 1 then
    redis.call('HINCRBY', KEYS[2], status, -1)
    redis.call('HINCRBY', KEYS[2], ARGV[1], 1)
  end
  for i = 7, #ARGV, 2 do
    redis.call('PUBLISH', ARGV[i], ARGV[i + 1])
  end
  finished = 1
end
redis.call('XACK', KEYS[3], ARGV[5], ARGV[6])
return finished
";

/// The fields of a task's hash that a [`TaskUpdate`] is made of, in the order
/// `recent_task_updates` reads them.
const UPDATE_FIELDS: [&str; 3] = ["status", "updated_at", "agent_type"];

/// Connection settings of a [`RedisStore`].
#[derive(Clone, Debug)]
pub struct RedisStoreOptions {
    /// `redis://host:port/db`.
    pub url: String,
    /// How long one command may take before it fails.
    pub response_timeout: Duration,
}

impl RedisStoreOptions {
    /// Defaults for `url`.
    pub fn new(url: impl Into<String>) -> Self {
        RedisStoreOptions { url: url.into(), response_timeout: Duration::from_secs(2) }
    }
}

/// The Redis-backed [`Store`].
///
/// Commands share one multiplexed connection (one socket however many requests
/// are in flight). Blocking queue reads get a connection of their own per agent
/// type, since a blocked command would stall everything behind it on a shared one.
pub struct RedisStore {
    client: Client,
    conn: ConnectionManager,
    blocking: Mutex<HashMap<AgentType, MultiplexedConnection>>,
    token_bucket: Script,
    start_task: Script,
    finish_task: Script,
    hub: Arc<NotificationHub>,
    /// Task updates, connected with the first project stream.
    updates: OnceCell<ProjectChannels>,
    /// Agent events, subscribed with the first activity stream.
    activity: OnceCell<Listener>,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore").finish_non_exhaustive()
    }
}

/// The task that feeds pub/sub notifications into the hub; stopped with the store.
struct Listener(JoinHandle<()>);

impl Drop for Listener {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl RedisStore {
    /// Connects to Redis; fails if it cannot be reached.
    pub async fn connect(options: RedisStoreOptions) -> Result<Self, StoreError> {
        let client = Client::open(options.url.as_str())?;
        let config = ConnectionManagerConfig::new()
            .set_response_timeout(Some(options.response_timeout))
            .set_connection_timeout(Some(Duration::from_secs(2)));
        let conn = client.get_connection_manager_with_config(config).await?;
        Ok(RedisStore {
            client,
            conn,
            blocking: Mutex::new(HashMap::new()),
            token_bucket: Script::new(include_str!("token_bucket.lua")),
            start_task: Script::new(START_TASK),
            finish_task: Script::new(FINISH_TASK),
            hub: Arc::default(),
            updates: OnceCell::new(),
            activity: OnceCell::new(),
        })
    }

    fn conn(&self) -> ConnectionManager {
        self.conn.clone()
    }

    async fn blocking_conn(&self, agent: AgentType, wait: Duration) -> Result<MultiplexedConnection, StoreError> {
        if let Some(conn) = self.blocking.lock().expect("lock is never poisoned").get(&agent) {
            return Ok(conn.clone());
        }
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(wait + Duration::from_secs(5)));
        let conn = self.client.get_multiplexed_async_connection_with_config(&config).await?;
        self.blocking.lock().expect("lock is never poisoned").insert(agent, conn.clone());
        Ok(conn)
    }

    /// Starts the listener of `pattern`'s channels on first use; it
    /// reconnects until the store is dropped.
    async fn ensure_listener(&self, listener: &OnceCell<Listener>, pattern: &'static str) -> Result<(), StoreError> {
        listener
            .get_or_try_init(|| async {
                // Subscribe before returning, so nothing published after a
                // subscribe_* call returns can be missed.
                let mut pubsub = self.client.get_async_pubsub().await?;
                pubsub.psubscribe(pattern).await?;
                let client = self.client.clone();
                let hub = Arc::clone(&self.hub);
                Ok::<_, StoreError>(Listener(tokio::spawn(async move {
                    let mut pubsub = Some(pubsub);
                    loop {
                        if let Some(connected) = pubsub.take() {
                            let mut messages = connected.into_on_message();
                            while let Some(msg) = messages.next().await {
                                if let Err(err) = hub.dispatch_json(msg.get_payload_bytes()) {
                                    tracing::warn!(%err, "ignoring malformed notification");
                                }
                            }
                            tracing::warn!(pattern, "notification subscription lost; reconnecting");
                        }
                        tokio::time::sleep(Duration::from_millis(500)).await;
                        match client.get_async_pubsub().await {
                            Ok(mut fresh) => match fresh.psubscribe(pattern).await {
                                Ok(()) => pubsub = Some(fresh),
                                Err(err) => tracing::warn!(%err, pattern, "cannot resubscribe to notifications"),
                            },
                            Err(err) => tracing::warn!(%err, "cannot reconnect for notifications"),
                        }
                    }
                })))
            })
            .await?;
        Ok(())
    }

    /// A page of the tenant's projects as stored: each one's key and JSON document.
    async fn project_docs(&self, tenant: &TenantId, page: Page) -> Result<Vec<(String, String)>, StoreError> {
        let start = page.offset as isize;
        let stop = start + page.limit as isize - 1;
        let ids: Vec<String> = self.conn().zrange(keys::projects(tenant), start, stop).await?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let keys: Vec<String> =
            ids.iter().filter_map(|id| id.parse().ok()).map(|id| keys::project(tenant, id)).collect();
        let docs: Vec<Option<String>> = self.conn().mget(&keys).await?;
        // A project deleted since the ZRANGE has no document any more.
        Ok(keys.into_iter().zip(docs).filter_map(|(key, doc)| Some((key, doc?))).collect())
    }

    async fn load_task(&self, key: &str) -> Result<Option<Task>, StoreError> {
        let fields: HashMap<String, String> = self.conn().hgetall(key).await?;
        task_hash::task(key, &fields)
    }
}

/// The bucket script's reply as a decision.
fn decision(bucket: TokenBucket, allowed: bool, remaining: i64, retry_ms: i64, reset_ms: i64) -> RateDecision {
    RateDecision {
        allowed,
        limit: bucket.capacity,
        remaining: remaining.max(0) as u32,
        retry_after: Duration::from_millis(retry_ms.max(0) as u64),
        reset_after: Duration::from_millis(reset_ms.max(0) as u64),
    }
}

fn claim_from_entry(agent: AgentType, entry: &StreamId) -> Option<Claim> {
    let tenant: String = entry.get("tenant")?;
    let task: String = entry.get("task_id")?;
    let project: Option<String> = entry.get("project_id");
    Some(Claim {
        agent_type: agent,
        entry_id: entry.id.clone(),
        tenant: tenant.parse().ok()?,
        project_id: project.and_then(|p| p.parse().ok()),
        task_id: task.parse().ok()?,
    })
}

fn score(at: time::OffsetDateTime) -> i64 {
    (at.unix_timestamp_nanos() / 1_000_000) as i64
}

#[async_trait]
impl Store for RedisStore {
    fn backend(&self) -> &'static str {
        "redis"
    }

    async fn ping(&self) -> Result<(), StoreError> {
        let _: String = redis::cmd("PING").query_async(&mut self.conn()).await?;
        Ok(())
    }

    async fn create_session(&self, token: &str, tenant: &TenantId, ttl: Duration) -> Result<(), StoreError> {
        let _: () = self.conn().set_ex(keys::session(token), tenant.as_str(), ttl.as_secs().max(1)).await?;
        Ok(())
    }

    async fn session(&self, token: &str) -> Result<Option<(TenantId, Duration)>, StoreError> {
        let key = keys::session(token);
        // One round trip, two plain commands: cheaper inside Redis than a script.
        let (tenant, ttl_ms): (Option<String>, i64) =
            redis::pipe().get(&key).pttl(&key).query_async(&mut self.conn()).await?;
        let Some(tenant) = tenant else { return Ok(None) };
        let tenant = tenant.parse().map_err(|e| StoreError::corrupt(&key, e))?;
        // -1 (no expiry) is not a session this store wrote: live, but not for caching.
        Ok(Some((tenant, Duration::from_millis(ttl_ms.max(0) as u64))))
    }

    async fn take_tokens(
        &self,
        tenant: &TenantId,
        bucket: TokenBucket,
        want: u32,
    ) -> Result<(u32, RateDecision), StoreError> {
        let (granted, remaining, retry_ms, reset_ms): (i64, i64, i64, i64) = self
            .token_bucket
            .key(keys::rate_limit(tenant))
            .arg(bucket.capacity)
            .arg(bucket.refill_per_second)
            .arg(want.max(1))
            .invoke_async(&mut self.conn())
            .await?;
        let granted = granted.clamp(0, i64::from(want.max(1))) as u32;
        Ok((granted, decision(bucket, granted > 0, remaining, retry_ms, reset_ms)))
    }

    async fn insert_project(&self, project: &Project) -> Result<(), StoreError> {
        let json = serde_json::to_string(project).expect("projects serialize");
        let _: () = redis::pipe()
            .atomic()
            .set(keys::project(&project.tenant, project.id), json)
            .zadd(keys::projects(&project.tenant), project.id.to_string(), score(project.created_at))
            .query_async(&mut self.conn())
            .await?;
        Ok(())
    }

    async fn replace_project(&self, project: &Project) -> Result<bool, StoreError> {
        let json = serde_json::to_string(project).expect("projects serialize");
        // SET XX: only if it still exists, so a concurrent delete is not undone.
        let replaced: Option<String> = redis::cmd("SET")
            .arg(keys::project(&project.tenant, project.id))
            .arg(json)
            .arg("XX")
            .query_async(&mut self.conn())
            .await?;
        Ok(replaced.is_some())
    }

    async fn project(&self, tenant: &TenantId, id: ProjectId) -> Result<Option<Project>, StoreError> {
        let key = keys::project(tenant, id);
        let json: Option<String> = self.conn().get(&key).await?;
        json.map(|j| serde_json::from_str(&j).map_err(|e| StoreError::corrupt(&key, e))).transpose()
    }

    async fn projects(&self, tenant: &TenantId, page: Page) -> Result<Vec<Project>, StoreError> {
        let docs = self.project_docs(tenant, page).await?;
        docs.into_iter()
            .map(|(key, doc)| serde_json::from_str(&doc).map_err(|e| StoreError::corrupt(&key, e)))
            .collect()
    }

    // The stored document is the project's serde encoding (`insert_project`,
    // `replace_project`), the very bytes a REST answer carries.
    async fn project_json(&self, tenant: &TenantId, id: ProjectId) -> Result<Option<String>, StoreError> {
        Ok(self.conn().get(keys::project(tenant, id)).await?)
    }

    async fn projects_json(&self, tenant: &TenantId, page: Page) -> Result<Vec<String>, StoreError> {
        Ok(self.project_docs(tenant, page).await?.into_iter().map(|(_, doc)| doc).collect())
    }

    async fn delete_project(&self, tenant: &TenantId, id: ProjectId) -> Result<bool, StoreError> {
        let tasks_key = keys::project_tasks(tenant, id);
        let task_ids: Vec<String> = self.conn().zrange(&tasks_key, 0, -1).await?;
        let mut pipe = redis::pipe();
        pipe.atomic()
            .del(keys::project(tenant, id))
            .zrem(keys::projects(tenant), id.to_string())
            .ignore()
            .del(&tasks_key)
            .ignore()
            .del(keys::project_stats(tenant, id))
            .ignore();
        for task in task_ids.iter().filter_map(|t| t.parse().ok()) {
            pipe.del(keys::task(tenant, task)).ignore();
        }
        let (deleted,): (u64,) = pipe.query_async(&mut self.conn()).await?;
        Ok(deleted == 1)
    }

    async fn submit_task(&self, task: &Task) -> Result<(), StoreError> {
        let doc = serde_json::to_string(task).expect("tasks serialize");
        let updated = rfc3339(task.updated_at);
        let _: () = redis::pipe()
            .atomic()
            .hset_multiple(
                keys::task(&task.tenant, task.id),
                &[
                    ("doc", doc.as_str()),
                    ("status", task.status.as_str()),
                    ("attempts", "0"),
                    ("updated_at", updated.as_str()),
                    ("agent_type", task.agent_type.as_str()),
                ],
            )
            .ignore()
            .zadd(keys::project_tasks(&task.tenant, task.project_id), task.id.to_string(), score(task.created_at))
            .ignore()
            .hincr(keys::project_stats(&task.tenant, task.project_id), "total", 1)
            .ignore()
            .hincr(keys::project_stats(&task.tenant, task.project_id), task.status.as_str(), 1)
            .ignore()
            .xadd(
                keys::queue(task.agent_type),
                "*",
                &[
                    ("tenant", task.tenant.to_string()),
                    ("task_id", task.id.to_string()),
                    ("project_id", task.project_id.to_string()),
                ],
            )
            .ignore()
            .query_async(&mut self.conn())
            .await?;
        Ok(())
    }

    async fn task(&self, tenant: &TenantId, id: TaskId) -> Result<Option<Task>, StoreError> {
        self.load_task(&keys::task(tenant, id)).await
    }

    async fn task_json(&self, tenant: &TenantId, id: TaskId) -> Result<Option<String>, StoreError> {
        let key = keys::task(tenant, id);
        let fields: HashMap<String, String> = self.conn().hgetall(&key).await?;
        task_hash::task_json(&key, &fields)
    }

    async fn tasks(&self, tenant: &TenantId, project: ProjectId, page: Page) -> Result<Vec<Task>, StoreError> {
        let start = page.offset as isize;
        let stop = start + page.limit as isize - 1;
        let ids: Vec<String> = self.conn().zrange(keys::project_tasks(tenant, project), start, stop).await?;
        let keys: Vec<String> = ids.iter().filter_map(|id| id.parse().ok()).map(|id| keys::task(tenant, id)).collect();
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for key in &keys {
            pipe.hgetall(key);
        }
        let hashes: Vec<HashMap<String, String>> = pipe.query_async(&mut self.conn()).await?;
        let mut tasks = Vec::with_capacity(keys.len());
        for (key, fields) in keys.iter().zip(hashes) {
            tasks.extend(task_hash::task(key, &fields)?);
        }
        Ok(tasks)
    }

    async fn recent_task_updates(
        &self,
        tenant: &TenantId,
        project: ProjectId,
        last: u32,
    ) -> Result<Vec<TaskUpdate>, StoreError> {
        if last == 0 {
            return Ok(Vec::new());
        }
        let start = -(last as isize);
        let ids: Vec<String> = self.conn().zrange(keys::project_tasks(tenant, project), start, -1).await?;
        let ids: Vec<TaskId> = ids.iter().filter_map(|id| id.parse().ok()).collect();
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let keys: Vec<String> = ids.iter().map(|id| keys::task(tenant, *id)).collect();
        let mut pipe = redis::pipe();
        for key in &keys {
            pipe.cmd("HMGET").arg(key).arg(&UPDATE_FIELDS[..]);
        }
        let rows: Vec<[Option<String>; 3]> = pipe.query_async(&mut self.conn()).await?;
        let mut updates = Vec::with_capacity(rows.len());
        for ((key, id), [status, at, agent]) in keys.iter().zip(ids).zip(rows) {
            // Gone with its project since the ZRANGE.
            let (Some(status), Some(at)) = (status, at) else { continue };
            let agent_type = match agent {
                Some(agent) => agent.parse().map_err(|e| StoreError::corrupt(key, e))?,
                // Written before the hash carried its agent type: its document has it.
                None => match self.load_task(key).await? {
                    Some(task) => task.agent_type,
                    None => continue,
                },
            };
            updates.push(TaskUpdate {
                tenant: tenant.clone(),
                task_id: id,
                project_id: project,
                agent_type,
                status: status.parse().map_err(|e| StoreError::corrupt(key, e))?,
                at: time::OffsetDateTime::parse(&at, &Rfc3339).map_err(|e| StoreError::corrupt(key, e))?,
            });
        }
        Ok(updates)
    }

    async fn project_status(&self, tenant: &TenantId, project: ProjectId) -> Result<ProjectStatusSummary, StoreError> {
        let counts: HashMap<String, i64> = self.conn().hgetall(keys::project_stats(tenant, project)).await?;
        let count = |field: &str| counts.get(field).copied().unwrap_or(0).max(0) as u64;
        Ok(ProjectStatusSummary {
            project_id: project,
            total: count("total"),
            queued: count("queued"),
            running: count("running"),
            completed: count("completed"),
            failed: count("failed"),
        })
    }

    async fn ensure_queues(&self, agents: &[AgentType]) -> Result<(), StoreError> {
        for &agent in agents {
            // From id 0: tasks submitted before any worker existed are served too.
            let created: Result<(), _> =
                self.conn().xgroup_create_mkstream(keys::queue(agent), keys::AGENT_GROUP, "0").await;
            match created {
                Ok(()) => {}
                Err(err) if err.code() == Some("BUSYGROUP") => {}
                Err(err) => return Err(err.into()),
            }
        }
        Ok(())
    }

    async fn claim_tasks(
        &self,
        agent: AgentType,
        consumer: &str,
        max: usize,
        wait: Duration,
    ) -> Result<Vec<Claim>, StoreError> {
        let mut conn = self.blocking_conn(agent, wait).await?;
        let options = StreamReadOptions::default()
            .group(keys::AGENT_GROUP, consumer)
            .count(max)
            .block(wait.as_millis().max(1) as usize);
        let reply: Option<StreamReadReply> = match conn.xread_options(&[keys::queue(agent)], &[">"], &options).await {
            Ok(reply) => reply,
            Err(err) => {
                // A multiplexed connection does not come back after Redis
                // restarts: drop it so that the next read dials again.
                self.blocking.lock().expect("lock is never poisoned").remove(&agent);
                return Err(err.into());
            }
        };
        let Some(reply) = reply else { return Ok(Vec::new()) };
        let entries = reply.keys.into_iter().flat_map(|k| k.ids);
        Ok(self.claims_or_ack_malformed(agent, entries).await)
    }

    async fn reclaim_stale_tasks(
        &self,
        agent: AgentType,
        consumer: &str,
        min_idle: Duration,
        max: usize,
    ) -> Result<Vec<Claim>, StoreError> {
        let options = StreamAutoClaimOptions::default().count(max);
        let reply: StreamAutoClaimReply = self
            .conn()
            .xautoclaim_options(
                keys::queue(agent),
                keys::AGENT_GROUP,
                consumer,
                min_idle.as_millis() as u64,
                "0-0",
                options,
            )
            .await?;
        Ok(self.claims_or_ack_malformed(agent, reply.claimed).await)
    }

    async fn ack(&self, claim: &Claim) -> Result<(), StoreError> {
        let _: u64 = self.conn().xack(keys::queue(claim.agent_type), keys::AGENT_GROUP, &[&claim.entry_id]).await?;
        Ok(())
    }

    async fn queued_tasks(&self) -> Result<u64, StoreError> {
        let mut total = 0;
        for agent in AgentType::ALL {
            // XINFO GROUPS (Redis 7): `lag` entries not yet delivered to the
            // group, `pending` delivered and not acknowledged. A queue no
            // agent has consumed yet has no group: all its entries wait.
            let info = redis::cmd("XINFO").arg("GROUPS").arg(keys::queue(agent)).query_async(&mut self.conn()).await;
            let groups: redis::Value = match info {
                Ok(groups) => groups,
                // "ERR no such key": nothing was ever queued for this agent type.
                Err(err) if err.code() == Some("ERR") => continue,
                Err(err) => return Err(err.into()),
            };
            let mut found_group = false;
            for group in group_infos(&groups) {
                if group.get("name").map(String::as_str) != Some(keys::AGENT_GROUP) {
                    continue;
                }
                found_group = true;
                let number = |field: &str| group.get(field).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
                total += number("lag") + number("pending");
            }
            if !found_group {
                let waiting: u64 = self.conn().xlen(keys::queue(agent)).await?;
                total += waiting;
            }
        }
        Ok(total)
    }

    async fn start_task(&self, claim: &Claim, starter: &Starter) -> Result<Option<Started>, StoreError> {
        let key = keys::task(&claim.tenant, claim.task_id);
        let project = match claim.project_id {
            Some(project) => project,
            // An entry queued by a gateway that did not write the project yet.
            None => match self.load_task(&key).await? {
                Some(task) => task.project_id,
                None => return Ok(None),
            },
        };
        let at = now();
        let update = Notification::Task(TaskUpdate {
            tenant: claim.tenant.clone(),
            task_id: claim.task_id,
            project_id: project,
            agent_type: claim.agent_type,
            status: TaskStatus::Running,
            at,
        });
        let event = Notification::Agent(AgentEvent {
            event_id: starter.event_id,
            agent_id: starter.agent_id.clone(),
            agent_type: claim.agent_type,
            event_type: AgentEventType::TaskStarted,
            task_id: claim.task_id,
            project_id: project,
            tenant: claim.tenant.clone(),
            at,
            payload: serde_json::Value::Null,
        });
        let (event_head, event_tail) = around_attempt(&event);
        let project_key = keys::project(&claim.tenant, project);
        let started: Option<(HashMap<String, String>, Option<String>)> = self
            .start_task
            .key(&key)
            .key(keys::project_stats(&claim.tenant, project))
            .key(&project_key)
            .arg(rfc3339(at))
            .arg(keys::notify(&update))
            .arg(serde_json::to_vec(&update).expect("notifications serialize"))
            .arg(keys::notify(&event))
            .arg(event_head)
            .arg(event_tail)
            .invoke_async(&mut self.conn())
            .await?;
        let Some((fields, project_doc)) = started else { return Ok(None) };
        let Some(task) = task_hash::task(&key, &fields)? else { return Ok(None) };
        let project = project_doc
            .map(|doc| serde_json::from_str(&doc).map_err(|e| StoreError::corrupt(&project_key, e)))
            .transpose()?;
        let event = AgentEvent::task_started(&task, starter.agent_id.clone(), starter.event_id);
        Ok(Some(Started { task, project, event }))
    }

    async fn finish_task(
        &self,
        claim: &Claim,
        finished: &Task,
        notifications: &[Published],
    ) -> Result<bool, StoreError> {
        let result = match &finished.result {
            Some(result) => serde_json::to_string(result).expect("results serialize"),
            None => String::new(),
        };
        let mut script = self.finish_task.key(keys::task(&finished.tenant, finished.id));
        script
            .key(keys::project_stats(&finished.tenant, finished.project_id))
            .key(keys::queue(claim.agent_type))
            .arg(finished.status.as_str())
            .arg(rfc3339(finished.updated_at))
            .arg(result)
            .arg(finished.error.as_deref().unwrap_or_default())
            .arg(keys::AGENT_GROUP)
            .arg(&claim.entry_id);
        for published in notifications {
            script.arg(keys::notify(&published.notification)).arg(published.json().as_ref());
        }
        Ok(script.invoke_async(&mut self.conn()).await?)
    }

    async fn cache_get(&self, cache: CacheType, key: &str) -> Result<Option<String>, StoreError> {
        Ok(self.conn().get(keys::cache(cache, key)).await?)
    }

    async fn cache_put(&self, cache: CacheType, key: &str, value: &str, ttl: Duration) -> Result<(), StoreError> {
        let _: () = self.conn().set_ex(keys::cache(cache, key), value, ttl.as_secs().max(1)).await?;
        Ok(())
    }

    async fn record_event(&self, ledger: &str, event_id: uuid::Uuid) -> Result<bool, StoreError> {
        let added: i64 = self.conn().sadd(keys::ledger(ledger), event_id.as_bytes().as_slice()).await?;
        Ok(added == 1)
    }

    async fn ledger_size(&self, ledger: &str) -> Result<u64, StoreError> {
        Ok(self.conn().scard(keys::ledger(ledger)).await?)
    }

    async fn ledger_absent(&self, ledger: &str, event_ids: &[uuid::Uuid]) -> Result<u64, StoreError> {
        let key = keys::ledger(ledger);
        let mut absent = 0;
        // One SMISMEMBER per thousand ids: a round trip each, bounded replies.
        for chunk in event_ids.chunks(1000) {
            let members: Vec<&[u8]> = chunk.iter().map(|id| id.as_bytes().as_slice()).collect();
            let held: Vec<bool> = self.conn().smismember(&key, members).await?;
            absent += held.iter().filter(|h| !**h).count() as u64;
        }
        Ok(absent)
    }

    async fn publish(&self, notifications: &[Published]) -> Result<(), StoreError> {
        if notifications.is_empty() {
            return Ok(());
        }
        let mut pipe = redis::pipe();
        for published in notifications {
            pipe.publish(keys::notify(&published.notification), published.json().as_ref()).ignore();
        }
        let () = pipe.query_async(&mut self.conn()).await?;
        Ok(())
    }

    async fn subscribe_project(
        &self,
        tenant: &TenantId,
        project: ProjectId,
    ) -> Result<broadcast::Receiver<TaskUpdate>, StoreError> {
        let channels =
            self.updates.get_or_try_init(|| ProjectChannels::start(self.client.clone(), Arc::clone(&self.hub))).await?;
        Ok(channels.subscribe(tenant, project).await)
    }

    async fn subscribe_activity(&self, tenant: &TenantId) -> Result<broadcast::Receiver<AgentEvent>, StoreError> {
        self.ensure_listener(&self.activity, keys::ACTIVITY_PATTERN).await?;
        Ok(self.hub.subscribe_activity(tenant))
    }
}

impl RedisStore {
    /// How many times the server has run each command since it started, by
    /// name (`INFO commandstats`): what a cost measurement divides by requests.
    pub async fn commands_served(&self) -> Result<BTreeMap<String, u64>, StoreError> {
        let info: String = redis::cmd("INFO").arg("commandstats").query_async(&mut self.conn()).await?;
        Ok(command_calls(&info))
    }

    /// Turns stream entries into claims. An entry that is not a task reference
    /// can never be processed, so it is acknowledged (dropped) with a warning
    /// instead of being re-delivered forever.
    async fn claims_or_ack_malformed(
        &self,
        agent: AgentType,
        entries: impl IntoIterator<Item = StreamId>,
    ) -> Vec<Claim> {
        let mut claims = Vec::new();
        for entry in entries {
            match claim_from_entry(agent, &entry) {
                Some(claim) => claims.push(claim),
                None => {
                    tracing::warn!(queue = %agent, entry = %entry.id, "dropping malformed queue entry");
                    let acked: Result<u64, _> =
                        self.conn().xack(keys::queue(agent), keys::AGENT_GROUP, &[&entry.id]).await;
                    if let Err(err) = acked {
                        tracing::warn!(%err, "cannot drop malformed queue entry");
                    }
                }
            }
        }
        claims
    }
}

/// A `task_started` notification's JSON (its event's payload left null) cut
/// where the start script writes the attempt's number: serde writes the
/// payload, an event's last field, as `"payload":null}`, and the script puts
/// `{"attempt":N}` in place of the `null`.
fn around_attempt(notification: &Notification) -> (Vec<u8>, &'static str) {
    const NULL_PAYLOAD: &[u8] = b"null}";
    let mut json = serde_json::to_vec(notification).expect("notifications serialize");
    assert!(json.ends_with(NULL_PAYLOAD), "an event's payload is its last field");
    json.truncate(json.len() - NULL_PAYLOAD.len());
    json.extend_from_slice(br#"{"attempt":"#);
    (json, "}}")
}

/// `calls` of each `cmdstat_<name>:calls=N,usec=...` line of `INFO commandstats`.
fn command_calls(info: &str) -> BTreeMap<String, u64> {
    info.lines()
        .filter_map(|line| {
            let (name, fields) = line.trim().strip_prefix("cmdstat_")?.split_once(':')?;
            let calls = fields.split(',').find_map(|field| field.strip_prefix("calls="))?;
            Some((name.to_owned(), calls.parse().ok()?))
        })
        .collect()
}

/// The groups of an `XINFO GROUPS` reply, each as its fields (name, lag,
/// pending...) rendered as text; RESP2 sends each as a flat field-value array.
fn group_infos(reply: &redis::Value) -> Vec<HashMap<String, String>> {
    let text = |v: &redis::Value| match v {
        redis::Value::BulkString(bytes) => Some(String::from_utf8_lossy(bytes).into_owned()),
        redis::Value::SimpleString(s) => Some(s.clone()),
        redis::Value::Int(n) => Some(n.to_string()),
        _ => None,
    };
    let redis::Value::Array(groups) = reply else { return Vec::new() };
    groups
        .iter()
        .filter_map(|group| match group {
            redis::Value::Array(fields) => {
                Some(fields.chunks(2).filter_map(|pair| Some((text(pair.first()?)?, text(pair.get(1)?)?))).collect())
            }
            redis::Value::Map(pairs) => Some(pairs.iter().filter_map(|(k, v)| Some((text(k)?, text(v)?))).collect()),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_start_script_writes_the_attempt_where_serde_writes_the_payload() {
        let tenant: TenantId = "acme".parse().unwrap();
        let event = |payload| {
            Notification::Agent(AgentEvent {
                event_id: uuid::Uuid::new_v4(),
                agent_id: "coder-w1".into(),
                agent_type: AgentType::Coder,
                event_type: AgentEventType::TaskStarted,
                task_id: TaskId::new(),
                project_id: ProjectId::new(),
                tenant: tenant.clone(),
                at: now(),
                payload,
            })
        };
        let template = event(serde_json::Value::Null);
        let (head, tail) = around_attempt(&template);
        let Notification::Agent(mut started) = template else { unreachable!() };
        started.payload = serde_json::json!({ "attempt": 12 });
        let spliced = [head.as_slice(), b"12", tail.as_bytes()].concat();
        assert_eq!(spliced, serde_json::to_vec(&Notification::Agent(started)).unwrap());
    }

    #[test]
    fn command_calls_are_read_from_info_commandstats() {
        let info = "# Commandstats\r\n\
            cmdstat_evalsha:calls=577,usec=27119,usec_per_call=47.00,rejected_calls=0,failed_calls=0\r\n\
            cmdstat_hgetall:calls=2029,usec=10753,usec_per_call=5.30,rejected_calls=0,failed_calls=0\r\n\
            cmdstat_broken:usec=1\r\n";
        let calls = command_calls(info);
        assert_eq!(calls.into_iter().collect::<Vec<_>>(), [("evalsha".into(), 577), ("hgetall".into(), 2029)]);
    }
}
