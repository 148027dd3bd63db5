//! The activity chart of a user's history page: events per day in four
//! series, as SVG bars (no script, no image request).

use crate::app::history::Entry;
use crate::domain::server_config::DAY_MS;

/// The series, in drawing order: their CSS class and what counts.
const SERIES: [(&str, &[&str]); 4] = [
    ("logins", &["LoginRecorded"]),
    ("grants", &["TokenIssued"]),
    ("revocations", &["TokenRevoked", "UserTokensRevoked"]),
    ("roles", &["RolesGranted", "RolesRemoved", "CustomRolesGranted", "CustomRolesRemoved"]),
];

const BAR: i64 = 3;
const GAP: i64 = 4;
const PLOT_HEIGHT: i64 = 100;
const TOP: i64 = 14;

pub struct Bar {
    pub series: &'static str,
    pub x: i64,
    pub y: i64,
    pub width: i64,
    pub height: i64,
    pub label: String,
}

pub struct Tick {
    pub x: i64,
    pub label: String,
}

pub struct Chart {
    pub width: i64,
    pub height: i64,
    pub baseline: i64,
    pub bars: Vec<Bar>,
    pub ticks: Vec<Tick>,
    pub max: u32,
    /// Events per series over the whole period.
    pub totals: [u32; 4],
    pub first_day: String,
    pub last_day: String,
}

fn day_label(day: i64) -> String {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    time::OffsetDateTime::from_unix_timestamp(day * 86_400)
        .ok()
        .and_then(|t| t.format(&format).ok())
        .unwrap_or_else(|| day.to_string())
}

/// The `days` days up to and including `now`'s, counted from `entries`.
pub fn activity(entries: &[Entry], now: i64, days: i64) -> Chart {
    let last = now.div_euclid(DAY_MS);
    let first = last - days + 1;
    let mut counts = vec![[0u32; 4]; days as usize];
    for entry in entries {
        let day = entry.recorded_at.div_euclid(DAY_MS);
        let Some(slot) = usize::try_from(day - first).ok().and_then(|i| counts.get_mut(i)) else {
            continue;
        };
        if let Some(series) = SERIES.iter().position(|(_, types)| types.contains(&entry.event_type.as_str())) {
            slot[series] += 1;
        }
    }
    let max = counts.iter().flatten().copied().max().unwrap_or(0).max(1);
    let group = BAR * 4 + GAP;
    let baseline = TOP + PLOT_HEIGHT;
    let mut bars = Vec::new();
    let mut totals = [0u32; 4];
    for (index, day) in counts.iter().enumerate() {
        let x0 = index as i64 * group + GAP / 2;
        for (series, count) in day.iter().enumerate() {
            totals[series] += count;
            if *count == 0 {
                continue;
            }
            let height = (i64::from(*count) * PLOT_HEIGHT / i64::from(max)).max(1);
            bars.push(Bar {
                series: SERIES[series].0,
                x: x0 + series as i64 * BAR,
                y: baseline - height,
                width: BAR,
                height,
                label: format!("{}: {count} {}", day_label(first + index as i64), SERIES[series].0),
            });
        }
    }
    let ticks = (0..days)
        .step_by(7)
        .map(|index| Tick {
            x: index * group + GAP / 2,
            label: day_label(first + index).get(5..).unwrap_or_default().to_owned(),
        })
        .collect();
    Chart {
        width: days * group,
        height: baseline + 14,
        baseline,
        bars,
        ticks,
        max,
        totals,
        first_day: day_label(first),
        last_day: day_label(last),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(event_type: &str, recorded_at: i64) -> Entry {
        Entry {
            position: 1,
            recorded_at,
            aggregate_type: "User".into(),
            aggregate_id: "alice".into(),
            event_type: event_type.into(),
            actor: None,
            client_addr: None,
            user_agent: None,
            reason: None,
            call_id: None,
            description: String::new(),
        }
    }

    #[test]
    fn events_are_counted_per_day_and_series() {
        let now = 30 * DAY_MS + 5_000;
        let entries = [
            entry("LoginRecorded", now),
            entry("LoginRecorded", now - 10),
            entry("TokenIssued", now - DAY_MS),
            entry("RolesGranted", now - DAY_MS),
            entry("UserTokensRevoked", now - DAY_MS),
            entry("LoginRecorded", now - 40 * DAY_MS),
            entry("EmailChanged", now),
        ];
        let chart = activity(&entries, now, 30);
        assert_eq!(chart.totals, [2, 1, 1, 1], "the login before the window and the email change are not counted");
        assert_eq!(chart.max, 2);
        let logins: Vec<&Bar> = chart.bars.iter().filter(|b| b.series == "logins").collect();
        assert_eq!(logins.len(), 1);
        assert_eq!(logins[0].height, PLOT_HEIGHT, "the busiest day is full height");
        assert_eq!(chart.bars.len(), 4);
        assert_eq!(chart.last_day, "1970-01-31");
        assert_eq!(chart.first_day, "1970-01-02");
    }
}
