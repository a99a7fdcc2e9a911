//! `skybook tenant`: create and list tenants, and manage which feeds each takes — so a second partner is an
//! operator's command away.

use anyhow::{anyhow, bail, Context, Result};
use chrono::Utc;
use skybook_domain::TenantSlug;

use crate::cli::{TenantCommand, TenantCreateArgs, TenantFeedsArgs, TenantListArgs};
use crate::commands::import::{feed_type, store};

pub async fn run(command: TenantCommand) -> Result<()> {
    match command {
        TenantCommand::Create(args) => create(args).await,
        TenantCommand::List(args) => list(args).await,
        TenantCommand::Feeds(args) => feeds(args).await,
    }
}

fn slug(raw: &str) -> Result<TenantSlug> {
    TenantSlug::parse(raw).map_err(|e| anyhow!("invalid tenant slug {raw:?}: {}", e.message()))
}

async fn create(args: TenantCreateArgs) -> Result<()> {
    let slug = slug(&args.slug)?;
    let name = args.name.trim();
    if name.is_empty() || name.chars().count() > 200 {
        bail!("invalid --name: expected 1 to 200 characters");
    }
    let store = store(&args.database).await?;
    let created = store.create_tenant(&slug, name).await?;
    store.close().await;
    match created {
        Some(tenant) => {
            println!(
                "created tenant {} ({}) {}",
                tenant.slug, tenant.name, tenant.id
            );
            Ok(())
        }
        None => bail!("tenant {slug} exists already"),
    }
}

async fn list(args: TenantListArgs) -> Result<()> {
    let store = store(&args.database).await?;
    for tenant in store.tenants().await? {
        let feeds = store.tenant_feeds(tenant.id).await?;
        println!(
            "{} {} ({}) feeds: {}",
            tenant.slug,
            tenant.id,
            tenant.name,
            if feeds.is_empty() {
                "none".to_owned()
            } else {
                feeds.join(", ")
            }
        );
    }
    store.close().await;
    Ok(())
}

async fn feeds(args: TenantFeedsArgs) -> Result<()> {
    let slug = slug(&args.slug)?;
    // Only declared feed types can be subscribed to.
    for feed in &args.subscribe {
        feed_type(&args.feeds, feed)?;
    }
    let store = store(&args.database).await?;
    let tenant = store
        .tenant_by_slug(&slug)
        .await?
        .with_context(|| format!("no tenant {slug}"))?;
    let now = Utc::now();
    for feed in &args.subscribe {
        if store.subscribe_tenant_feed(tenant.id, feed, now).await? {
            println!("{slug} now takes {feed}");
        }
    }
    for feed in &args.unsubscribe {
        if store.unsubscribe_tenant_feed(tenant.id, feed).await? {
            println!("{slug} no longer takes {feed}");
        }
    }
    let feeds = store.tenant_feeds(tenant.id).await?;
    println!(
        "{slug} feeds: {}",
        if feeds.is_empty() {
            "none".to_owned()
        } else {
            feeds.join(", ")
        }
    );
    store.close().await;
    Ok(())
}
