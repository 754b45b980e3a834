//! Reading a Prometheus text page (the gateway's `/metrics`): one series by its exact name and
//! labels, or the sum of every series whose line starts with a prefix.

/// The value of the series written exactly as `series` (name and labels in the exporter's
/// order, e.g. `prehod_logins_total{method="rekono",outcome="success"}`); `None` if absent.
pub fn value(page: &str, series: &str) -> Option<f64> {
    page.lines().find_map(|l| {
        l.strip_prefix(series)?
            .strip_prefix(' ')?
            .trim()
            .parse()
            .ok()
    })
}

/// [`value`], 0 when the series is absent.
pub fn value_or_zero(page: &str, series: &str) -> f64 {
    value(page, series).unwrap_or(0.0)
}

/// The sum of every sample whose line starts with `prefix` (a name, or a name with the first
/// of its labels, e.g. `x_total{phase="idle"}`).
pub fn sum(page: &str, prefix: &str) -> f64 {
    page.lines()
        .filter(|l| l.starts_with(prefix))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGE: &str = "# HELP x_total x\n\
x_total{phase=\"idle\"} 2\n\
x_total{phase=\"body\"} 3\n\
x_total_other 100\n\
up 1\n";

    #[test]
    fn a_series_is_found_by_its_exact_labels_only() {
        assert_eq!(value(PAGE, "x_total{phase=\"body\"}"), Some(3.0));
        assert_eq!(value(PAGE, "x_total"), None, "a prefix is not a series");
        assert_eq!(value(PAGE, "up"), Some(1.0));
        assert_eq!(value_or_zero(PAGE, "absent"), 0.0);
    }

    #[test]
    fn a_sum_takes_every_line_with_the_prefix() {
        assert_eq!(sum(PAGE, "x_total{"), 5.0);
        assert_eq!(sum(PAGE, "x_total"), 105.0);
        assert_eq!(sum(PAGE, "absent"), 0.0);
    }
}
