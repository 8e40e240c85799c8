//! A PromQL query with `{{placeholder}}`s for the new fleet's labels, parsed once at build time.

use std::fmt;

use crate::check::CheckContext;
use crate::{Error, Result};

/// A label of the new fleet that a query may name as `{{name}}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Placeholder {
    Service,
    Deployment,
    Target,
    Image,
    Weight,
}

impl Placeholder {
    const ALL: [Placeholder; 5] = [
        Placeholder::Service,
        Placeholder::Deployment,
        Placeholder::Target,
        Placeholder::Image,
        Placeholder::Weight,
    ];

    fn name(self) -> &'static str {
        match self {
            Placeholder::Service => "service",
            Placeholder::Deployment => "deployment",
            Placeholder::Target => "target",
            Placeholder::Image => "image",
            Placeholder::Weight => "weight",
        }
    }

    fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.name() == name)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    Label(Placeholder),
}

/// Why a query could not be rendered for a context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Unrendered {
    /// The query names `{{image}}` but the context names no image.
    NoImage,
}

impl fmt::Display for Unrendered {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Unrendered::NoImage => f.write_str(
                "the query names {{image}}, but the check context names no image \
                 (outside the engine, give one with CheckContext::with_image)",
            ),
        }
    }
}

/// The query text, split into literal text and placeholders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct QueryTemplate {
    source: String,
    parts: Vec<Part>,
}

impl QueryTemplate {
    /// Parses `query`; an empty query, an unclosed `{{` or an unknown placeholder is an
    /// [`Error::InvalidInput`] on the `query` field.
    pub(super) fn parse(query: &str) -> Result<Self> {
        if query.trim().is_empty() {
            return Err(Error::invalid("query", "the query is empty"));
        }
        let mut parts = Vec::new();
        let mut rest = query;
        while let Some(start) = rest.find("{{") {
            push_text(&mut parts, &rest[..start]);
            let after = &rest[start + 2..];
            let end = after.find("}}").ok_or_else(|| {
                Error::invalid("query", format!("`{{{{` without `}}}}` in `{query}`"))
            })?;
            let name = after[..end].trim();
            let label = Placeholder::parse(name).ok_or_else(|| {
                let known: Vec<String> = Placeholder::ALL
                    .iter()
                    .map(|p| format!("{{{{{}}}}}", p.name()))
                    .collect();
                Error::invalid(
                    "query",
                    format!(
                        "unknown placeholder `{{{{{name}}}}}`; known: {}",
                        known.join(", ")
                    ),
                )
            })?;
            parts.push(Part::Label(label));
            rest = &after[end + 2..];
        }
        push_text(&mut parts, rest);
        Ok(QueryTemplate {
            source: query.to_owned(),
            parts,
        })
    }

    /// The query as written, placeholders included.
    pub(super) fn source(&self) -> &str {
        &self.source
    }

    /// The query with the context's labels in place of the placeholders, each escaped for a
    /// double-quoted PromQL string.
    pub(super) fn render(&self, ctx: &CheckContext<'_>) -> Result<String, Unrendered> {
        self.render_with(|label| match label {
            Placeholder::Service => Some(ctx.service.to_string()),
            Placeholder::Deployment => Some(ctx.deployment.to_string()),
            Placeholder::Target => Some(ctx.target.to_string()),
            Placeholder::Image => ctx.image.map(ToString::to_string),
            Placeholder::Weight => Some(ctx.weight.to_string()),
        })
    }

    /// The query with `value(label)` in place of each placeholder; `None` only for an image.
    fn render_with(
        &self,
        value: impl Fn(Placeholder) -> Option<String>,
    ) -> Result<String, Unrendered> {
        let mut query = String::with_capacity(self.source.len() + 32);
        for part in &self.parts {
            match part {
                Part::Text(text) => query.push_str(text),
                Part::Label(label) => {
                    push_escaped(&mut query, &value(*label).ok_or(Unrendered::NoImage)?)
                }
            }
        }
        Ok(query)
    }
}

fn push_text(parts: &mut Vec<Part>, text: &str) {
    if !text.is_empty() {
        parts.push(Part::Text(text.to_owned()));
    }
}

/// PromQL strings take Go's escapes: a backslash or a double quote is escaped, and a newline
/// written as `\n`, so a label value cannot end the string it is placed in.
fn push_escaped(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(query: &str, image: Option<&str>) -> Result<String, Unrendered> {
        QueryTemplate::parse(query)
            .unwrap()
            .render_with(|label| match label {
                Placeholder::Service => Some("web".into()),
                Placeholder::Deployment => Some("01JDEPLOY".into()),
                Placeholder::Target => Some("tg-\"2\"".into()),
                Placeholder::Image => image.map(Into::into),
                Placeholder::Weight => Some("10".into()),
            })
    }

    #[test]
    fn placeholders_take_the_contexts_labels() {
        let q = r#"sum(rate(errors{service="{{service}}",deployment="{{ deployment }}"}[1m]))"#;
        assert_eq!(
            render(q, None).unwrap(),
            r#"sum(rate(errors{service="web",deployment="01JDEPLOY"}[1m]))"#
        );
        assert_eq!(
            render("x{image=\"{{image}}\"} > {{weight}}", Some("ami-1")).unwrap(),
            "x{image=\"ami-1\"} > 10"
        );
        // Single braces are PromQL's own and stay as written.
        assert_eq!(render("up{job=\"a\"}", None).unwrap(), "up{job=\"a\"}");
    }

    #[test]
    fn values_are_escaped_for_promql_strings() {
        assert_eq!(
            render("x{target=\"{{target}}\"}", None).unwrap(),
            r#"x{target="tg-\"2\""}"#
        );
    }

    #[test]
    fn a_missing_image_is_named() {
        let err = render("x{image=\"{{image}}\"}", None).unwrap_err();
        assert_eq!(err, Unrendered::NoImage);
        assert!(err.to_string().contains("no image"), "{err}");
    }

    #[test]
    fn bad_templates_are_refused_naming_the_query_field() {
        for (query, needle) in [
            ("x{a=\"{{color}}\"}", "unknown placeholder `{{color}}`"),
            ("x{a=\"{{service\"}", "without"),
            ("  ", "empty"),
        ] {
            match QueryTemplate::parse(query) {
                Err(Error::InvalidInput { field, reason, .. }) => {
                    assert_eq!(field, "query");
                    assert!(reason.contains(needle), "{query}: {reason}");
                }
                other => panic!("{query}: {other:?}"),
            }
        }
    }
}
