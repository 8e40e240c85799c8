//! One HAProxy server's health, as its checks report it, in the core's terms.

use immutable_core::HealthState;

use super::api::ServerStat;

/// Whether HAProxy has not checked the server yet: just added, or put back after a restart.
pub(super) fn never_checked(row: &ServerStat) -> bool {
    matches!(row.check_status.trim_start_matches("* "), "" | "INI")
}

/// One server's health as HAProxy's checks see it.
///
/// HAProxy starts a new server as `UP 1/2` before any check has run, so a server counts as
/// healthy only once a check has passed: never checked is initial, whatever the status says.
pub(super) fn health_of(row: Option<&ServerStat>) -> (HealthState, Option<String>) {
    let Some(row) = row else {
        return (
            HealthState::Unavailable,
            Some("not in HAProxy (restarted, and not put back yet)".into()),
        );
    };
    // A check in progress is shown as `* <last result>`.
    let check = row.check_status.trim_start_matches("* ");
    let passed = matches!(check, "L4OK" | "L6OK" | "L7OK" | "L7OKC");
    let reason = (!row.check_desc.is_empty()).then(|| row.check_desc.clone());
    let status = row.status.as_str();
    let state = if status.starts_with("MAINT") {
        HealthState::Unavailable
    } else if status.starts_with("DRAIN") || status.starts_with("NOLB") {
        HealthState::Draining
    } else if matches!(check, "" | "INI") {
        HealthState::Initial
    } else if status.starts_with("UP") {
        // `UP 1/2` after a failed check: it passed before and still takes traffic.
        HealthState::Healthy
    } else if status.starts_with("DOWN") && passed {
        HealthState::Initial
    } else {
        HealthState::Unhealthy
    };
    (state, reason)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(status: &str, check: &str) -> ServerStat {
        ServerStat {
            proxy: "web".into(),
            name: "s".into(),
            status: status.into(),
            check_status: check.into(),
            check_desc: String::new(),
            sessions: 0,
        }
    }

    #[test]
    fn haproxy_states_map_to_health() {
        let h = |s, c| health_of(Some(&row(s, c))).0;
        assert_eq!(h("UP", "L7OK"), HealthState::Healthy);
        assert_eq!(h("UP", "* L7OK"), HealthState::Healthy);
        assert_eq!(h("UP 1/2", "L7STS"), HealthState::Healthy);
        // A new server, before its first check: HAProxy says `UP 1/2`.
        assert_eq!(h("UP 1/2", "INI"), HealthState::Initial);
        assert_eq!(h("UP", "INI"), HealthState::Initial);
        assert_eq!(h("DOWN", "INI"), HealthState::Initial);
        assert_eq!(h("DOWN 1/2", "L7OK"), HealthState::Initial);
        assert_eq!(h("DOWN", "L7STS"), HealthState::Unhealthy);
        assert_eq!(h("DOWN", "L4CON"), HealthState::Unhealthy);
        assert_eq!(h("DRAIN", "L7OK"), HealthState::Draining);
        assert_eq!(h("MAINT", "L7OK"), HealthState::Unavailable);
        assert_eq!(health_of(None).0, HealthState::Unavailable);
    }
}
