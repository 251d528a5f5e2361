//! Task updates from Redis: one channel per project, which a process
//! subscribes to only while one of its streams reads that project.
//!
//! A pattern subscription to every project's updates sent each update to
//! every gateway, and each gateway parsed it to find it unwanted: the work
//! grew with the gateways times the tasks. With a channel per project an
//! update reaches only the gateways that stream its project, for the price
//! of a SUBSCRIBE when a project's first stream opens and an UNSUBSCRIBE
//! once its last one has closed.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use redis::Client;
use redis::aio::{PubSubSink, PubSubStream};
use tokio::sync::{Mutex, broadcast};
use tokio::task::JoinHandle;

use super::{NotificationHub, StoreError, keys};
use crate::domain::{ProjectId, TaskUpdate, TenantId};

/// How often channels whose streams have all closed are unsubscribed. An
/// idle channel costs only the updates still published on it until then.
const SWEEP_EVERY: Duration = Duration::from_secs(1);

/// How long to wait before dialling Redis again after the subscription's
/// connection was lost.
const RECONNECT_AFTER: Duration = Duration::from_millis(500);

/// The subscriptions of one process, and the task that reads them into the hub.
pub(super) struct ProjectChannels {
    hub: Arc<NotificationHub>,
    subscribed: Arc<Mutex<Subscribed>>,
    reader: JoinHandle<()>,
}

/// What Redis has been asked to send. Held across each SUBSCRIBE and
/// UNSUBSCRIBE, so that the two for one project reach Redis in the order
/// they were decided in.
struct Subscribed {
    /// None while the connection is being made again.
    sink: Option<PubSubSink>,
    channels: HashSet<(TenantId, ProjectId)>,
}

impl Subscribed {
    /// Takes the channels no stream watches any more out of the set and out
    /// of the hub, and names them.
    fn take_unwatched(&mut self, hub: &NotificationHub) -> Vec<String> {
        let mut unwatched = Vec::new();
        self.channels.retain(|(tenant, project)| {
            let watched = hub.project_watched(tenant, *project);
            if !watched {
                hub.forget_project(tenant, *project);
                unwatched.push(keys::project_updates(tenant, *project));
            }
            watched
        });
        unwatched
    }
}

impl Drop for ProjectChannels {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

impl ProjectChannels {
    /// Connects the subscription and starts reading it; fails if Redis
    /// cannot be reached.
    pub(super) async fn start(client: Client, hub: Arc<NotificationHub>) -> Result<Self, StoreError> {
        let (sink, stream) = client.get_async_pubsub().await?.split();
        let subscribed = Arc::new(Mutex::new(Subscribed { sink: Some(sink), channels: HashSet::new() }));
        let reader = tokio::spawn(read(client, Arc::clone(&hub), Arc::clone(&subscribed), stream));
        Ok(ProjectChannels { hub, subscribed, reader })
    }

    /// Task updates of one project. Once this returns, nothing published on
    /// the project's channel is missed, unless the connection is lost (as
    /// with any Redis subscription); it is then made again and every
    /// watched channel subscribed anew.
    pub(super) async fn subscribe(&self, tenant: &TenantId, project: ProjectId) -> broadcast::Receiver<TaskUpdate> {
        let mut subscribed = self.subscribed.lock().await;
        let updates = self.hub.subscribe_project(tenant, project);
        if subscribed.channels.insert((tenant.clone(), project))
            && let Some(sink) = subscribed.sink.as_mut()
            && let Err(err) = sink.subscribe(keys::project_updates(tenant, project)).await
        {
            // The reader sees the connection end and subscribes every
            // watched channel on the next one, this one included.
            tracing::warn!(%err, "cannot subscribe to a project's updates; will on reconnecting");
        }
        updates
    }
}

/// Reads the subscription into the hub, unsubscribes channels no stream
/// watches any more, and connects again when the connection is lost, until
/// the owner is dropped.
async fn read(client: Client, hub: Arc<NotificationHub>, subscribed: Arc<Mutex<Subscribed>>, stream: PubSubStream) {
    let mut stream = Some(stream);
    loop {
        if let Some(mut messages) = stream.take() {
            let mut sweep = tokio::time::interval(SWEEP_EVERY);
            sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    message = messages.next() => match message {
                        Some(message) => {
                            if let Err(err) = hub.dispatch_json(message.get_payload_bytes()) {
                                tracing::warn!(%err, "ignoring malformed task update");
                            }
                        }
                        None => break,
                    },
                    _ = sweep.tick() => unsubscribe_unwatched(&hub, &subscribed).await,
                }
            }
            tracing::warn!("task update subscription lost; reconnecting");
            subscribed.lock().await.sink = None;
        }
        tokio::time::sleep(RECONNECT_AFTER).await;
        match client.get_async_pubsub().await {
            Ok(pubsub) => {
                let (mut sink, messages) = pubsub.split();
                let mut subscribed = subscribed.lock().await;
                subscribed.take_unwatched(&hub);
                let channels: Vec<String> = subscribed
                    .channels
                    .iter()
                    .map(|(tenant, project)| keys::project_updates(tenant, *project))
                    .collect();
                let resubscribed = if channels.is_empty() { Ok(()) } else { sink.subscribe(&channels).await };
                match resubscribed {
                    Ok(()) => {
                        subscribed.sink = Some(sink);
                        stream = Some(messages);
                    }
                    Err(err) => tracing::warn!(%err, "cannot resubscribe to task updates"),
                }
            }
            Err(err) => tracing::warn!(%err, "cannot reconnect for task updates"),
        }
    }
}

/// Unsubscribes the channels whose streams have all closed.
async fn unsubscribe_unwatched(hub: &NotificationHub, subscribed: &Mutex<Subscribed>) {
    let mut subscribed = subscribed.lock().await;
    let unwatched = subscribed.take_unwatched(hub);
    if !unwatched.is_empty()
        && let Some(sink) = subscribed.sink.as_mut()
        && let Err(err) = sink.unsubscribe(&unwatched).await
    {
        // A lost connection takes its subscriptions with it.
        tracing::warn!(%err, "cannot unsubscribe from task updates");
    }
}
