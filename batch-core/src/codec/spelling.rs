//! How the formats spell the HTTP they carry: media types with parameters, header
//! names in the case clients look them up by, urls relative to the service root.

use std::borrow::Cow;

/// A media type without its parameters, lower-case.
pub(crate) fn essence(content_type: &str) -> Cow<'_, str> {
    // One pass up to the parameters' `;`, noting any upper case on the way: every
    // batch's content type is read here.
    let mut upper = false;
    let end = content_type
        .bytes()
        .position(|b| {
            upper |= b.is_ascii_uppercase();
            b == b';'
        })
        .unwrap_or(content_type.len());
    let essence = content_type[..end].trim();
    if upper {
        Cow::Owned(essence.to_ascii_lowercase())
    } else {
        Cow::Borrowed(essence)
    }
}

/// A header name in the case most clients expect (`Content-Type`, `X-Request-Id`):
/// Graph's SDK looks up `Content-Type` spelled exactly so.
pub(crate) fn canonical_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut upper = true;
    for c in name.chars() {
        out.push(if upper {
            c.to_ascii_uppercase()
        } else {
            c.to_ascii_lowercase()
        });
        upper = c == '-';
    }
    out
}

/// An op url relative to the service root (`me/drive`, as Graph, OData and Facebook
/// clients write them) made origin-form; a url with a scheme is left as sent, for
/// validation to refuse.
pub(crate) fn rooted(url: String) -> String {
    if url.starts_with('/') || url.contains("://") {
        url
    } else {
        format!("/{url}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_essence_is_the_type_without_parameters_in_lower_case() {
        assert_eq!(essence("application/json"), "application/json");
        assert_eq!(
            essence(" Application/JSON ; charset=UTF-8"),
            "application/json"
        );
        assert!(matches!(
            essence("text/plain;Q=1"),
            Cow::Borrowed("text/plain")
        ));
        assert_eq!(essence(""), "");
    }

    #[test]
    fn canonical_names() {
        assert_eq!(canonical_name("content-type"), "Content-Type");
        assert_eq!(canonical_name("x-request-id"), "X-Request-Id");
        assert_eq!(canonical_name("etag"), "Etag");
    }

    #[test]
    fn relative_urls_are_rooted() {
        assert_eq!(rooted("me/drive".into()), "/me/drive");
        assert_eq!(rooted("/items".into()), "/items");
        assert_eq!(rooted("https://x/y".into()), "https://x/y");
    }
}
