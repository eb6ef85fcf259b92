//! Writing the native answer, `{"results": [...]}`.

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Response, header};

use crate::codec::json::{RESULTS, Writer, is_json_alone};
use crate::headers;
use crate::model::{BatchResponse, ResultParts};

/// The native answer as a `200 OK` `application/json` response.
pub(crate) fn encode(response: &BatchResponse) -> Response<Bytes> {
    write(response).into_response()
}

/// `{"results": [...]}`, each result `{"id", "status", "headers", "body"}`, headers
/// only when the batch asked for them and only id and status for a silent success.
pub(super) fn write(response: &BatchResponse) -> Writer {
    let include_headers = response.include_headers;
    Writer::results(RESULTS, &response.results, |out, result| {
        rest(out, result, include_headers);
    })
}

/// The native answer written one result at a time, in request order: each result
/// can be dropped once it is in, rather than held until the batch ends.
pub(crate) struct Answer {
    out: Writer,
    include_headers: bool,
    /// How many results are in.
    written: usize,
}

impl Answer {
    /// An answer for a batch of `ops` ops, its results with their headers or not.
    pub(crate) fn new(ops: usize, include_headers: bool) -> Self {
        // Room for a small result per op (its id, status, a header or two and a
        // short body): a batch of them is rarely copied as it grows.
        let mut out = Writer::with_capacity(32 + 128 * ops);
        out.open_list(RESULTS);
        Self {
            out,
            include_headers,
            written: 0,
        }
    }

    /// Writes the next result, as [`encode`] writes it.
    // Always inlined, with all it calls (the closure too, and the writer's
    // `result_item` and `opened`): the engine writes nearly every result here, from
    // where the op's response lies, and any piece the compiler leaves out of line
    // costs ~20 instructions a result.
    #[inline(always)]
    pub(crate) fn push(&mut self, result: ResultParts<'_>) {
        let include_headers = self.include_headers;
        self.out.result_item(
            self.written,
            result,
            #[inline(always)]
            |out, result| rest(out, result, include_headers),
        );
        self.written += 1;
    }

    /// The answer, every result in, as a `200 OK` `application/json` response, its
    /// header map made of `headers`: a map that has room already (the last
    /// result's), which a map made anew allocates (two blocks).
    // Always inlined: a call of its own wrote the response (136 bytes) in its frame
    // and copied it out to the engine's `Writing`, the caller (~50 instructions).
    #[inline(always)]
    pub(crate) fn into_response(mut self, mut headers: HeaderMap) -> Response<Bytes> {
        self.out.close_list();
        // A map that is the answer's own already, as the last result's is when the
        // application answers JSON, is kept as it is: emptied and filled again, it
        // cost a walk and an insert (~200 instructions).
        if !is_json_alone(&headers) {
            headers.clear();
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
        }
        let mut response = Response::new(Bytes::from(self.out.into_bytes()));
        headers::replace_map(response.headers_mut(), headers);
        response
    }
}

/// The native `results` array alone, for a message that carries it.
pub(crate) fn write_results(out: &mut Writer, response: &BatchResponse) {
    let include_headers = response.include_headers;
    out.result_list(&response.results, |out, result| {
        rest(out, result, include_headers);
    });
}

/// One result as a streamed answer writes it: the native result object, led by
/// `"index"` (the op's position in the batch).
pub(crate) fn write_indexed(
    out: &mut Writer,
    index: usize,
    result: ResultParts<'_>,
    include_headers: bool,
) {
    out.raw(br#"{"index":"#);
    out.raw(index.to_string().as_bytes());
    out.raw(br#","id":""#);
    out.id_and_status(result.id, result.status);
    rest(out, result, include_headers);
    out.raw(b"}");
}

/// What a result carries after its id and status.
// Always inlined: it writes every result, and called it costs a call's saves and
// restores.
#[inline(always)]
pub(super) fn rest(out: &mut Writer, result: ResultParts<'_>, include_headers: bool) {
    if result.silent && result.status.is_success() {
        return;
    }
    if include_headers {
        out.headers(result.headers, false);
    }
    out.body(result.body);
}
