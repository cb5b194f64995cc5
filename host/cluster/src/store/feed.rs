//! The newest id in the cluster's event log, followed with `LISTEN weir_events`: every writer
//! sends `pg_notify('weir_events', <its newest id>)` inside its transaction, so the note
//! arrives exactly when the events are visible. Notes sent while this host was disconnected
//! are lost, so after every (re)connection the newest id is read once.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt as _;
use tokio::sync::watch;
use tokio_postgres::AsyncMessage;

use crate::db::Db;

/// The longest wait between attempts to reconnect.
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// Follow the log until the task is aborted.
pub(super) async fn follow(db: Arc<Db>, feed: watch::Sender<u64>) {
    let mut backoff = Duration::from_millis(50);
    let mut failures = 0u32;
    loop {
        match listen(&db, &feed).await {
            // The connection ended after it worked: try again at once.
            Ok(()) => {
                backoff = Duration::from_millis(50);
                failures = 0;
            }
            Err(e) => {
                failures += 1;
                if failures == 1 {
                    tracing::warn!(
                        "cannot follow the cluster's event log; other hosts' events show up \
                         again once it answers: {e}"
                    );
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}

/// One connection's worth of following: returns when it ends.
async fn listen(db: &Db, feed: &watch::Sender<u64>) -> anyhow::Result<()> {
    let (client, mut connection) = db.connect_raw().await?;
    let (note_tx, mut notes) = tokio::sync::mpsc::unbounded_channel::<u64>();
    // The connection is driven here, so its notifications can be read.
    let driver = tokio::spawn(async move {
        let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(message) = messages.next().await {
            match message {
                Ok(AsyncMessage::Notification(note)) => {
                    if let Ok(id) = note.payload().parse::<u64>() {
                        let _ = note_tx.send(id);
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::debug!("cluster event feed connection failed: {e}");
                    break;
                }
            }
        }
    });
    let result = async {
        client.batch_execute("LISTEN weir_events").await?;
        let newest: i64 = client
            .query_one("SELECT coalesce(max(id), 0) FROM weir_events", &[])
            .await?
            .get(0);
        advance(feed, newest as u64);
        while let Some(id) = notes.recv().await {
            advance(feed, id);
        }
        anyhow::Ok(())
    }
    .await;
    driver.abort();
    result
}

fn advance(feed: &watch::Sender<u64>, id: u64) {
    feed.send_if_modified(|known| {
        let advanced = id > *known;
        *known = (*known).max(id);
        advanced
    });
}
