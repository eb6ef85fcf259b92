//! Ops run in-process through the filter tree given to `with_batch`, and the batch
//! route leaves the tree's own answers and rejections alone.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use batch_core::Config;
use common::{get, post_batch, send, serve};
use serde_json::json;
use warp::Filter;

/// Items by id, a JSON echo, a PUT-only route and one that needs a header, behind
/// a filter that counts every request reaching them and a header-adding wrapper.
fn routes(
    hits: Arc<AtomicU64>,
) -> impl Filter<Extract = (impl warp::Reply,), Error = warp::Rejection> + Clone + Send + Sync + 'static
{
    let count = warp::any()
        .map(move || {
            hits.fetch_add(1, Ordering::SeqCst);
        })
        .untuple_one();
    let item = warp::path!("items" / u64)
        .and(warp::get())
        .map(|id: u64| warp::reply::json(&json!({"id": id})));
    let echo = warp::path!("echo")
        .and(warp::post())
        .and(warp::body::json())
        .map(|body: serde_json::Value| warp::reply::json(&json!({"got": body})));
    let put_only = warp::path!("put-only").and(warp::put()).map(warp::reply);
    let needs_key = warp::path!("needs-key")
        .and(warp::post())
        .and(warp::header::<String>("x-key"))
        .map(|key: String| key);
    count
        .and(item.or(echo).or(put_only).or(needs_key))
        .with(warp::reply::with::header("x-tree", "yes"))
}

/// Debug builds compile in warp's assertion against dispatching one route inside
/// another; this batch passing in `cargo test` (a debug build) shows the batch runs
/// outside the outer route.
#[tokio::test]
async fn a_batch_runs_every_op_through_the_filter_tree_in_a_debug_build() {
    let hits = Arc::new(AtomicU64::new(0));
    let addr = serve(batch_warp::with_batch(
        routes(hits.clone()),
        Config::default(),
    ))
    .await;
    let answer = post_batch(
        addr,
        &json!({"ops": [
            {"url": "/items/7"},
            {"method": "POST", "url": "/echo", "body": {"a": 1}},
            {"url": "/nowhere"}
        ]}),
        "",
    )
    .await;
    assert_eq!(
        answer.status,
        200,
        "{:?}",
        String::from_utf8_lossy(&answer.body)
    );
    let results = answer.json()["results"].clone();
    assert_eq!(results[0]["status"], 200);
    assert_eq!(results[0]["body"], json!({"id": 7}));
    assert_eq!(
        results[0]["headers"]["x-tree"], "yes",
        "wrapping filters run per op"
    );
    assert_eq!(results[1]["body"], json!({"got": {"a": 1}}));
    assert_eq!(results[2]["status"], 404);
    assert_eq!(
        hits.load(Ordering::SeqCst),
        3,
        "each op passed the counting filter once"
    );
    assert_eq!(
        answer.header("x-tree"),
        None,
        "the batch route is outside the tree"
    );
}

#[tokio::test]
async fn the_batch_route_does_not_shadow_the_routes_rejections() {
    let addr = serve(batch_warp::with_batch(
        routes(Arc::default()),
        Config::default(),
    ))
    .await;
    assert_eq!(get(addr, "/put-only").await.status, 405);
    let missing_header = send(addr, "POST /needs-key HTTP/1.1\r\ncontent-length: 0", b"").await;
    assert_eq!(missing_header.status, 400);
    assert_eq!(get(addr, "/nowhere").await.status, 404);
    assert_eq!(get(addr, "/items/3").await.header("x-tree"), Some("yes"));
}

#[tokio::test]
async fn recovered_routes_answer_their_own_rejections_but_not_on_the_batch_path() {
    let recovered = routes(Arc::default()).recover(|rejection: warp::Rejection| async move {
        let status = if rejection.is_not_found() { 404 } else { 400 };
        let reply = warp::reply::json(&json!({"error": "recovered"}));
        Ok::<_, std::convert::Infallible>(warp::reply::with_status(
            reply,
            warp::http::StatusCode::from_u16(status).unwrap_or_default(),
        ))
    });
    let addr = serve(batch_warp::with_batch(recovered, Config::default())).await;
    let wrong_method = get(addr, "/batch").await;
    assert_eq!(wrong_method.status, 405, "the batch path is the endpoint's");
    assert_eq!(wrong_method.header("allow"), Some("POST, OPTIONS"));
    let direct = get(addr, "/nowhere").await;
    assert_eq!(
        (direct.status, direct.json()),
        (404, json!({"error": "recovered"}))
    );
    let answer = post_batch(addr, &json!({"ops": [{"url": "/nowhere"}]}), "").await;
    let result = &answer.json()["results"][0];
    assert_eq!(result["status"], 404);
    assert_eq!(result["body"], json!({"error": "recovered"}));
}
