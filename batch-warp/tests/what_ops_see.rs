//! What an op's filters see of the outer request: headers, the batch marker and,
//! through `batch_warp::remote`, the remote address.

mod common;

use std::net::SocketAddr;

use batch_core::{BatchOp, Config};
use common::{get, post_batch, serve};
use serde_json::json;
use warp::Filter;

fn routes()
-> impl Filter<Extract = (warp::reply::Json,), Error = warp::Rejection> + Clone + Send + Sync + 'static
{
    warp::path!("seen")
        .and(batch_warp::remote())
        .and(warp::addr::remote())
        .and(warp::ext::optional::<BatchOp>())
        .and(warp::header::optional::<String>("authorization"))
        .map(
            |remote: Option<SocketAddr>,
             warp_remote: Option<SocketAddr>,
             op: Option<BatchOp>,
             auth: Option<String>| {
                warp::reply::json(&json!({
                    "remote": remote.map(|a| a.ip().to_string()),
                    "warp_remote": warp_remote.map(|a| a.ip().to_string()),
                    "op": op.map(|op| op.index()),
                    "authorization": auth,
                }))
            },
        )
}

#[tokio::test]
async fn ops_see_the_batch_requests_remote_address_headers_and_their_index() {
    let addr = serve(batch_warp::with_batch(routes(), Config::default())).await;
    let direct = get(addr, "/seen").await.json();
    assert_eq!(
        direct,
        json!({"remote": "127.0.0.1", "warp_remote": "127.0.0.1", "op": null, "authorization": null})
    );
    let answer = post_batch(
        addr,
        &json!({"ops": [{"url": "/seen"}, {"url": "/seen"}]}),
        "\r\nauthorization: Bearer ada",
    )
    .await;
    let results = answer.json()["results"].clone();
    for index in 0..2 {
        assert_eq!(
            results[index]["body"],
            json!({
                "remote": "127.0.0.1",
                "warp_remote": null,
                "op": index,
                "authorization": "Bearer ada",
            }),
            "op {index}"
        );
    }
}

#[tokio::test]
async fn a_batch_reached_as_an_op_of_another_batch_is_refused() {
    let inner = batch_warp::with_batch(
        routes(),
        Config::builder().path("/inner-batch").build().unwrap(),
    );
    let addr = serve(batch_warp::with_batch(inner, Config::default())).await;
    let nested = json!({"ops": [{"url": "/seen"}]});
    let answer = post_batch(
        addr,
        &json!({"ops": [{"method": "POST", "url": "/inner-batch", "body": nested}]}),
        "",
    )
    .await;
    let result = &answer.json()["results"][0];
    assert_eq!(result["status"], 422, "{result}");
}
