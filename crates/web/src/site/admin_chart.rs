//! The jobs page's chart: jobs finished and failed per minute over the last hour, drawn on the server as an SVG
//! (no script, no library; readable by a screen reader through each bar's title and the summary line).

use chrono::{DateTime, Duration, DurationRound, Utc};

const MINUTES: i64 = 60;
const WIDTH: i64 = 600;
const HEIGHT: i64 = 100;

/// The chart for `now`, from the per-minute counts `Store::jobs_finished_per_minute` gave.
pub fn finished_per_minute(counts: &[(String, String, i64)], now: DateTime<Utc>) -> String {
    let end = now.duration_trunc(Duration::minutes(1)).unwrap_or(now);
    let minutes: Vec<DateTime<Utc>> = (0..MINUTES)
        .map(|i| end - Duration::minutes(MINUTES - 1 - i))
        .collect();
    let at = |minute: &DateTime<Utc>, state: &str| -> i64 {
        let key = minute.format("%Y-%m-%dT%H:%M").to_string();
        counts
            .iter()
            .filter(|(m, s, _)| *m == key && s == state)
            .map(|(_, _, n)| n)
            .sum()
    };
    let bars: Vec<(i64, i64)> = minutes
        .iter()
        .map(|m| (at(m, "done"), at(m, "failed")))
        .collect();
    let top = bars.iter().map(|(d, f)| d + f).max().unwrap_or(0).max(1);
    let (done, failed): (i64, i64) = bars.iter().fold((0, 0), |(a, b), (d, f)| (a + d, b + f));
    let slot = WIDTH / MINUTES;
    let mut svg = format!(
        "<svg class=\"chart\" viewBox=\"0 0 {WIDTH} {}\" width=\"100%\" role=\"img\" \
         aria-label=\"Jobs finished per minute over the last hour: {done} done, {failed} failed\">",
        HEIGHT + 14
    );
    for (i, ((d, f), minute)) in bars.iter().zip(&minutes).enumerate() {
        let x = i as i64 * slot;
        let hd = d * HEIGHT / top;
        let hf = f * HEIGHT / top;
        let title = format!("{}: {d} done, {f} failed", minute.format("%H:%M"));
        svg.push_str(&format!(
            "<g><title>{title}</title>\
             <rect x=\"{x}\" y=\"{}\" width=\"{}\" height=\"{hd}\" fill=\"#2e7d32\"/>\
             <rect x=\"{x}\" y=\"{}\" width=\"{}\" height=\"{hf}\" fill=\"#c62828\"/></g>",
            HEIGHT - hd,
            slot - 1,
            HEIGHT - hd - hf,
            slot - 1
        ));
    }
    svg.push_str(&format!(
        "<text x=\"0\" y=\"{y}\" font-size=\"11\">{}</text>\
         <text x=\"{WIDTH}\" y=\"{y}\" font-size=\"11\" text-anchor=\"end\">{} UTC · peak {top}/min</text></svg>",
        minutes[0].format("%H:%M"),
        end.format("%H:%M"),
        y = HEIGHT + 12
    ));
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_minute_is_a_bar_scaled_to_the_busiest() {
        let now = "2026-11-30T10:30:20Z".parse().unwrap();
        let counts = vec![
            ("2026-11-30T10:30".to_owned(), "done".to_owned(), 8),
            ("2026-11-30T10:30".to_owned(), "failed".to_owned(), 2),
            ("2026-11-30T09:31".to_owned(), "done".to_owned(), 5),
            // Before the hour: not drawn.
            ("2026-11-30T09:30".to_owned(), "done".to_owned(), 99),
        ];
        let svg = finished_per_minute(&counts, now);
        assert!(svg.contains("13 done, 2 failed"), "{svg}");
        assert!(
            svg.contains("<title>10:30: 8 done, 2 failed</title>"),
            "{svg}"
        );
        assert!(
            svg.contains("<title>09:31: 5 done, 0 failed</title>"),
            "{svg}"
        );
        assert!(svg.contains("peak 10/min"), "{svg}");
        assert_eq!(svg.matches("<g>").count(), 60);
        // The busiest minute's bars fill the height: 80 done over 20 failed.
        assert!(svg.contains("y=\"20\" width=\"9\" height=\"80\""), "{svg}");
    }
}
