//! Sockets on warp's own `ws` filter, over real connections: an upgrade goes
//! through the routes' filters, the socket path is the routes' own when sockets are
//! off, and what a direct mutation's filters see once sockets are on. The protocol,
//! events, origins and limits are the conformance suite's `socket` scenarios, run
//! on every adapter.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use batch_core::{Config, SocketConfig};
use common::{get, send, serve};
use fixture::socket_client::JsonSocket;
use serde_json::json;
use warp::http::StatusCode;
use warp::reply::Response;
use warp::{Filter, Rejection, Reply};

const WITHIN: Duration = Duration::from_secs(5);

/// Refused (401) when the request says `authorization: Bearer deny`, as an
/// authentication filter would.
#[derive(Debug)]
struct Denied;
impl warp::reject::Reject for Denied {}

/// `GET /items` (always `[]`) and `PATCH /whoami` behind a filter that refuses
/// `authorization: Bearer deny`, every rejection recovered.
fn routes() -> impl Filter<Extract = (Response,), Error = Infallible> + Clone + Send + Sync + 'static
{
    let deny = warp::header::optional::<String>("authorization")
        .and_then(|auth: Option<String>| async move {
            if auth.as_deref() == Some("Bearer deny") {
                Err(warp::reject::custom(Denied))
            } else {
                Ok(())
            }
        })
        .untuple_one();
    let list = warp::path!("items")
        .and(warp::get())
        .map(|| warp::reply::json(&json!([])).into_response());
    let whoami = warp::path!("whoami")
        .and(warp::patch())
        .and(batch_warp::remote())
        .and(warp::addr::remote())
        .map(
            |remote: Option<SocketAddr>, warp_remote: Option<SocketAddr>| {
                warp::reply::json(&json!({
                    "remote": remote.map(|a| a.ip().to_string()),
                    "warp_remote": warp_remote.map(|a| a.ip().to_string()),
                }))
                .into_response()
            },
        );
    deny.and(list.or(whoami).unify())
        .recover(|rejection: Rejection| async move {
            let status = if rejection.find::<Denied>().is_some() {
                StatusCode::UNAUTHORIZED
            } else if rejection.is_not_found() {
                StatusCode::NOT_FOUND
            } else {
                StatusCode::BAD_REQUEST
            };
            Ok::<_, Infallible>(status.into_response())
        })
        .unify()
}

fn sockets(sockets: SocketConfig) -> Config {
    Config::builder().sockets(sockets).build().unwrap()
}

async fn start(config: Config) -> SocketAddr {
    serve(batch_warp::with_batch(routes(), config)).await
}

#[tokio::test]
async fn a_filter_that_refuses_a_get_refuses_the_upgrade_with_its_answer() {
    let base = format!("http://{}", start(sockets(SocketConfig::default())).await);
    let denied = JsonSocket::connect(&base, &[("authorization", "Bearer deny")]).await;
    assert_eq!(denied.unwrap_err().refused_with(), Some(401));
    let mut socket = JsonSocket::connect(&base, &[("authorization", "Bearer ok")])
        .await
        .unwrap();
    let state = socket.subscribe("/items/", WITHIN).await.unwrap();
    assert_eq!(state["type"], "state", "{state}");
}

#[tokio::test]
async fn the_socket_path_without_an_upgrade_is_426_and_with_sockets_off_is_the_routes() {
    let addr = start(sockets(SocketConfig::default())).await;
    assert_eq!(get(addr, "/socket").await.status, 426);
    let addr = start(Config::default()).await;
    assert_eq!(get(addr, "/socket").await.status, 404);
    let base = format!("http://{addr}");
    assert_eq!(
        JsonSocket::open(&base).await.unwrap_err().refused_with(),
        Some(404)
    );
}

#[tokio::test]
async fn with_sockets_on_a_mutation_has_batch_warp_remote_but_not_warp_addr_remote() {
    let seen = |on: bool| async move {
        let config = if on {
            sockets(SocketConfig::default())
        } else {
            Config::default()
        };
        let addr = start(config).await;
        let answer = send(addr, "PATCH /whoami HTTP/1.1\r\ncontent-length: 0", b"").await;
        assert_eq!(answer.status, 200);
        answer.json()
    };
    assert_eq!(
        seen(false).await,
        json!({"remote": "127.0.0.1", "warp_remote": "127.0.0.1"})
    );
    assert_eq!(
        seen(true).await,
        json!({"remote": "127.0.0.1", "warp_remote": null}),
        "dispatched through warp::service, which knows no connection"
    );
}
