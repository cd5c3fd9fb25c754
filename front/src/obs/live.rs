//! The dashboard's live feed: ONE dedicated `LISTEN api_gateway_log` connection per front (the
//! extension notifies on every traffic log batch, whichever front wrote it), fanned out to the
//! open Server-Sent Events streams through a broadcast channel. The connection is opened when
//! the first stream subscribes and closed a minute after the last one left; it is re-opened
//! with a backoff when it breaks.
use super::Obs;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::{Notify, broadcast, mpsc};
use tokio_postgres::{AsyncMessage, NoTls};

pub const CHANNEL: &str = "api_gateway_log";

pub struct Hub {
    tx: broadcast::Sender<Arc<str>>,
    wake: Notify,
    listening: AtomicBool,
}

impl Default for Hub {
    fn default() -> Self {
        Self::new()
    }
}

impl Hub {
    pub fn new() -> Hub {
        let (tx, _) = broadcast::channel(256);
        Hub {
            tx,
            wake: Notify::new(),
            listening: AtomicBool::new(false),
        }
    }

    /// A new stream's receiver (wakes the listener up if it was idle).
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<str>> {
        let rx = self.tx.subscribe();
        self.wake.notify_one();
        rx
    }

    pub fn listening(&self) -> bool {
        self.listening.load(Ordering::Relaxed)
    }

    /// Send a payload to every open stream (what a notification does).
    pub fn publish(&self, payload: &str) {
        let _ = self.tx.send(Arc::from(payload));
    }

    fn subscribers(&self) -> usize {
        self.tx.receiver_count()
    }
}

/// The listener task of one front.
pub async fn run(obs: Arc<Obs>) {
    let mut stop = obs.stopping();
    let mut backoff = Duration::from_millis(500);
    loop {
        while obs.live.subscribers() == 0 {
            tokio::select! {
                _ = obs.live.wake.notified() => {}
                _ = stop.wait_for(|s| *s) => return,
            }
        }
        let result = tokio::select! {
            r = listen(&obs) => r,
            _ = stop.wait_for(|s| *s) => Ok(()),
        };
        obs.live.listening.store(false, Ordering::Relaxed);
        obs.metrics.live_listening.set(0);
        match result {
            Ok(()) => backoff = Duration::from_millis(500),
            Err(e) => {
                tracing::warn!("dashboard LISTEN connection: {e} (retrying in {backoff:?})");
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = stop.wait_for(|s| *s) => return,
                }
                backoff = (backoff * 2).min(Duration::from_secs(30));
            }
        }
        if obs.is_stopping() {
            return;
        }
    }
}

/// Connect, LISTEN and forward until the connection breaks (Err) or nobody has been watching
/// for a minute (Ok).
async fn listen(obs: &Obs) -> Result<(), String> {
    let mut config =
        crate::db::pg_config(&obs.options.live_url).map_err(|e| format!("invalid URL: {e}"))?;
    config.application_name("api-gateway live");
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(Duration::from_secs(5));
    }
    let (client, mut conn) = config
        .connect(NoTls)
        .await
        .map_err(|e| format!("cannot connect: {e}"))?;
    let (ntx, mut nrx) = mpsc::unbounded_channel::<Result<String, String>>();
    let driver = tokio::spawn(async move {
        loop {
            match std::future::poll_fn(|cx| conn.poll_message(cx)).await {
                Some(Ok(AsyncMessage::Notification(n))) => {
                    if ntx.send(Ok(n.payload().to_string())).is_err() {
                        break;
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => {
                    let _ = ntx.send(Err(e.to_string()));
                    break;
                }
                None => {
                    let _ = ntx.send(Err("connection closed".into()));
                    break;
                }
            }
        }
    });
    struct Abort(tokio::task::JoinHandle<()>);
    impl Drop for Abort {
        fn drop(&mut self) {
            self.0.abort();
        }
    }
    let _driver = Abort(driver);
    client
        .batch_execute(&format!("LISTEN {CHANNEL}"))
        .await
        .map_err(|e| format!("LISTEN failed: {e}"))?;
    obs.live.listening.store(true, Ordering::Relaxed);
    obs.metrics.live_listening.set(1);
    tracing::debug!("dashboard live feed: listening on {CHANNEL}");
    let mut idle_since: Option<Instant> = None;
    let mut tick = tokio::time::interval(Duration::from_secs(5));
    loop {
        tokio::select! {
            m = nrx.recv() => match m {
                Some(Ok(payload)) => obs.live.publish(&payload),
                Some(Err(e)) => return Err(e),
                None => return Err("connection closed".into()),
            },
            _ = tick.tick() => {
                if obs.live.subscribers() == 0 {
                    let since = *idle_since.get_or_insert_with(Instant::now);
                    if since.elapsed() >= Duration::from_secs(60) {
                        return Ok(());
                    }
                } else {
                    idle_since = None;
                }
            }
        }
    }
}
