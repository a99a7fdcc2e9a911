//! `skybook admin token`: tenant operator tokens. `create` prints the token once (only its SHA-256 is stored,
//! so a lost token is revoked and replaced, never recovered); `revoke` ends it, and every session signed in with
//! it, at their next request; `list` shows ids, tenants and rights.

use anyhow::{anyhow, bail, Context, Result};
use chrono::Utc;
use skybook_domain::{OperatorToken, OperatorTokenId, TenantSlug};
use skybook_storage::Store;

use crate::cli::{AdminCommand, TokenCommand, TokenCreateArgs, TokenListArgs, TokenRevokeArgs};
use crate::commands::import::store;

pub async fn run(command: AdminCommand) -> Result<()> {
    match command {
        AdminCommand::Token(TokenCommand::Create(args)) => create(args).await,
        AdminCommand::Token(TokenCommand::Revoke(args)) => revoke(args).await,
        AdminCommand::Token(TokenCommand::List(args)) => list(args).await,
    }
}

async fn tenant(store: &Store, raw: &str) -> Result<skybook_storage::Tenant> {
    let slug =
        TenantSlug::parse(raw).map_err(|e| anyhow!("invalid --tenant {raw:?}: {}", e.message()))?;
    store
        .tenant_by_slug(&slug)
        .await?
        .with_context(|| format!("no tenant {slug}"))
}

async fn create(args: TokenCreateArgs) -> Result<()> {
    let store = store(&args.database).await?;
    let tenant = tenant(&store, &args.tenant).await?;
    let token = OperatorToken::generate();
    let id = store
        .create_operator_token(tenant.id, &token.hash(), args.read_only, Utc::now())
        .await?;
    store.close().await;
    let rights = if args.read_only {
        "read-only"
    } else {
        "read-write"
    };
    eprintln!(
        "created {rights} operator token {id} for tenant {}; it is shown this once:",
        tenant.slug
    );
    // The token on a line of its own on stdout (what people and scripts copy).
    println!("{}", token.expose());
    Ok(())
}

async fn revoke(args: TokenRevokeArgs) -> Result<()> {
    let id: OperatorTokenId = args.id.parse().map_err(|_| {
        anyhow!(
            "invalid token id {:?}: expected the id create printed",
            args.id
        )
    })?;
    let store = store(&args.database).await?;
    let revoked = store.revoke_operator_token(id, Utc::now()).await?;
    store.close().await;
    if !revoked {
        bail!("no live operator token {id} (never created, or revoked already)");
    }
    println!("revoked operator token {id}");
    Ok(())
}

async fn list(args: TokenListArgs) -> Result<()> {
    let store = store(&args.database).await?;
    let only = match &args.tenant {
        Some(raw) => Some(tenant(&store, raw).await?.id),
        None => None,
    };
    let slugs: std::collections::HashMap<_, _> = store
        .tenants()
        .await?
        .into_iter()
        .map(|t| (t.id, t.slug))
        .collect();
    for token in store.operator_tokens(only).await? {
        println!(
            "{} tenant {} {} created {}{}",
            token.id,
            slugs
                .get(&token.tenant_id)
                .map_or_else(|| token.tenant_id.to_string(), ToString::to_string),
            if token.read_only {
                "read-only"
            } else {
                "read-write"
            },
            token.created_at.format("%Y-%m-%d %H:%M:%S UTC"),
            token
                .revoked_at
                .map(|at| format!(" revoked {}", at.format("%Y-%m-%d %H:%M:%S UTC")))
                .unwrap_or_default()
        );
    }
    store.close().await;
    Ok(())
}
