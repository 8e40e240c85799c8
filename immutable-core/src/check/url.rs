//! The URL parsing the HTTP-based checks share.

use crate::{Error, Result};

/// `url` parsed, and refused with an error naming the `url` field unless it is http(s).
pub(crate) fn parse_http_url(url: &str) -> Result<reqwest::Url> {
    let url = reqwest::Url::parse(url)
        .map_err(|e| Error::invalid("url", format!("`{url}` is not a URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(Error::invalid(
            "url",
            format!("`{url}` is not http or https"),
        ));
    }
    Ok(url)
}
