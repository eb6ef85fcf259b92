//! Ops that use earlier ops' results: `{result=ID:PATH}` references (native and
//! Facebook formats), `$ID` and `If-Match: $ID` (Graph and multipart), and `if`
//! conditions.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use std::sync::{Arc, Mutex};

use batch_core::{BatchEndpoint, Config, ExecuteError, Executor, Format};
use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use serde_json::{Value, json};

/// `POST /things`: 201 with the request's JSON object (`{"form": text}` for any
/// other body) plus `"id": 7`, `Location:
/// /things/7` and `ETag: "v7"`; `/fail`: 500; anything else: a JSON echo of method,
/// uri, headers and body (parsed when it is JSON). Remembers every uri it saw.
#[derive(Clone, Default)]
struct App {
    seen: Arc<Mutex<Vec<String>>>,
}

impl Executor for App {
    async fn execute(
        &self,
        request: Request<Bytes>,
        _max: usize,
    ) -> Result<Response<Bytes>, ExecuteError> {
        self.seen.lock().unwrap().push(request.uri().to_string());
        let body: Value = serde_json::from_slice(request.body())
            .unwrap_or_else(|_| json!(String::from_utf8_lossy(request.body())));
        let response = match (request.method().as_str(), request.uri().path()) {
            ("POST", "/things") => {
                let mut thing = if body.is_object() {
                    body
                } else {
                    json!({"form": body})
                };
                thing["id"] = json!(7);
                Response::builder()
                    .status(201)
                    .header("location", "http://example.test/things/7?x=1")
                    .header("etag", "\"v7\"")
                    .header("content-type", "application/json")
                    .body(Bytes::from(thing.to_string()))
            }
            (_, "/fail") => Response::builder().status(500).body(Bytes::new()),
            (method, _) => {
                let headers: serde_json::Map<String, Value> = request
                    .headers()
                    .iter()
                    .map(|(n, v)| (n.to_string(), json!(v.to_str().unwrap())))
                    .collect();
                let echo = json!({
                    "method": method,
                    "uri": request.uri().to_string(),
                    "headers": headers,
                    "body": body,
                });
                Response::builder()
                    .header("content-type", "application/json")
                    .body(Bytes::from(echo.to_string()))
            }
        };
        Ok(response.unwrap())
    }
}

async fn send(
    config: Config,
    content_type: &str,
    body: String,
) -> (StatusCode, Value, Vec<String>) {
    let app = App::default();
    let request = Request::post("/batch")
        .header("content-type", content_type)
        .header("host", "example.test")
        .body(Full::new(Bytes::from(body)))
        .unwrap();
    let response = BatchEndpoint::new(config).handle(&app, request).await;
    let status = response.status();
    let body = serde_json::from_slice(response.body())
        .unwrap_or_else(|_| json!(String::from_utf8_lossy(response.body())));
    let seen = app.seen.lock().unwrap().clone();
    (status, body, seen)
}

async fn native(batch: Value) -> (StatusCode, Value, Vec<String>) {
    send(Config::default(), "application/json", batch.to_string()).await
}

fn create(id: &str, thing: Value) -> Value {
    json!({"id": id, "method": "POST", "url": "/things", "body": thing})
}

#[tokio::test]
async fn a_url_body_and_header_take_values_from_an_earlier_result() {
    let (status, body, _) = native(json!({"ops": [
        create("new", json!({"name": "pen", "tags": ["a", "b c"]})),
        {"method": "PATCH", "url": "/items/{result=new:$.id}?tags={result=new:$.tags[*]}",
         "headers": {"x-ref": "name={result=new:$['name']}"},
         "body": {"name": "{result=new:$.name}-2", "copy_of": "{result=new:$.id}",
                  "tags": "{result=new:$.tags.*}", "all": ["{result=new:$}"]}},
    ]}))
    .await;
    assert_eq!(status, 200);
    let echo = &body["results"][1]["body"];
    assert_eq!(body["results"][1]["status"], 200, "{body}");
    assert_eq!(echo["uri"], "/items/7?tags=a,b%20c");
    assert_eq!(echo["headers"]["x-ref"], "name=pen");
    assert_eq!(echo["body"]["name"], "pen-2");
    assert_eq!(
        echo["body"]["copy_of"], 7,
        "a whole string takes the value's type"
    );
    assert_eq!(echo["body"]["tags"], json!(["a", "b c"]));
    assert_eq!(echo["body"]["all"][0]["id"], 7);
}

#[tokio::test]
async fn a_reference_is_a_dependency_and_a_failed_one_is_not_run() {
    let (_, body, seen) = native(json!({"ops": [
        {"url": "/items/{result=bad:$.id}"},
        {"id": "bad", "url": "/fail"},
    ]}))
    .await;
    assert_eq!(body["results"][0]["status"], 424);
    assert_eq!(body["results"][0]["body"]["error"], "dependency_failed");
    assert_eq!(seen, ["/fail"]);
}

#[tokio::test]
async fn a_value_cannot_leave_its_segment() {
    let (_, body, seen) = native(json!({"ops": [
        create("new", json!({"name": "../../whoami", "dots": "..", "query": "a&b=c#d"})),
        {"url": "/items/{result=new:$.name}"},
        {"url": "/items/{result=new:$.dots}"},
        {"url": "/items/x?q={result=new:$.query}"},
    ]}))
    .await;
    let results = &body["results"];
    for at in [1, 2] {
        assert_eq!(results[at]["status"], 424, "{body}");
        assert_eq!(results[at]["body"]["error"], "reference_invalid");
    }
    assert_eq!(results[3]["status"], 200);
    assert_eq!(results[3]["body"]["uri"], "/items/x?q=a%26b%3Dc%23d");
    assert_eq!(seen, ["/things", "/items/x?q=a%26b%3Dc%23d"]);
}

#[tokio::test]
async fn missing_values_too_large_values_and_bad_headers_are_424() {
    let big = "x".repeat(9000);
    let (_, body, seen) = native(json!({"ops": [
        create("new", json!({"big": big, "crlf": "a\r\nb", "list": []})),
        {"url": "/items/{result=new:$.nope}"},
        {"url": "/items/{result=new:$.list[0]}"},
        {"url": "/items/{result=new:$.big}"},
        {"url": "/echo", "headers": {"x-a": "{result=new:$.crlf}"}},
        {"url": "/echo", "method": "POST", "body": {"b": "{result=new:$.big}"}},
    ]}))
    .await;
    let results = &body["results"];
    let errors: Vec<&Value> = (1..=5).map(|i| &results[i]["body"]["error"]).collect();
    assert_eq!(
        errors,
        [
            "reference_unresolved",
            "reference_unresolved",
            "reference_too_large",
            "reference_invalid",
            "reference_too_large"
        ]
    );
    assert_eq!(results[1]["body"]["reference"], "{result=new:$.nope}");
    assert!((1..=5).all(|i| results[i]["status"] == 424));
    assert_eq!(seen, ["/things"]);
}

#[tokio::test]
async fn a_body_that_is_not_json_cannot_be_referred_to() {
    let (_, body, _) = native(json!({"ops": [
        {"id": "t", "url": "/fail-not", "method": "HEAD"},
        {"url": "/items/{result=t:$.id}"},
    ]}))
    .await;
    assert_eq!(body["results"][1]["body"]["error"], "reference_unresolved");
}

#[tokio::test]
async fn bad_references_refuse_the_batch_before_anything_runs() {
    let many: String = (0..17).map(|_| "{result=a:$.id}").collect();
    for (op, pointer) in [
        (json!({"url": "/x/{result=nope:$.id}"}), "/ops/1/url"),
        (json!({"url": "/x/{result=a:$..id}"}), "/ops/1/url"),
        (json!({"url": "/x/{result=a:$[?(@.x)]}"}), "/ops/1/url"),
        (
            json!({"url": "/x", "headers": {"x-a": "{result=a:id}"}}),
            "/ops/1/headers/x-a",
        ),
        (
            json!({"url": "/x", "method": "POST", "body": {"a": "{result=a}"}}),
            "/ops/1/body",
        ),
        (
            json!({"url": "/x", "method": "POST", "body": {"a": many}}),
            "/ops/1/body",
        ),
        (json!({"url": "/x/{result=a:$.id}/../y"}), "/ops/1/url"),
        (json!({"url": "/x", "if": "$nope/$succeeded"}), "/ops/1/if"),
        (json!({"url": "/x", "if": "$a/$succeeded and"}), "/ops/1/if"),
    ] {
        let (status, body, seen) = native(json!({"ops": [create("a", json!({})), op]})).await;
        assert_eq!(status, 422, "{op}: {body}");
        assert_eq!(body["pointer"], pointer, "{op}");
        assert!(seen.is_empty());
    }
    let (status, body, _) = native(json!({"sequential": true, "ops": [
        {"url": "/x/{result=a:$.id}"}, create("a", json!({})),
    ]}))
    .await;
    assert_eq!(status, 422, "{body}");
    let (status, _, _) = native(json!({"ops": [{"id": "me", "url": "/x/{result=me:$.id}"}]})).await;
    assert_eq!(status, 422, "an op cannot refer to itself");
    let (status, _, _) = native(json!({"ops": [{"url": "/x/{y}"}]})).await;
    assert_eq!(
        status, 422,
        "braces that are no reference are refused as before"
    );
}

#[tokio::test]
async fn route_rules_hold_for_the_url_a_reference_completes() {
    let config = Config::builder()
        .deny_routes(["/secret/*"])
        .build()
        .unwrap();
    let batch = json!({"ops": [
        create("new", json!({"segment": "secret"})),
        {"url": "/{result=new:$.segment}/x"},
        {"url": "/open/{result=new:$.segment}"},
    ]});
    let (status, body, seen) = send(config, "application/json", batch.to_string()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["results"][1]["status"], 403);
    assert_eq!(body["results"][1]["body"]["error"], "route_refused");
    assert_eq!(body["results"][2]["status"], 200);
    assert_eq!(seen, ["/things", "/open/secret"]);
}

#[tokio::test]
async fn a_params_value_that_is_one_reference_keeps_its_type() {
    let (_, body, seen) = native(json!({"ops": [
        create("new", json!({"name": "a&b=c", "tags": ["x", "y z"], "on": true, "none": null,
                             "owner": {"id": 1}})),
        {"url": "/echo?q=1", "params": {"tag": "{result=new:$.tags[*]}", "all": "{result=new:$.tags}",
                                        "name": "{result=new:$.name}", "id": "{result=new:$.id}",
                                        "on": "{result=new:$.on}", "none": "{result=new:$.none}",
                                        "n": "x-{result=new:$.id}", "t": "{result=new:$.tags.*}-"}},
        {"url": "/echo", "params": {"owner": "{result=new:$.owner}"}},
        {"url": "/echo", "params": {"owner": "{result=new:$.*}"}},
    ]}))
    .await;
    assert_eq!(
        body["results"][1]["body"]["uri"],
        "/echo?q=1&all=x&all=y%20z&id=7&n=x-7&name=a%26b%3Dc&none=&on=true&t=x,y%20z-&tag=x&tag=y%20z",
        "{body}"
    );
    for refused in [2, 3] {
        assert_eq!(body["results"][refused]["status"], 424, "{body}");
        assert_eq!(
            body["results"][refused]["body"]["error"],
            "reference_invalid"
        );
    }
    assert_eq!(seen.len(), 2);
}

#[tokio::test]
async fn conditions_run_an_op_on_its_dependencies_outcome() {
    let (_, body, seen) = native(json!({"ops": [
        {"id": "a", "url": "/fail"},
        {"id": "b", "url": "/ok"},
        {"id": "fallback", "url": "/fallback", "if": "not $a/$succeeded"},
        {"id": "both", "url": "/both", "if": "$a/$succeeded and $b/$succeeded"},
        {"id": "either", "url": "/either", "if": "($a/$succeeded or $b/$succeeded) and not $both/$succeeded"},
        {"url": "/after", "depends_on": ["both"]},
    ]}))
    .await;
    let statuses: Vec<&Value> = body["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| &r["status"])
        .collect();
    assert_eq!(statuses, [500, 200, 200, 412, 200, 424]);
    assert_eq!(
        body["results"][3]["body"],
        json!({"error": "condition_false"})
    );
    seen.iter().for_each(|uri| assert_ne!(uri, "/both"));
}

#[tokio::test]
async fn odata_references_take_location_and_etag() {
    let graph = json!({"requests": [
        {"id": "1", "method": "POST", "url": "things", "body": {"name": "x"},
         "headers": {"content-type": "application/json"}},
        {"id": "2", "method": "PATCH", "url": "$1/tags?a=b", "headers": {"if-match": "$1"}},
        {"id": "3", "method": "GET", "url": "/$metadata"},
        {"id": "4", "method": "GET", "url": "/ok", "if": "not $1/$succeeded"},
    ]});
    let (status, body, _) = send(Config::default(), "application/json", graph.to_string()).await;
    assert_eq!(status, 200, "{body}");
    let echo = &body["responses"][1]["body"];
    assert_eq!(echo["uri"], "/things/7/tags?a=b");
    assert_eq!(echo["headers"]["if-match"], "\"v7\"");
    assert_eq!(body["responses"][2]["body"]["uri"], "/$metadata");
    assert_eq!(body["responses"][3]["status"], 412);

    let multipart = "--b\r\nContent-Type: application/http\r\nContent-ID: 1\r\n\r\nPOST /things HTTP/1.1\r\nContent-Type: application/json\r\n\r\n{}\r\n--b\r\nContent-Type: application/http\r\nContent-ID: 2\r\n\r\nGET $1/x HTTP/1.1\r\nIf-Match: $1\r\n\r\n\r\n--b--\r\n";
    let (status, body, seen) = send(
        Config::default(),
        "multipart/mixed; boundary=b",
        multipart.into(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(seen, ["/things", "/things/7/x"]);
    assert!(
        body.as_str().unwrap().contains(r#""if-match":"\"v7\"""#),
        "{body}"
    );
}

#[tokio::test]
async fn facebook_references_in_the_url_and_the_form_body() {
    let config = Config::builder()
        .format(Format::Facebook, true)
        .build()
        .unwrap();
    let batch = json!([
        {"method": "POST", "relative_url": "things", "name": "new",
         "body": "ignored=1"},
        {"method": "POST", "relative_url": "echo/{result=new:$.id}",
         "body": "copy={result=new:$.id}&q={result=new:$.form}"},
    ]);
    let form = format!(
        "batch={}",
        batch
            .to_string()
            .bytes()
            .map(|b| format!("%{b:02X}"))
            .collect::<String>()
    );
    let (status, body, seen) = send(config, "application/x-www-form-urlencoded", form).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(seen[1], "/echo/7", "{body}");
    let echo: Value = serde_json::from_str(body[1]["body"].as_str().unwrap()).unwrap();
    assert_eq!(
        echo["body"], "copy=7&q=ignored%3D1",
        "a value stays one form value"
    );
}

#[tokio::test]
async fn a_condition_is_a_string_and_round_trips_with_serde() {
    let (status, body, _) = native(json!({"ops": [{"url": "/x", "if": true}]})).await;
    assert_eq!(
        (status.as_u16(), &body["pointer"]),
        (400, &json!("/ops/0/if"))
    );
    let graph = json!({"requests": [{"id": "1", "method": "GET", "url": "/x", "if": 1}]});
    let (status, body, _) = send(Config::default(), "application/json", graph.to_string()).await;
    assert_eq!(
        (status.as_u16(), &body["pointer"]),
        (400, &json!("/requests/0/if"))
    );

    let batch: batch_core::BatchRequest =
        serde_json::from_value(json!({"ops": [{"url": "/x", "if": "$a/$succeeded"}]})).unwrap();
    assert_eq!(batch.ops[0].condition.as_deref(), Some("$a/$succeeded"));
    let json = serde_json::to_value(&batch).unwrap();
    assert_eq!(json["ops"][0]["if"], "$a/$succeeded");
}
