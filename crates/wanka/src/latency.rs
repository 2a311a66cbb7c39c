//! Latency figures for the benchmarks: quantiles of measured durations and their printed forms.

use std::time::Duration;

/// Milliseconds, two decimals.
pub fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

/// Microseconds, one decimal.
pub fn us(d: Duration) -> String {
    format!("{:.1} µs", d.as_secs_f64() * 1e6)
}

/// The `q` quantile (0..=1) of sorted durations, nearest rank; zero for none.
pub fn quantile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

/// "p50 …, p99 …, max …" of unsorted durations, in milliseconds.
pub fn summary(mut lat: Vec<Duration>) -> String {
    lat.sort_unstable();
    format!(
        "p50 {}, p99 {}, max {}",
        ms(quantile(&lat, 0.5)),
        ms(quantile(&lat, 0.99)),
        ms(lat.last().copied().unwrap_or_default())
    )
}
