//! The one pagination loop every AWS describe call goes through.

use std::future::Future;

use immutable_core::Result;

/// Reads every page of a paginated describe call.
///
/// `page` reads the page a token names (`None`: the first) and returns its items with the token
/// of the next page. The loop ends at a missing or empty token (EC2 answers `NextToken`, ELBv2
/// `NextMarker`; some endpoints send an empty string on the last page).
pub(crate) async fn all_pages<T, F, Fut>(mut page: F) -> Result<Vec<T>>
where
    F: FnMut(Option<String>) -> Fut,
    Fut: Future<Output = Result<(Vec<T>, Option<String>)>>,
{
    let mut items = Vec::new();
    let mut token = None;
    loop {
        let (found, next) = page(token.take()).await?;
        items.extend(found);
        match next {
            Some(t) if !t.is_empty() => token = Some(t),
            _ => return Ok(items),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn pages_are_read_until_the_token_runs_out() {
        let pages = [
            (vec![1, 2], Some("a".to_owned())),
            (vec![3], Some(String::new())),
            (vec![4], None),
        ];
        let mut asked = Vec::new();
        let items = all_pages(|token| {
            asked.push(token.clone());
            let i = asked.len() - 1;
            let page = pages[i].clone();
            async move { Ok(page) }
        })
        .await
        .unwrap();
        assert_eq!(items, vec![1, 2, 3]);
        assert_eq!(asked, vec![None, Some("a".to_owned())]);
    }
}
