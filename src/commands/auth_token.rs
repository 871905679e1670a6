//! `surgstream auth-token --msk | --rds`: the IAM token a client would present now, on stdout.

use anyhow::{Context, Result};
use surgstream_aws::{Aws, token};

use crate::cli::AuthTokenArgs;

pub async fn run(a: AuthTokenArgs) -> Result<()> {
    let at = a
        .signing_time
        .map(std::time::SystemTime::from)
        .unwrap_or_else(std::time::SystemTime::now);
    let region = match (&a.region, &a.host) {
        (Some(r), _) => Some(r.clone()),
        (None, Some(host)) if a.rds => surgstream_aws::region_of_rds_host(host),
        _ => None,
    };
    let aws = Aws::load(region, a.profile.clone()).await;
    let credentials = aws.credentials().await?;
    let t = if a.msk {
        let region = aws.require_region("the MSK token (--region)")?;
        token::msk(&credentials, &region, at)?
    } else {
        let region = aws.require_region("the RDS token (--region, or an RDS host name)")?;
        let host = a.host.as_deref().context("--rds needs --host")?;
        let user = a.user.as_deref().context("--rds needs --user")?;
        token::rds(&credentials, host, a.port, user, &region, at)?
    };
    println!("{}", t.value);
    Ok(())
}
