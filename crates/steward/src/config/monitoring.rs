//! The monitoring sections: `[metrics]` (collection, retention, the Prometheus scrape) and
//! `[checks]` (health checks).
use clap::Args;
use serde::{Deserialize, Serialize};
use steward_services::config::Config;

use super::{Secret, networks, within};

/// `[metrics]`: host metrics and the `/metrics` scrape.
#[derive(Debug, Default, Clone, Args, Serialize, Deserialize)]
#[group(id = "metrics")]
#[command(next_help_heading = "Metrics ([metrics])")]
#[serde(deny_unknown_fields)]
pub struct MetricsSection {
    /// Most agentless metric polls (over SSH) running at once; 0 turns agentless collection off.
    #[arg(long, env = "STEWARD_METRICS_COLLECT_CONCURRENCY", value_name = "N")]
    pub metrics_collect_concurrency: Option<i64>,
    /// Days raw metric samples are kept.
    #[arg(long, env = "STEWARD_METRICS_RAW_DAYS", value_name = "DAYS")]
    pub metrics_raw_days: Option<i64>,
    /// Days 1-minute metric rollups (min/avg/max) are kept.
    #[arg(long, env = "STEWARD_METRICS_MINUTE_DAYS", value_name = "DAYS")]
    pub metrics_minute_days: Option<i64>,
    /// Days 1-hour metric rollups are kept.
    #[arg(long, env = "STEWARD_METRICS_HOUR_DAYS", value_name = "DAYS")]
    pub metrics_hour_days: Option<i64>,
    /// Bearer token Prometheus sends to scrape `GET /metrics` (at least 16 characters).
    #[arg(
        long,
        env = "STEWARD_METRICS_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN"
    )]
    pub metrics_token: Option<Secret>,
    /// Addresses or networks that may scrape `GET /metrics` without the token (repeatable or
    /// comma-separated; default none). Opt-in: behind a proxy on the same host, loopback is
    /// every client.
    #[arg(
        long,
        env = "STEWARD_METRICS_ALLOW",
        value_delimiter = ',',
        value_name = "NET"
    )]
    pub metrics_allow: Option<Vec<String>>,
}

impl MetricsSection {
    /// Checks the values into `config`.
    pub fn resolve(&self, config: &mut Config) -> anyhow::Result<()> {
        config.metrics_collect_concurrency = within(
            "metrics-collect-concurrency",
            self.metrics_collect_concurrency,
            0..=4096,
            "0 (off) to 4096",
        )?
        .map_or(config.metrics_collect_concurrency, |n| n as usize);
        let days = |name, v, default_ms: i64| -> anyhow::Result<i64> {
            Ok(within(name, v, 1..=36_500, "1 to 36500 days")?
                .map_or(default_ms, |d| d * 86_400_000))
        };
        let r = &mut config.metrics_retention;
        r.raw_ms = days("metrics-raw-days", self.metrics_raw_days, r.raw_ms)?;
        r.minute_ms = days("metrics-minute-days", self.metrics_minute_days, r.minute_ms)?;
        r.hour_ms = days("metrics-hour-days", self.metrics_hour_days, r.hour_ms)?;
        if r.raw_ms > r.minute_ms || r.minute_ms > r.hour_ms {
            anyhow::bail!(
                "metric retentions must not shrink from raw to 1-minute to 1-hour (metrics-raw-days <= metrics-minute-days <= metrics-hour-days)"
            );
        }
        config.metrics_token_sha256 = match &self.metrics_token {
            Some(t) if t.trim().chars().count() < 16 => {
                anyhow::bail!("metrics-token must be at least 16 characters")
            }
            Some(t) => Some(hex::encode(<sha2::Sha256 as sha2::Digest>::digest(
                t.trim().as_bytes(),
            ))),
            None => None,
        };
        config.metrics_allow = match &self.metrics_allow {
            None => config.metrics_allow.clone(),
            Some(list) if list.iter().any(|a| a.trim() == "none") => Vec::new(),
            Some(list) => networks("metrics-allow", list)?,
        };
        Ok(())
    }
}

/// `[checks]`: health checks.
#[derive(Debug, Default, Clone, Args, Serialize, Deserialize)]
#[group(id = "checks")]
#[command(next_help_heading = "Health checks ([checks])")]
#[serde(deny_unknown_fields)]
pub struct ChecksSection {
    /// Most health checks running at once (0 turns the check scheduler off).
    #[arg(long, env = "STEWARD_CHECK_CONCURRENCY", value_name = "N")]
    pub check_concurrency: Option<i64>,
    /// Days health-check results are kept (uptime comes from hourly roll-ups kept 400 days).
    #[arg(long, env = "STEWARD_CHECK_RETENTION_DAYS", value_name = "DAYS")]
    pub check_retention_days: Option<i64>,
    /// Addresses or networks health checks may reach although they are refused by default
    /// (loopback, link-local, the hub's own addresses …), besides those allowed in Settings
    /// (repeatable or comma-separated; default none).
    #[arg(
        long,
        env = "STEWARD_CHECK_ALLOW",
        value_delimiter = ',',
        value_name = "NET"
    )]
    pub check_allow: Option<Vec<String>>,
}

impl ChecksSection {
    /// Checks the values into `config`.
    pub fn resolve(&self, config: &mut Config) -> anyhow::Result<()> {
        config.check_concurrency = within(
            "check-concurrency",
            self.check_concurrency,
            0..=1024,
            "0 (off) to 1024",
        )?
        .map_or(config.check_concurrency, |n| n as usize);
        config.check_retention_days = within(
            "check-retention-days",
            self.check_retention_days,
            1..=400,
            "1 to 400 days",
        )?
        .unwrap_or(config.check_retention_days);
        if let Some(list) = &self.check_allow {
            config.check_allow = list
                .iter()
                .map(|n| {
                    steward_checks::parse_network(n)
                        .map_err(|m| anyhow::anyhow!("check-allow: {m}"))
                })
                .collect::<anyhow::Result<_>>()?;
        }
        Ok(())
    }
}
