//! Where an account's update stream stands, stored in
//! `account_update_states`: written by the event writer in the same
//! transaction as the events of the updates it covers, read when the
//! account connects. After a crash at any point, the catch-up then starts
//! exactly after the last update whose events were committed.
//!
//! A small table of its own rather than the session blob: the blob is
//! encrypted and written by the session's own writer at its own pace, while
//! this is written with the events, in their transaction.

use crate::entities::{account, account_update_state as row};
use crate::events::SideWrite;
use crate::telegram::UpdateState;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, Set,
};
use std::sync::Arc;

/// The account's stored update state, if any.
pub async fn load<C: ConnectionTrait>(
    conn: &C,
    account_id: i64,
) -> Result<Option<UpdateState>, DbErr> {
    Ok(row::Entity::find_by_id(account_id)
        .one(conn)
        .await?
        .map(|m| from_row(&m)))
}

/// Advances the account's stored state to `state` (field by field, never
/// back: an earlier connection's pump may still be committing its last
/// updates when the next one starts). Nothing for an account that is gone.
pub fn write(account_id: i64, state: UpdateState) -> SideWrite {
    Arc::new(move |txn| {
        let state = state.clone();
        Box::pin(async move {
            let now = chrono::Utc::now().fixed_offset();
            match row::Entity::find_by_id(account_id).one(txn).await? {
                Some(current) => {
                    let mut merged = from_row(&current);
                    merged.merge(&state);
                    if merged == from_row(&current) {
                        return Ok(());
                    }
                    row::Entity::update_many()
                        .col_expr(row::Column::Pts, Expr::value(merged.pts))
                        .col_expr(row::Column::Qts, Expr::value(merged.qts))
                        .col_expr(row::Column::Date, Expr::value(merged.date))
                        .col_expr(row::Column::Seq, Expr::value(merged.seq))
                        .col_expr(row::Column::Channels, Expr::value(channels(&merged)))
                        .col_expr(row::Column::UpdatedAt, Expr::value(now))
                        .filter(row::Column::AccountId.eq(account_id))
                        .exec(txn)
                        .await?;
                }
                None => {
                    if account::Entity::find_by_id(account_id)
                        .one(txn)
                        .await?
                        .is_none()
                    {
                        return Ok(()); // removed meanwhile
                    }
                    row::ActiveModel {
                        account_id: Set(account_id),
                        pts: Set(state.pts),
                        qts: Set(state.qts),
                        date: Set(state.date),
                        seq: Set(state.seq),
                        channels: Set(channels(&state)),
                        updated_at: Set(now),
                    }
                    .insert(txn)
                    .await?;
                }
            }
            Ok(())
        })
    })
}

fn channels(state: &UpdateState) -> serde_json::Value {
    serde_json::json!(state.channels)
}

fn from_row(m: &row::Model) -> UpdateState {
    UpdateState {
        pts: m.pts,
        qts: m.qts,
        date: m.date,
        seq: m.seq,
        // Written by `channels` above; anything else reads as no channels.
        channels: serde_json::from_value(m.channels.clone()).unwrap_or_default(),
    }
}
