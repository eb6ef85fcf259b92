//! Fan-out: one change, made by a plain `PATCH` over HTTP, delivered to every socket
//! subscribed to the item, timed from the moment the `PATCH`'s answer arrived to
//! each subscriber's receipt; the CPU time the server and the client spent per
//! delivered event; and the events per second a burst of changes reaches.

use std::net::SocketAddr;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;
use futures::future::join;
use futures::stream::FuturesUnordered;
use http::Method;
use serde_json::json;
use tokio::sync::{mpsc, oneshot};

use crate::child::Served;
use crate::client::Http1;
use crate::measure::{expect_ok, median, wake};
use crate::ws::{Socket, contains, expect_type, subscribe_all, within};
use crate::{BenchError, Framework, Plan};

/// The item every subscriber watches and every change renames.
const ITEM: &str = "/items/100";

/// The figures of one framework's server with `subscribers` sockets subscribed.
/// Delivery times are in seconds from the `PATCH`'s answer, negative for an event
/// read before the answer.
#[derive(Debug, Clone)]
pub(crate) struct FanOut {
    pub(crate) framework: Framework,
    pub(crate) subscribers: usize,
    /// Median round trip of the `PATCH` that made each change.
    pub(crate) round_trip: Duration,
    /// Every subscriber's delivery time over every timed change.
    pub(crate) p50: f64,
    pub(crate) p99: f64,
    /// Per change, the delivery time of its last subscriber: the median change, and
    /// the worst one (the maximum of all deliveries).
    pub(crate) all_median: f64,
    pub(crate) all_worst: f64,
    /// Per change, from the `PATCH`'s sending to its last subscriber's receipt: the
    /// median change. Never negative, so it compares across subscriber counts.
    pub(crate) from_send: Duration,
    /// Changes timed, to say how many the worst is the worst of.
    pub(crate) changes: usize,
    /// CPU time per delivered event over the timed changes (each change's `PATCH`
    /// and the request that wakes the server before it included): the server's, and
    /// the client's (the subscribers' reads and the `PATCH`es).
    pub(crate) server_cpu: Duration,
    pub(crate) client_cpu: Duration,
    /// Events delivered per second in a burst of [`Plan::burst`] changes (median).
    pub(crate) events_per_second: f64,
}

/// One change as measured: when its `PATCH` was sent and answered, and when each
/// subscriber read its event.
struct Change {
    sent: Instant,
    answered: Instant,
    received: Vec<Instant>,
}

impl Change {
    /// Seconds from the answer to `at`, negative when `at` came first.
    fn after_answer(&self, at: Instant) -> f64 {
        match at.checked_duration_since(self.answered) {
            Some(after) => after.as_secs_f64(),
            None => -(self.answered - at).as_secs_f64(),
        }
    }
}

/// The fan-out figures for each of `plan.subscribers` (ascending), against the
/// server `served` at `addr`: the sockets of one count stay open for the next, which
/// opens only the difference.
pub(crate) async fn all(
    framework: Framework,
    served: &Served,
    addr: SocketAddr,
    plan: Plan,
) -> Result<Vec<FanOut>, BenchError> {
    let patcher = Patcher::start(addr).await?;
    let mut sockets = Vec::new();
    let mut figures = Vec::new();
    let mut change = 0;
    for &n in plan.subscribers {
        eprintln!("  fan-out to {n}");
        let mut opened = Vec::new();
        Socket::open_more(&mut opened, addr, n.saturating_sub(sockets.len())).await?;
        subscribe_all(&mut opened, ITEM).await?;
        sockets.append(&mut opened);
        for _ in 0..plan.warmup {
            change += 1;
            one_change(&patcher, &mut sockets, change).await?;
        }
        let (server_before, client_before) = (served.cpu_time()?, crate::cpu::own()?);
        let mut changes = Vec::new();
        for _ in 0..plan.iterations {
            change += 1;
            changes.push(one_change(&patcher, &mut sockets, change).await?);
        }
        let events = (plan.iterations * n).max(1) as u32;
        let server_cpu = served.cpu_time()?.saturating_sub(server_before) / events;
        let client_cpu = crate::cpu::own()?.saturating_sub(client_before) / events;
        let mut rates = Vec::new();
        for round in 0..plan.warmup.min(1) + plan.bursts {
            let took = burst(&patcher, &mut sockets, plan.burst, &mut change).await?;
            if round >= plan.warmup.min(1) {
                rates.push((n * plan.burst) as f64 / took.as_secs_f64().max(f64::MIN_POSITIVE));
            }
        }
        let mut figure = figures_of(framework, n, &changes, rates);
        (figure.server_cpu, figure.client_cpu) = (server_cpu, client_cpu);
        figures.push(figure);
    }
    Ok(figures)
}

fn figures_of(framework: Framework, n: usize, changes: &[Change], mut rates: Vec<f64>) -> FanOut {
    let mut deliveries: Vec<f64> = changes
        .iter()
        .flat_map(|change| change.received.iter().map(|&at| change.after_answer(at)))
        .collect();
    let last = |change: &Change| {
        change
            .received
            .iter()
            .copied()
            .max()
            .unwrap_or(change.answered)
    };
    let mut lasts: Vec<f64> = changes
        .iter()
        .map(|change| change.after_answer(last(change)))
        .collect();
    let from_send = changes
        .iter()
        .map(|change| last(change) - change.sent)
        .collect();
    let round_trips = changes
        .iter()
        .map(|change| change.answered - change.sent)
        .collect();
    FanOut {
        framework,
        subscribers: n,
        round_trip: median(round_trips),
        p50: quantile(&mut deliveries, 0.50),
        p99: quantile(&mut deliveries, 0.99),
        all_median: quantile(&mut lasts, 0.50),
        all_worst: quantile(&mut deliveries, 1.0),
        from_send: median(from_send),
        changes: changes.len(),
        server_cpu: Duration::ZERO,
        client_cpu: Duration::ZERO,
        events_per_second: quantile(&mut rates, 0.5),
    }
}

/// The `p` quantile (0 to 1) of `samples`: the sample at index ⌊p·n⌋ once sorted,
/// so the median of an even count is the upper middle one (as [`median`]'s) and p99
/// of fewer than a hundred samples is their maximum.
fn quantile(samples: &mut [f64], p: f64) -> f64 {
    samples.sort_by(f64::total_cmp);
    let at = (samples.len() as f64 * p) as usize;
    samples
        .get(at.min(samples.len().saturating_sub(1)))
        .copied()
        .unwrap_or_default()
}

/// The body of change `k`, and what its event carries to tell it from the others.
fn patch(k: usize) -> (Bytes, Vec<u8>) {
    let name = format!("fan-{k}");
    let marker = format!(r#""name":"{name}""#).into_bytes();
    (Bytes::from(json!({ "name": name }).to_string()), marker)
}

/// The HTTP client that makes the changes, on a thread and a runtime of its own:
/// the moment an answer arrives is read when it arrives, not when the thread that
/// reads a thousand sockets gets round to it.
struct Patcher {
    orders: Option<mpsc::UnboundedSender<Order>>,
    thread: Option<JoinHandle<()>>,
}

/// `PATCH`es to send one after the other, each after its answer, and where to say
/// when the first was sent and the last answered.
struct Order {
    bodies: Vec<Bytes>,
    done: oneshot::Sender<Result<(Instant, Instant), BenchError>>,
}

impl Patcher {
    /// Connects to `addr` from a thread of its own.
    async fn start(addr: SocketAddr) -> Result<Self, BenchError> {
        let (orders, mut taken) = mpsc::unbounded_channel::<Order>();
        let (connected, ready) = oneshot::channel();
        let thread = std::thread::Builder::new()
            .name("patcher".into())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(runtime) => runtime,
                    Err(err) => {
                        let _ = connected.send(Err(BenchError::Io("a runtime".into(), err)));
                        return;
                    }
                };
                runtime.block_on(async move {
                    let mut h1 = match Http1::connect(addr).await {
                        Ok(h1) => h1,
                        Err(err) => {
                            let _ = connected.send(Err(err));
                            return;
                        }
                    };
                    let _ = connected.send(Ok(()));
                    while let Some(order) = taken.recv().await {
                        let _ = order.done.send(patches(&mut h1, order.bodies).await);
                    }
                    h1.close().await;
                });
            })
            .map_err(|err| BenchError::Io("starting the patcher thread".into(), err))?;
        let patcher = Self {
            orders: Some(orders),
            thread: Some(thread),
        };
        ready.await.map_err(|_| BenchError::Unexpected {
            what: "the patcher thread".into(),
            detail: "ended before it connected".into(),
        })??;
        Ok(patcher)
    }

    /// Sends `bodies` as `PATCH`es of [`ITEM`], after a request that wakes the
    /// server: when the first was sent and the last answered.
    async fn patch(&self, bodies: Vec<Bytes>) -> Result<(Instant, Instant), BenchError> {
        let (done, answered) = oneshot::channel();
        let gone = || BenchError::Unexpected {
            what: "the patcher thread".into(),
            detail: "ended".into(),
        };
        self.orders
            .as_ref()
            .ok_or_else(gone)?
            .send(Order { bodies, done })
            .map_err(|_| gone())?;
        answered.await.map_err(|_| gone())?
    }
}

impl Drop for Patcher {
    fn drop(&mut self) {
        // Without orders, the thread closes its connection and ends.
        drop(self.orders.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The patcher thread's side of an order.
async fn patches(h1: &mut Http1, bodies: Vec<Bytes>) -> Result<(Instant, Instant), BenchError> {
    wake(h1).await?;
    let sent = Instant::now();
    for body in bodies {
        let reply = h1.send(Method::PATCH, ITEM, Some(body)).await?;
        expect_ok(&reply, "PATCH")?;
    }
    Ok((sent, Instant::now()))
}

/// Makes change `k` and reads its event on every socket, both at once (an event may
/// come before the answer).
async fn one_change(
    patcher: &Patcher,
    sockets: &mut [Socket],
    k: usize,
) -> Result<Change, BenchError> {
    let (body, marker) = patch(k);
    let received = receive(sockets, 1, &marker);
    let (patched, received) = join(patcher.patch(vec![body]), within("a fan-out", received)).await;
    let ((sent, answered), received) = (patched?, received?);
    Ok(Change {
        sent,
        answered,
        received,
    })
}

/// Makes `count` changes back to back (each `PATCH` waits for its answer, as a
/// client's would) while every socket reads them: the time from the first `PATCH`
/// to the last event read.
async fn burst(
    patcher: &Patcher,
    sockets: &mut [Socket],
    count: usize,
    change: &mut usize,
) -> Result<Duration, BenchError> {
    let first = *change + 1;
    *change += count;
    let (_, last_marker) = patch(*change);
    let bodies = (first..first + count).map(|k| patch(k).0).collect();
    let received = receive(sockets, count, &last_marker);
    let (patched, received) = join(patcher.patch(bodies), within("a burst", received)).await;
    let (started, _) = patched?;
    let last = received?.into_iter().max().unwrap_or(started);
    Ok(last.saturating_duration_since(started))
}

/// Reads `count` events on every socket, each one checked to be a `patch` and the
/// last to carry `marker`: when each socket read its last. Only sockets with a frame
/// waiting are polled, so a thousand of them cost the client no more than their
/// frames.
async fn receive(
    sockets: &mut [Socket],
    count: usize,
    marker: &[u8],
) -> Result<Vec<Instant>, BenchError> {
    let mut reading: FuturesUnordered<_> = sockets
        .iter_mut()
        .map(|socket| async move {
            for i in 1..=count {
                let frame = socket.next().await?;
                expect_type(&frame, "patch")?;
                if i == count && !contains(&frame, marker) {
                    return Err(BenchError::Unexpected {
                        what: "a change event".into(),
                        detail: format!(
                            "wanted {}, read {}",
                            String::from_utf8_lossy(marker),
                            String::from_utf8_lossy(&frame)
                        ),
                    });
                }
            }
            Ok::<_, BenchError>(Instant::now())
        })
        .collect();
    let mut times = Vec::with_capacity(reading.len());
    while let Some(read) = reading.next().await {
        times.push(read?);
    }
    Ok(times)
}

/// The fan-out figures of `framework` at the largest subscriber count of `plan`,
/// with subscriptions never checked again, checked every 60 s (the default: no
/// check falls due during the run), and checked before every event (each event
/// runs every subscriber's `GET` of the item first): what revocation costs.
pub(crate) fn rechecked(
    framework: Framework,
    runtime: &tokio::runtime::Runtime,
    plan: Plan,
) -> Result<Vec<(&'static str, FanOut)>, BenchError> {
    let largest = plan.subscribers.len().saturating_sub(1);
    let plan = Plan {
        subscribers: &plan.subscribers[largest..],
        ..plan
    };
    let mut figures = Vec::new();
    for (label, interval) in [
        ("off", None),
        ("60 s", Some(Duration::from_secs(60))),
        ("0 (every event)", Some(Duration::ZERO)),
    ] {
        eprintln!("  recheck {label}");
        let (served, addr) =
            Served::start(framework, crate::Setup::Recheck(interval), plan.server_cpus)?;
        let measured = runtime.block_on(all(framework, &served, addr, plan))?;
        drop(served);
        figures.extend(measured.into_iter().map(|figure| (label, figure)));
    }
    Ok(figures)
}
