//! `GET /api/events`: SyncEvents as Server-Sent Events.
//!
//! Each event is `event: <type>`, `id: <event id>`, `data: <the event as JSON>`. With
//! `Last-Event-ID` (or `?last_event_id=` for curl) the stream first replays what the client
//! missed from the persisted log, then continues live — no gap, no duplicate:
//!
//! 1. subscribe to the bus *first*, so every event published from now on reaches us live;
//! 2. wait until the store has written every event published before that (`submitted`);
//! 3. replay from the store up to there, page by page (memory stays bounded however long the
//!    client was away);
//! 4. go live, skipping ids already replayed.
//!
//! In a cluster the log is shared by every host, so the stream follows the log instead of this
//! process's bus: after the replay it waits for the log's newest id to move (the store's
//! `shared_feed`, fed by `LISTEN`) and reads on from where it was. The log's ids become visible
//! in order, so reading everything up to the newest id it has seen misses nothing.
//!
//! Memory per client is bounded: the bus is one shared ring of 4096 events, a client only
//! holds a cursor into it, and the HTTP layer only pulls the next event when the socket can
//! take it. A client that falls behind the ring's end gets `event: resync` and is disconnected;
//! it reconnects with its `Last-Event-ID` and replays from the log (or reloads its state).

use std::convert::Infallible;
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use futures_util::stream;
use serde::Deserialize;
use serde_json::json;
use tokio::sync::{broadcast, watch};
use weir_engine::SyncEvent;
use weir_store::{EventFilter, StateStore, StoredEvent};

use crate::AppState;
use crate::auth::Reader;
use crate::error::ApiError;

/// Replayed events read from the store at a time.
const REPLAY_PAGE: usize = 256;

#[derive(Debug, Deserialize)]
pub struct EventsQuery {
    pipeline: Option<String>,
    run: Option<String>,
    last_event_id: Option<u64>,
}

/// The handler.
pub async fn events(
    _: Reader,
    State(state): State<AppState>,
    Query(query): Query<EventsQuery>,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let last_id = match headers.get("last-event-id") {
        Some(value) => Some(
            value
                .to_str()
                .ok()
                .and_then(|v| v.trim().parse::<u64>().ok())
                .ok_or_else(|| {
                    ApiError::BadRequest("Last-Event-ID must be an event id (a number)".into())
                })?,
        ),
        None => query.last_event_id,
    };
    let filter = EventFilter {
        pipeline: query.pipeline,
        run: query.run,
    };
    let service = state.service();
    let feed = service.store().shared_feed();
    // Step 1: subscribe before anything is read from the store (a shared log is followed
    // instead, from the newest id it has now).
    let live = feed.is_none().then(|| service.events().subscribe());
    let (phase, last_sent) = match (last_id, &feed) {
        (Some(after), _) => (Phase::Start { after }, after),
        (None, Some(feed)) => (Phase::Follow, *feed.borrow()),
        (None, None) => (Phase::Live, 0),
    };
    let cursor = Cursor {
        phase,
        store: service.store().clone(),
        filter,
        live,
        feed,
        shutdown: service.closed_signal(),
        last_sent,
        pending: std::collections::VecDeque::new(),
    };
    let keep_alive = KeepAlive::new()
        .interval(state.options().keep_alive)
        .text("keep-alive");
    Ok(Sse::new(stream::unfold(cursor, Cursor::next)).keep_alive(keep_alive))
}

enum Phase {
    /// Replay everything after `after` once the store has caught up.
    Start {
        after: u64,
    },
    /// Replaying; `upto` is the newest id published when the replay began.
    Replay {
        after: u64,
        upto: u64,
    },
    Live,
    /// Shared log: wait for its newest id to pass `last_sent`, then replay up to it.
    Follow,
    Done,
}

struct Cursor {
    phase: Phase,
    store: Arc<dyn StateStore>,
    filter: EventFilter,
    /// This process's bus (`None` when a shared log is followed).
    live: Option<broadcast::Receiver<Arc<SyncEvent>>>,
    /// The newest id in a shared log.
    feed: Option<watch::Receiver<u64>>,
    shutdown: watch::Receiver<bool>,
    /// Ids up to this one were sent (or were before the client's `Last-Event-ID`).
    last_sent: u64,
    pending: std::collections::VecDeque<Event>,
}

impl Cursor {
    async fn next(mut self) -> Option<(Result<Event, Infallible>, Self)> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                return Some((Ok(event), self));
            }
            match self.phase {
                Phase::Done => return None,
                Phase::Start { after } => {
                    // Step 2: everything published before we subscribed is on disk after this.
                    let upto = match &self.feed {
                        Some(feed) => *feed.borrow(),
                        None => {
                            let upto = self.store.submitted();
                            self.store.wait_persisted(upto).await;
                            upto
                        }
                    };
                    let oldest = self.store.oldest_event_id().await.ok().flatten();
                    if let Some(oldest) = oldest
                        && after + 1 < oldest
                        && after < upto
                    {
                        self.pending.push_back(resync(&format!(
                            "events {}..{} are no longer kept (retention); reload and continue",
                            after + 1,
                            oldest - 1
                        )));
                    }
                    self.phase = Phase::Replay { after, upto };
                }
                Phase::Replay { after, upto } => {
                    if after >= upto {
                        // Nothing to replay: on to live delivery (or to following a shared log:
                        // a cluster host has no bus of its own to stream).
                        self.phase = if self.feed.is_some() {
                            Phase::Follow
                        } else {
                            Phase::Live
                        };
                        continue;
                    }
                    // Step 3, one page.
                    let page = match self
                        .store
                        .events_after(after, self.filter.clone(), REPLAY_PAGE)
                        .await
                    {
                        Ok(page) => page,
                        Err(e) => {
                            tracing::error!("event replay failed: {e:#}");
                            self.phase = Phase::Done;
                            return Some((Ok(resync("the event log could not be read")), self));
                        }
                    };
                    let full = page.len() == REPLAY_PAGE;
                    let mut newest = after;
                    for stored in page.into_iter().filter(|e| e.id <= upto) {
                        newest = stored.id;
                        self.last_sent = self.last_sent.max(stored.id);
                        self.pending.push_back(from_stored(stored));
                    }
                    self.phase = if full && newest < upto && newest > after {
                        Phase::Replay {
                            after: newest,
                            upto,
                        }
                    } else {
                        // Past `upto`, live delivery takes over; ids up to it that did not
                        // match the filter must not be sent live either.
                        self.last_sent = self.last_sent.max(upto);
                        if self.feed.is_some() {
                            Phase::Follow
                        } else {
                            Phase::Live
                        }
                    };
                }
                Phase::Follow => {
                    let last_sent = self.last_sent;
                    let Some(feed) = self.feed.as_mut() else {
                        self.phase = Phase::Done;
                        continue;
                    };
                    let newest = tokio::select! {
                        biased;
                        newest = feed.wait_for(|&newest| newest > last_sent) => match newest {
                            Ok(newest) => *newest,
                            Err(_) => {
                                self.phase = Phase::Done;
                                continue;
                            }
                        },
                        _ = self.shutdown.wait_for(|stopping| *stopping) => {
                            self.phase = Phase::Done;
                            continue;
                        }
                    };
                    self.phase = Phase::Replay {
                        after: last_sent,
                        upto: newest,
                    };
                }
                Phase::Live => {
                    // Step 4.
                    let Some(live) = self.live.as_mut() else {
                        self.phase = Phase::Done;
                        continue;
                    };
                    // Biased: events already published are delivered before the stream ends.
                    let received = tokio::select! {
                        biased;
                        received = live.recv() => received,
                        _ = self.shutdown.wait_for(|stopping| *stopping) => {
                            self.phase = Phase::Done;
                            continue;
                        }
                    };
                    match received {
                        Ok(event) => {
                            if event.id <= self.last_sent
                                || !self
                                    .filter
                                    .matches(event.pipeline.as_deref(), event.run.as_deref())
                            {
                                continue;
                            }
                            self.last_sent = event.id;
                            return Some((Ok(from_live(&event)), self));
                        }
                        Err(broadcast::error::RecvError::Lagged(missed)) => {
                            self.phase = Phase::Done;
                            return Some((
                                Ok(resync(&format!(
                                    "this client fell {missed} events behind and is disconnected; \
                                     reconnect with Last-Event-ID: {} to replay them",
                                    self.last_sent
                                ))),
                                self,
                            ));
                        }
                        Err(broadcast::error::RecvError::Closed) => self.phase = Phase::Done,
                    }
                }
            }
        }
    }
}

fn from_stored(e: StoredEvent) -> Event {
    Event::default()
        .event(e.kind)
        .id(e.id.to_string())
        .data(e.data)
}

fn from_live(e: &SyncEvent) -> Event {
    Event::default()
        .event(e.kind.name())
        .id(e.id.to_string())
        .data(serde_json::to_string(e).unwrap_or_default())
}

/// `event: resync`, without an id (the client's Last-Event-ID stays the last real event).
fn resync(reason: &str) -> Event {
    Event::default()
        .event("resync")
        .data(json!({ "type": "resync", "reason": reason }).to_string())
}
