//! The two [`Store`] backends hold to the same contract; each property runs
//! against a real redis-server and against the in-memory store.

use std::sync::Arc;
use std::time::Duration;

use q2o_common::domain::{
    AgentEvent, AgentEventType, AgentType, Notification, Page, Project, ProjectId, ProjectStatus, Published, Task,
    TaskId, TaskOutcome, TaskResult, TaskStatus, TaskUpdate, TenantId, now,
};
use q2o_common::store::{Claim, MemoryStore, RedisStore, RedisStoreOptions, Starter, Store, TokenBucket};
use q2o_testkit::RedisServer;

async fn backends() -> (RedisServer, Vec<Arc<dyn Store>>) {
    let redis = RedisServer::start().expect("redis-server starts");
    let store = RedisStore::connect(RedisStoreOptions::new(redis.url())).await.unwrap();
    (redis, vec![Arc::new(store), Arc::new(MemoryStore::new())])
}

fn tenant(name: &str) -> TenantId {
    name.parse().unwrap()
}

fn project(tenant: &TenantId) -> Project {
    Project {
        id: ProjectId::new(),
        tenant: tenant.clone(),
        name: "p".into(),
        description: String::new(),
        objective: String::new(),
        tags: vec!["a".into()],
        status: ProjectStatus::Active,
        created_at: now(),
        updated_at: now(),
    }
}

fn task(project: &Project, agent: AgentType) -> Task {
    Task::queued(project.tenant.clone(), project.id, agent, "d".into())
}

/// A task of a new project of acme's, submitted to `agent`'s queue.
async fn submitted(store: &dyn Store, agent: AgentType) -> (Project, Task) {
    store.ensure_queues(&[agent]).await.unwrap();
    let p = project(&tenant("acme"));
    store.insert_project(&p).await.unwrap();
    let t = task(&p, agent);
    store.submit_task(&t).await.unwrap();
    (p, t)
}

fn result() -> TaskResult {
    TaskResult {
        summary: "s".into(),
        language: "rust".into(),
        code: "fn main() {}".into(),
        prompt_tokens: 1,
        completion_tokens: 2,
        cost_dollars: 0.5,
        cache_hit: false,
        review: None,
    }
}

fn starter() -> Starter {
    Starter { agent_id: "coder-w1".into(), event_id: uuid::Uuid::new_v4() }
}

/// `task` with `outcome` recorded: what a worker hands [`Store::finish_task`].
fn ended(task: &Task, outcome: TaskOutcome) -> Task {
    let mut finished = task.clone();
    outcome.apply(&mut finished, now());
    finished
}

/// Starts the task of `claim` and finishes it completed, announcing nothing.
async fn run_to_completion(store: &dyn Store, claim: &Claim) -> Task {
    let started = store.start_task(claim, &starter()).await.unwrap().unwrap();
    let finished = ended(&started.task, TaskOutcome::Completed(result()));
    assert!(store.finish_task(claim, &finished, &[]).await.unwrap());
    finished
}

#[tokio::test]
async fn a_task_is_claimed_started_and_finished_exactly_once() {
    let (_redis, stores) = backends().await;
    for store in stores {
        let backend = store.backend();
        let (p, t) = submitted(&*store, AgentType::Qa).await;

        let claims = store.claim_tasks(AgentType::Qa, "w1", 10, Duration::from_millis(200)).await.unwrap();
        assert_eq!(claims.len(), 1, "{backend}");
        assert_eq!((claims[0].task_id, claims[0].project_id), (t.id, Some(p.id)), "{backend}");
        let starter = starter();
        let started = store.start_task(&claims[0], &starter).await.unwrap().unwrap();
        assert_eq!((started.task.status, started.task.attempts), (TaskStatus::Running, 1), "{backend}");
        assert_eq!(started.project.as_ref(), Some(&p), "{backend}: read with the start");
        let event = AgentEvent::task_started(&started.task, starter.agent_id.clone(), starter.event_id);
        assert_eq!((&started.event, &started.event.payload), (&event, &serde_json::json!({ "attempt": 1 })));

        let finished = ended(&started.task, TaskOutcome::Completed(result()));
        assert!(store.finish_task(&claims[0], &finished, &[]).await.unwrap(), "{backend}");
        let late = ended(&started.task, TaskOutcome::Failed("late".into()));
        let again = store.finish_task(&claims[0], &late, &[]).await.unwrap();
        assert!(!again, "{backend}: a second finish must change nothing");
        assert!(store.start_task(&claims[0], &starter).await.unwrap().is_none(), "{backend}");
        let stored = store.task(&t.tenant, t.id).await.unwrap().unwrap();
        assert_eq!(stored, finished, "{backend}: what the worker finished is what the store holds");

        let summary = store.project_status(&p.tenant, p.id).await.unwrap();
        assert_eq!((summary.total, summary.completed, summary.running, summary.queued), (1, 1, 0, 0), "{backend}");
        let none = store.reclaim_stale_tasks(AgentType::Qa, "w2", Duration::ZERO, 10).await.unwrap();
        assert!(none.is_empty(), "{backend}: the finish acknowledged the claim; it is never re-delivered");
        assert_eq!(store.queued_tasks().await.unwrap(), 0, "{backend}");
    }
}

/// What `rx` receives next, within five seconds.
async fn next<T: Clone>(rx: &mut tokio::sync::broadcast::Receiver<T>) -> T {
    tokio::time::timeout(Duration::from_secs(5), rx.recv()).await.expect("announced in time").unwrap()
}

#[tokio::test]
async fn a_start_and_a_finish_announce_the_task_once() {
    let (_redis, stores) = backends().await;
    for store in stores {
        let backend = store.backend();
        let (p, _) = submitted(&*store, AgentType::Coder).await;
        let mut updates = store.subscribe_project(&p.tenant, p.id).await.unwrap();
        let mut activity = store.subscribe_activity(&p.tenant).await.unwrap();
        let claims = store.claim_tasks(AgentType::Coder, "w1", 1, Duration::from_millis(200)).await.unwrap();

        let started = store.start_task(&claims[0], &starter()).await.unwrap().unwrap();
        assert_eq!(next(&mut updates).await, TaskUpdate::of(&started.task), "{backend}");
        assert_eq!(next(&mut activity).await, started.event, "{backend}: with the attempt the store counted");

        let finished = ended(&started.task, TaskOutcome::Failed("no".into()));
        let done = AgentEvent { event_type: AgentEventType::TaskFailed, ..started.event.clone() };
        let announce = [
            Published::new(Notification::Task(TaskUpdate::of(&finished))),
            Published::new(Notification::Agent(done.clone())),
        ];
        assert!(store.finish_task(&claims[0], &finished, &announce).await.unwrap(), "{backend}");
        assert_eq!(next(&mut updates).await, TaskUpdate::of(&finished), "{backend}");
        assert_eq!(next(&mut activity).await, done, "{backend}");

        // A second finish announces nothing: the next update is a later one.
        assert!(!store.finish_task(&claims[0], &finished, &announce).await.unwrap(), "{backend}");
        let marker = TaskUpdate { status: TaskStatus::Queued, ..TaskUpdate::of(&finished) };
        store.publish(&[Published::new(Notification::Task(marker.clone()))]).await.unwrap();
        assert_eq!(next(&mut updates).await, marker, "{backend}");
        assert!(activity.try_recv().is_err(), "{backend}");
    }
}

#[tokio::test]
async fn the_queued_tasks_are_those_waiting_and_those_claimed_but_not_acknowledged() {
    let (_redis, stores) = backends().await;
    for store in stores {
        let backend = store.backend();
        // Before any agent made a group: everything submitted waits.
        let p = project(&tenant("acme"));
        store.insert_project(&p).await.unwrap();
        for agent in [AgentType::Qa, AgentType::Qa, AgentType::Coder] {
            store.submit_task(&task(&p, agent)).await.unwrap();
        }
        assert_eq!(store.queued_tasks().await.unwrap(), 3, "{backend}");
        store.ensure_queues(&[AgentType::Qa, AgentType::Coder]).await.unwrap();
        let claims = store.claim_tasks(AgentType::Qa, "w1", 10, Duration::from_millis(200)).await.unwrap();
        assert_eq!(claims.len(), 2, "{backend}");
        assert_eq!(store.queued_tasks().await.unwrap(), 3, "{backend}: claimed tasks still run");
        store.ack(&claims[0]).await.unwrap();
        assert_eq!(store.queued_tasks().await.unwrap(), 2, "{backend}");
        store.ack(&claims[1]).await.unwrap();
        let coder = store.claim_tasks(AgentType::Coder, "w1", 10, Duration::from_millis(200)).await.unwrap();
        store.ack(&coder[0]).await.unwrap();
        assert_eq!(store.queued_tasks().await.unwrap(), 0, "{backend}");
    }
}

#[tokio::test]
async fn queue_reads_come_back_after_redis_restarts_and_no_queued_task_is_lost() {
    let mut redis = RedisServer::start_with_aof().expect("redis-server starts");
    let store = RedisStore::connect(RedisStoreOptions::new(redis.url())).await.unwrap();
    store.ensure_queues(&[AgentType::Qa]).await.unwrap();
    let p = project(&tenant("acme"));
    store.insert_project(&p).await.unwrap();
    // The blocking read has its own connection: open it before the restart.
    assert!(store.claim_tasks(AgentType::Qa, "w1", 10, Duration::from_millis(50)).await.unwrap().is_empty());
    let queued = task(&p, AgentType::Qa);
    store.submit_task(&queued).await.unwrap();

    redis.restart().unwrap();
    // The first read may meet the dead socket; the ones after must dial again.
    let mut claimed = Vec::new();
    for _ in 0..20 {
        match store.claim_tasks(AgentType::Qa, "w1", 10, Duration::from_millis(100)).await {
            Ok(claims) if !claims.is_empty() => {
                claimed = claims;
                break;
            }
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    assert_eq!(claimed.len(), 1, "the task queued before the restart is claimed after it");
    assert_eq!(claimed[0].task_id, queued.id);
}

#[tokio::test]
async fn an_unacknowledged_claim_is_taken_over_after_its_idle_time() {
    let (_redis, stores) = backends().await;
    for store in stores {
        let backend = store.backend();
        store.ensure_queues(&[AgentType::Coder]).await.unwrap();
        let p = project(&tenant("acme"));
        let t = task(&p, AgentType::Coder);
        store.submit_task(&t).await.unwrap();
        let first = store.claim_tasks(AgentType::Coder, "dead", 1, Duration::from_millis(200)).await.unwrap();
        assert_eq!(first.len(), 1);
        let early = store.reclaim_stale_tasks(AgentType::Coder, "alive", Duration::from_secs(60), 10).await.unwrap();
        assert!(early.is_empty(), "{backend}: not idle long enough yet");
        tokio::time::sleep(Duration::from_millis(150)).await;
        let taken = store.reclaim_stale_tasks(AgentType::Coder, "alive", Duration::from_millis(100), 10).await.unwrap();
        assert_eq!(taken.len(), 1, "{backend}");
        assert_eq!(taken[0].task_id, t.id);
        let fresh = store.claim_tasks(AgentType::Coder, "alive", 1, Duration::from_millis(100)).await.unwrap();
        assert!(fresh.is_empty(), "{backend}: a claimed entry is not new");
    }
}

#[tokio::test]
async fn claims_wait_for_work_and_respect_the_batch_size() {
    let (_redis, stores) = backends().await;
    for store in stores {
        store.ensure_queues(&[AgentType::Data]).await.unwrap();
        let p = project(&tenant("acme"));
        let waiter = {
            let store = Arc::clone(&store);
            tokio::spawn(async move { store.claim_tasks(AgentType::Data, "w", 2, Duration::from_secs(5)).await })
        };
        tokio::time::sleep(Duration::from_millis(100)).await;
        for _ in 0..3 {
            store.submit_task(&task(&p, AgentType::Data)).await.unwrap();
        }
        let claims = waiter.await.unwrap().unwrap();
        assert!(!claims.is_empty() && claims.len() <= 2, "{}: {claims:?}", store.backend());
    }
}

#[tokio::test]
async fn the_token_bucket_behaves_the_same_in_redis_and_in_memory() {
    let (_redis, stores) = backends().await;
    let bucket = TokenBucket { capacity: 3, refill_per_second: 10.0 };
    for store in stores {
        let backend = store.backend();
        let acme = tenant("acme");
        let decisions: Vec<_> = futures_take(&*store, &acme, bucket, 4).await;
        assert_eq!(decisions.iter().map(|d| d.0).collect::<Vec<_>>(), [true, true, true, false], "{backend}");
        assert_eq!(decisions.iter().map(|d| d.1).collect::<Vec<_>>(), [2, 1, 0, 0], "{backend}");
        let retry = decisions[3].2;
        assert!(retry > Duration::ZERO && retry <= Duration::from_millis(100), "{backend}: {retry:?}");
        tokio::time::sleep(Duration::from_millis(250)).await;
        assert!(store.take_token(&acme, bucket).await.unwrap().allowed, "{backend}: refilled");
        assert!(store.take_token(&tenant("globex"), bucket).await.unwrap().allowed, "{backend}: per tenant");
    }
}

async fn futures_take(store: &dyn Store, t: &TenantId, bucket: TokenBucket, n: usize) -> Vec<(bool, u32, Duration)> {
    let mut out = Vec::new();
    for _ in 0..n {
        let d = store.take_token(t, bucket).await.unwrap();
        out.push((d.allowed, d.remaining, d.retry_after));
    }
    out
}

#[tokio::test]
async fn sessions_projects_and_deletes_are_per_tenant() {
    let (_redis, stores) = backends().await;
    for store in stores {
        let backend = store.backend();
        let acme = tenant("acme");
        store.create_session("tok", &acme, Duration::from_secs(60)).await.unwrap();
        let (who, left) = store.session("tok").await.unwrap().unwrap();
        assert_eq!(who, acme, "{backend}");
        assert!(left <= Duration::from_secs(60) && left > Duration::from_secs(55), "{backend}: {left:?} to live");
        assert_eq!(store.session("other").await.unwrap(), None);

        let (a, b) = (project(&acme), project(&acme));
        store.insert_project(&a).await.unwrap();
        assert!(store.tasks(&acme, a.id, Page::default()).await.unwrap().is_empty(), "{backend}: no tasks yet");
        store.insert_project(&b).await.unwrap();
        let listed = store.projects(&acme, Page { limit: 1, offset: 1 }).await.unwrap();
        assert_eq!(listed.len(), 1, "{backend}");
        assert!(store.projects(&tenant("globex"), Page::default()).await.unwrap().is_empty());
        assert!(store.project(&tenant("globex"), a.id).await.unwrap().is_none(), "{backend}");

        let t = task(&a, AgentType::Qa);
        store.submit_task(&t).await.unwrap();
        assert!(store.delete_project(&acme, a.id).await.unwrap(), "{backend}");
        assert!(!store.delete_project(&acme, a.id).await.unwrap(), "{backend}: already gone");
        assert!(store.task(&acme, t.id).await.unwrap().is_none(), "{backend}: tasks go with their project");
        let mut renamed = a.clone();
        renamed.name = "again".into();
        assert!(!store.replace_project(&renamed).await.unwrap(), "{backend}: no resurrection by update");
    }
}

#[tokio::test]
async fn a_projects_json_document_is_its_serde_encoding() {
    let (_redis, stores) = backends().await;
    for store in stores {
        let backend = store.backend();
        let acme = tenant("acme");
        let (a, mut b) = (project(&acme), project(&acme));
        b.tags = vec!["quoted \"tag\"".into()];
        // Later by a second: projects created in the same millisecond are listed by id.
        b.created_at = a.created_at + Duration::from_secs(1);
        store.insert_project(&a).await.unwrap();
        store.insert_project(&b).await.unwrap();
        let encoded = |p: &Project| serde_json::to_string(p).unwrap();
        assert_eq!(store.project_json(&acme, b.id).await.unwrap(), Some(encoded(&b)), "{backend}");
        let page = store.projects_json(&acme, Page { limit: 10, offset: 0 }).await.unwrap();
        assert_eq!(page, [encoded(&a), encoded(&b)], "{backend}: oldest first");
        assert_eq!(store.project_json(&tenant("globex"), a.id).await.unwrap(), None, "{backend}: per tenant");
        assert!(store.projects_json(&tenant("globex"), Page::default()).await.unwrap().is_empty(), "{backend}");
    }
}

#[tokio::test]
async fn a_tasks_json_document_is_its_serde_encoding_at_every_stage() {
    let (_redis, stores) = backends().await;
    for store in stores {
        let backend = store.backend();
        let acme = tenant("acme");
        let encoded = |task: &Task| serde_json::to_string(task).unwrap();
        let json = async |id| store.task_json(&acme, id).await.unwrap();
        let typed = async |id| store.task(&acme, id).await.unwrap().unwrap();

        let (_, queued) = submitted(&*store, AgentType::Coder).await;
        assert_eq!(json(queued.id).await, Some(encoded(&queued)), "{backend}: queued");
        let claims = store.claim_tasks(AgentType::Coder, "w", 10, Duration::ZERO).await.unwrap();
        let started = store.start_task(&claims[0], &starter()).await.unwrap().unwrap();
        assert_eq!(json(queued.id).await, Some(encoded(&typed(queued.id).await)), "{backend}: running");
        // Code as generated: quotes, escapes, newlines and characters beyond ASCII.
        let code = "fn main() {\n    println!(\"\\t{}\", \"é ✓\");\n}\n".repeat(40);
        let finished = ended(&started.task, TaskOutcome::Completed(TaskResult { code, ..result() }));
        assert!(store.finish_task(&claims[0], &finished, &[]).await.unwrap(), "{backend}");
        assert_eq!(json(queued.id).await, Some(encoded(&finished)), "{backend}: completed");
        assert_eq!(typed(queued.id).await, finished, "{backend}");

        let (_, failing) = submitted(&*store, AgentType::Qa).await;
        let claims = store.claim_tasks(AgentType::Qa, "w", 10, Duration::ZERO).await.unwrap();
        let started = store.start_task(&claims[0], &starter()).await.unwrap().unwrap();
        let failed = ended(&started.task, TaskOutcome::Failed("the \"LLM\" timed out".into()));
        assert!(store.finish_task(&claims[0], &failed, &[]).await.unwrap(), "{backend}");
        assert_eq!(json(failing.id).await, Some(encoded(&failed)), "{backend}: failed");

        assert_eq!(store.task_json(&tenant("globex"), queued.id).await.unwrap(), None, "{backend}: per tenant");
        assert_eq!(json(TaskId::new()).await, None, "{backend}: missing");
    }
}

#[tokio::test]
async fn a_task_queued_without_its_project_in_the_entry_still_starts() {
    let (_redis, stores) = backends().await;
    for store in stores {
        let backend = store.backend();
        let (p, _) = submitted(&*store, AgentType::Coder).await;
        let claims = store.claim_tasks(AgentType::Coder, "w1", 10, Duration::from_millis(200)).await.unwrap();
        // As an older gateway queued it: the store looks the project up itself.
        let legacy = Claim { project_id: None, ..claims[0].clone() };
        let started = store.start_task(&legacy, &starter()).await.unwrap().unwrap();
        assert_eq!((started.task.status, started.task.project_id), (TaskStatus::Running, p.id), "{backend}");
        assert_eq!((started.event.project_id, started.project), (p.id, Some(p.clone())), "{backend}");
        let summary = store.project_status(&p.tenant, p.id).await.unwrap();
        assert_eq!((summary.queued, summary.running), (0, 1), "{backend}: the project's counts moved");
    }
}

#[tokio::test]
async fn notifications_reach_subscribers_of_their_project_only() {
    let (_redis, stores) = backends().await;
    for store in stores {
        let backend = store.backend();
        let p = project(&tenant("acme"));
        let mut mine = store.subscribe_project(&p.tenant, p.id).await.unwrap();
        let mut other = store.subscribe_project(&p.tenant, ProjectId::new()).await.unwrap();
        let update = TaskUpdate::of(&task(&p, AgentType::Coder));
        let later = TaskUpdate { status: TaskStatus::Running, ..update.clone() };
        let batch =
            [Published::new(Notification::Task(update.clone())), Published::new(Notification::Task(later.clone()))];
        store.publish(&batch).await.unwrap();
        for expected in [update, later] {
            let got = tokio::time::timeout(Duration::from_secs(5), mine.recv()).await.unwrap().unwrap();
            assert_eq!(got, expected, "{backend}: a batch arrives whole and in order");
        }

        // Agent events travel apart from updates, and reach activity streams.
        let mut activity = store.subscribe_activity(&p.tenant).await.unwrap();
        let event = AgentEvent {
            event_id: uuid::Uuid::new_v4(),
            agent_id: "coder-w1".into(),
            agent_type: AgentType::Coder,
            event_type: AgentEventType::TaskStarted,
            task_id: TaskId::new(),
            project_id: p.id,
            tenant: p.tenant.clone(),
            at: now(),
            payload: serde_json::json!({ "attempt": 1 }),
        };
        let event_json = serde_json::to_vec(&event).unwrap();
        store.publish(&[Published::agent_event(event.clone(), &event_json)]).await.unwrap();
        let got = tokio::time::timeout(Duration::from_secs(5), activity.recv()).await.unwrap().unwrap();
        assert_eq!(got, event, "{backend}");
        assert!(mine.try_recv().is_err(), "{backend}: an agent event is no task update");
        assert!(other.try_recv().is_err(), "{backend}");
    }
}

#[tokio::test]
async fn a_ledger_counts_each_event_once_and_names_what_it_lacks() {
    let (_redis, stores) = backends().await;
    for store in &stores {
        let ids: Vec<uuid::Uuid> = (0..2_500).map(|_| uuid::Uuid::new_v4()).collect();
        for id in &ids[..2_000] {
            assert!(store.record_event("audit", *id).await.unwrap());
        }
        assert!(!store.record_event("audit", ids[0]).await.unwrap(), "a duplicate");
        assert_eq!(store.ledger_size("audit").await.unwrap(), 2_000);
        // Three chunks of SMISMEMBER in Redis; the last 500 were never recorded.
        assert_eq!(store.ledger_absent("audit", &ids).await.unwrap(), 500);
        assert_eq!(store.ledger_absent("analytics", &ids[..10]).await.unwrap(), 10, "another group's ledger");
    }
}

#[tokio::test]
async fn a_lease_takes_up_to_what_it_asks_from_the_shared_bucket() {
    let (_redis, stores) = backends().await;
    let bucket = TokenBucket { capacity: 5, refill_per_second: 0.001 };
    for store in stores {
        let backend = store.backend();
        let (acme, globex) = (tenant("acme"), tenant("globex"));
        let (granted, decision) = store.take_tokens(&acme, bucket, 3).await.unwrap();
        assert_eq!((granted, decision.allowed, decision.remaining), (3, true, 2), "{backend}");
        let (granted, decision) = store.take_tokens(&acme, bucket, 3).await.unwrap();
        assert_eq!((granted, decision.remaining), (2, 0), "{backend}: what was left");
        let (granted, refused) = store.take_tokens(&acme, bucket, 3).await.unwrap();
        assert!(granted == 0 && !refused.allowed && refused.retry_after > Duration::ZERO, "{backend}: {refused:?}");
        // The same bucket a single take draws on, and only acme's.
        assert!(!store.take_token(&acme, bucket).await.unwrap().allowed, "{backend}");
        assert_eq!(store.take_tokens(&globex, bucket, 5).await.unwrap().0, 5, "{backend}");
    }
}

#[tokio::test]
async fn starting_and_finishing_a_task_cost_redis_one_script_call_each() {
    let redis = RedisServer::start().expect("redis-server starts");
    let store = RedisStore::connect(RedisStoreOptions::new(redis.url())).await.unwrap();
    store.ensure_queues(&[AgentType::Coder]).await.unwrap();
    let p = project(&tenant("acme"));
    store.insert_project(&p).await.unwrap();
    // The first task loads the scripts; the second is what every task costs.
    for round in 0..2 {
        store.submit_task(&task(&p, AgentType::Coder)).await.unwrap();
        let claims = store.claim_tasks(AgentType::Coder, "w1", 1, Duration::from_millis(200)).await.unwrap();
        let before = store.commands_served().await.unwrap();
        let started = store.start_task(&claims[0], &starter()).await.unwrap().unwrap();
        let finished = ended(&started.task, TaskOutcome::Completed(result()));
        let announce = [Published::new(Notification::Task(TaskUpdate::of(&finished)))];
        assert!(store.finish_task(&claims[0], &finished, &announce).await.unwrap());
        let after = store.commands_served().await.unwrap();
        let ran = |name: &str| after.get(name).copied().unwrap_or(0) - before.get(name).copied().unwrap_or(0);
        if round == 1 {
            // The census counts the scripts' own commands too: the start
            // script's HGETALL and GET (the project) are its reply, and its
            // two PUBLISHes and the finish's one and XACK are theirs. It
            // cannot tell a command sent apart from one a script ran, but it
            // shows that nothing else ran: no read of the hash or the project
            // before the scripts, no second acknowledgement.
            let ours = ["evalsha", "hgetall", "get", "publish", "xack"].map(ran);
            assert_eq!(ours, [2, 1, 1, 3, 1], "{after:?}");
            let total: u64 = after.iter().map(|(name, calls)| calls - before.get(name).copied().unwrap_or(0)).sum();
            let inside = ["hget", "hset", "hincrby", "exists"].map(ran).iter().sum::<u64>();
            // The INFO command that read `before` is counted in `after`.
            assert_eq!(total, ours.iter().sum::<u64>() + inside + 1, "{after:?}");
        }
    }
}

/// The channels some client of `redis` is subscribed to.
async fn channels_subscribed(redis: &RedisServer) -> Vec<String> {
    let mut conn = redis::Client::open(redis.url()).unwrap().get_multiplexed_async_connection().await.unwrap();
    let mut channels: Vec<String> = redis::cmd("PUBSUB").arg("CHANNELS").query_async(&mut conn).await.unwrap();
    channels.sort();
    channels
}

#[tokio::test]
async fn redis_sends_a_process_only_the_updates_of_projects_it_streams_and_stops_when_they_close() {
    let redis = RedisServer::start().expect("redis-server starts");
    let store = RedisStore::connect(RedisStoreOptions::new(redis.url())).await.unwrap();
    let (watched, unwatched) = (project(&tenant("acme")), project(&tenant("acme")));
    let first = store.subscribe_project(&watched.tenant, watched.id).await.unwrap();
    let mut second = store.subscribe_project(&watched.tenant, watched.id).await.unwrap();
    let subscribed = channels_subscribed(&redis).await;
    assert_eq!(subscribed.len(), 1, "one channel for two streams of one project: {subscribed:?}");
    assert!(subscribed[0].contains(&watched.id.to_string()), "{subscribed:?}");

    // Redis sends no update of a project no stream reads (no channel above),
    // and one of a watched project still arrives after one stream closed.
    drop(first);
    let ignored = TaskUpdate::of(&task(&unwatched, AgentType::Coder));
    let wanted = TaskUpdate::of(&task(&watched, AgentType::Coder));
    let batch = [Published::new(Notification::Task(ignored)), Published::new(Notification::Task(wanted.clone()))];
    store.publish(&batch).await.unwrap();
    assert_eq!(next(&mut second).await, wanted);

    // Once the project's last stream has closed, the channel is left.
    drop(second);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !channels_subscribed(&redis).await.is_empty() {
        assert!(tokio::time::Instant::now() < deadline, "still subscribed 5 s after the last stream closed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // And taken again by the next stream.
    let mut again = store.subscribe_project(&watched.tenant, watched.id).await.unwrap();
    assert_eq!(channels_subscribed(&redis).await.len(), 1);
    store.publish(&[Published::new(Notification::Task(wanted.clone()))]).await.unwrap();
    assert_eq!(next(&mut again).await, wanted);
}

#[tokio::test]
async fn a_stream_gets_updates_again_once_redis_is_back_after_a_restart() {
    let mut redis = RedisServer::start().expect("redis-server starts");
    let store = RedisStore::connect(RedisStoreOptions::new(redis.url())).await.unwrap();
    let p = project(&tenant("acme"));
    let mut updates = store.subscribe_project(&p.tenant, p.id).await.unwrap();
    redis.restart().unwrap();
    // Updates published while the subscription is down are lost, as with
    // any Redis subscription; the stream resumes once it is made again.
    let update = TaskUpdate::of(&task(&p, AgentType::Coder));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        assert!(tokio::time::Instant::now() < deadline, "no update 10 s after Redis came back");
        let _ = store.publish(&[Published::new(Notification::Task(update.clone()))]).await;
        if let Ok(got) = tokio::time::timeout(Duration::from_millis(200), updates.recv()).await {
            assert_eq!(got.unwrap(), update);
            break;
        }
    }
    assert_eq!(channels_subscribed(&redis).await.len(), 1, "the channel was subscribed anew");
}

#[tokio::test]
async fn a_projects_recent_task_updates_are_its_last_tasks_as_they_are_now() {
    let (_redis, stores) = backends().await;
    for store in stores {
        let backend = store.backend();
        store.ensure_queues(&[AgentType::Coder, AgentType::Qa]).await.unwrap();
        let acme = tenant("acme");
        let p = project(&acme);
        store.insert_project(&p).await.unwrap();
        assert!(store.recent_task_updates(&acme, p.id, 2).await.unwrap().is_empty(), "{backend}: no tasks yet");
        let mut tasks = Vec::new();
        for (n, agent) in [AgentType::Coder, AgentType::Qa, AgentType::Coder].into_iter().enumerate() {
            // Distinct creation times: the project's tasks are ordered by them.
            let mut t = task(&p, agent);
            t.created_at += Duration::from_millis(n as u64);
            store.submit_task(&t).await.unwrap();
            tasks.push(t);
        }
        let claims = store.claim_tasks(AgentType::Qa, "w1", 1, Duration::from_millis(200)).await.unwrap();
        let finished = run_to_completion(&*store, &claims[0]).await;

        let recent = store.recent_task_updates(&acme, p.id, 2).await.unwrap();
        assert_eq!(
            recent,
            [TaskUpdate::of(&finished), TaskUpdate::of(&tasks[2])],
            "{backend}: the last two, oldest first"
        );
        assert_eq!(recent[0].status, TaskStatus::Completed, "{backend}");
        let all = store.recent_task_updates(&acme, p.id, 100).await.unwrap();
        assert_eq!(all.iter().map(|u| u.task_id).collect::<Vec<_>>(), tasks.iter().map(|t| t.id).collect::<Vec<_>>());
        assert!(store.recent_task_updates(&tenant("globex"), p.id, 100).await.unwrap().is_empty(), "{backend}");
    }
}

#[tokio::test]
async fn a_snapshot_of_task_updates_leaves_the_results_in_redis() {
    let redis = RedisServer::start().expect("redis-server starts");
    let store = RedisStore::connect(RedisStoreOptions::new(redis.url())).await.unwrap();
    let (p, _) = submitted(&store, AgentType::Coder).await;
    let claims = store.claim_tasks(AgentType::Coder, "w1", 1, Duration::from_millis(200)).await.unwrap();
    run_to_completion(&store, &claims[0]).await;
    let before = store.commands_served().await.unwrap();
    let recent = store.recent_task_updates(&p.tenant, p.id, 100).await.unwrap();
    let after = store.commands_served().await.unwrap();
    assert_eq!(recent.len(), 1);
    let ran = |name: &str| after.get(name).copied().unwrap_or(0) - before.get(name).copied().unwrap_or(0);
    // HMGET of three short fields, not HGETALL (or an HGET of the document).
    assert_eq!((ran("zrange"), ran("hmget"), ran("hgetall"), ran("hget")), (1, 1, 0, 0), "{after:?}");

    // A hash written before it carried its agent type is read whole instead.
    let mut raw = redis::Client::open(redis.url()).unwrap().get_multiplexed_async_connection().await.unwrap();
    let key = format!("q2o:task:{}:{}", p.tenant, recent[0].task_id);
    let removed: u32 = redis::cmd("HDEL").arg(&key).arg("agent_type").query_async(&mut raw).await.unwrap();
    assert_eq!(removed, 1, "{key} held the agent type");
    assert_eq!(store.recent_task_updates(&p.tenant, p.id, 100).await.unwrap(), recent);
}
