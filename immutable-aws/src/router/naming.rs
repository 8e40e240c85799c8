//! The name of a fleet's target group: stable, so attaching twice finds the first group, and
//! within the ELB's limits.

use immutable_core::{FleetId, ServiceName};

/// `imm-<service prefix>-<16 hex digits>`: at most 32 characters, letters, digits and hyphens.
pub(super) fn target_group_name(service: &ServiceName, fleet: &FleetId) -> String {
    format!(
        "{}{:016x}",
        name_prefix(service),
        fnv1a(&format!("{service}/{fleet}"))
    )
}

/// What every group name of the service starts with.
pub(super) fn name_prefix(service: &ServiceName) -> String {
    let cleaned: String = service
        .as_str()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .take(11)
        .collect();
    format!("imm-{}-", cleaned.trim_matches('-'))
}

fn fnv1a(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_group_names_fit_elb_rules_and_are_stable() {
        let s = ServiceName::new("checkout_api.prod-eu-west").unwrap();
        let f = FleetId::new("fleet-01jabcdefghjkmnpqrstvwxyz0");
        let n = target_group_name(&s, &f);
        assert!(n.len() <= 32, "{n}");
        assert!(
            n.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'),
            "{n}"
        );
        assert!(
            !n.ends_with('-') && n.starts_with("imm-checkout-ap-"),
            "{n}"
        );
        assert_eq!(n, target_group_name(&s, &f));
        assert_ne!(n, target_group_name(&s, &FleetId::new("fleet-2")));
    }
}
